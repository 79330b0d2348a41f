//! The live window (minifb, X11 through dlopen): the annotated frame, FPS and per-stage
//! milliseconds in the title; q or Esc quits, s saves a snapshot PNG.

use std::path::{Path, PathBuf};
use std::time::Instant;

use minifb::{Key, KeyRepeat, Window, WindowOptions};

use crate::error::{Error, Result};
use crate::source::FrameSource;
use crate::{Live, draw};

/// What a window session showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shown {
    /// Frames shown.
    pub frames: usize,
    /// Frames per second over the session.
    pub fps: f64,
}

/// Shows frames until the source ends, `frames` have been shown, or the user quits; each
/// snapshot (key s) is written into `out` and its path handed to `on_snapshot`.
pub fn run(
    source: &mut dyn FrameSource,
    live: &mut Live,
    out: &Path,
    frames: Option<usize>,
    on_snapshot: &mut dyn FnMut(&Path),
) -> Result<Shown> {
    let mut window: Option<Window> = None;
    let mut buf: Vec<u32> = Vec::new();
    let (mut shown, start) = (0usize, Instant::now());
    let mut fps = 0.0f64;
    while frames.is_none_or(|n| shown < n) {
        let t = Instant::now();
        let Some(mut frame) = source.next_frame()? else { break };
        let decode_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut r = live.process(&frame, decode_ms)?;
        let t = Instant::now();
        draw::annotate(&mut frame.image, &r);
        r.ms.draw = t.elapsed().as_secs_f64() * 1e3;
        let (w, h) = (frame.image.width() as usize, frame.image.height() as usize);
        let win = match &mut window {
            Some(win) => win,
            None => {
                let win =
                    Window::new("fer-infer live", w, h, WindowOptions::default()).map_err(|e| {
                        Error::Window { msg: format!("opening the window: {e}; or use --headless") }
                    })?;
                window.insert(win)
            }
        };
        if !win.is_open() || win.is_key_down(Key::Q) || win.is_key_down(Key::Escape) {
            break;
        }
        buf.clear();
        buf.extend(frame.image.pixels().map(|p| {
            let [r, g, b] = p.0;
            (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b)
        }));
        win.update_with_buffer(&buf, w, h)
            .map_err(|e| Error::Window { msg: format!("drawing the frame: {e}") })?;
        let secs = start.elapsed().as_secs_f64();
        shown += 1;
        fps = if secs > 0.0 { shown as f64 / secs } else { fps };
        let label = r
            .faces
            .first()
            .map_or("no face".to_string(), |f| format!("{} {:.0}%", f.label, f.confidence * 100.0));
        win.set_title(&format!(
            "fer-infer live: {label} | {fps:.0} fps | detect {:.1} ms, align {:.1}, classify {:.1}, draw {:.1}",
            r.ms.detect, r.ms.align, r.ms.classify, r.ms.draw
        ));
        if win.is_key_pressed(Key::S, KeyRepeat::No) {
            let p = snapshot(out, &frame)?;
            on_snapshot(&p);
        }
    }
    Ok(Shown { frames: shown, fps })
}

/// Writes `frame` as `out/snapshot-NNNNNN.png`.
fn snapshot(out: &Path, frame: &crate::source::Frame) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|source| Error::Io { path: out.into(), source })?;
    let p = out.join(format!("snapshot-{:06}.png", frame.index));
    fer_data::image_file::save_image(&frame.image.clone().into(), &p)
        .map_err(|source| fer_infer::Error::BadImage { source })?;
    Ok(p)
}
