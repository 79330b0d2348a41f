//! The live pipeline without a window: every frame of a source detected, classified and
//! written out as one JSON line (`frames.jsonl`), with the annotated frames as PNG files
//! (`frames/NNNNNN.png`) and/or an MJPEG video. Every frame is flushed as it is written, so a
//! run that stops early (a camera unplugged, a corrupt video frame, Ctrl-C) keeps what it wrote.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::source::FrameSource;
use super::video::VideoWriter;
use super::{Live, draw};
use crate::error::{Error, Result};

/// What to write, and when to stop.
#[derive(Debug, Clone)]
pub struct Options {
    /// Output folder: `frames.jsonl`, and `frames/` for PNGs.
    pub out: PathBuf,
    /// Stop after this many frames (`None`: at the end of the source).
    pub frames: Option<usize>,
    /// Write annotated PNG frames into `out/frames/`.
    pub png: bool,
    /// Write the annotated frames as an MJPEG video (`.mjpeg`, `.mjpg` or `.avi`).
    pub video: Option<PathBuf>,
    /// Frame rate recorded in an AVI's header.
    pub fps: f64,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Frames processed.
    pub frames: usize,
    /// Faces found, over all frames.
    pub faces: usize,
    /// Wall-clock seconds.
    pub secs: f64,
    /// The JSON-lines file.
    pub jsonl: PathBuf,
}

struct Outputs {
    jsonl: BufWriter<File>,
    jsonl_path: PathBuf,
    frames_dir: Option<PathBuf>,
    video: Option<VideoWriter>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl Outputs {
    fn create(o: &Options) -> Result<Self> {
        std::fs::create_dir_all(&o.out).map_err(io(&o.out))?;
        let frames_dir = o.png.then(|| o.out.join("frames"));
        if let Some(d) = &frames_dir {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let jsonl_path = o.out.join("frames.jsonl");
        let jsonl = BufWriter::new(File::create(&jsonl_path).map_err(io(&jsonl_path))?);
        let video = o.video.as_deref().map(|p| VideoWriter::create(p, o.fps)).transpose()?;
        Ok(Outputs { jsonl, jsonl_path, frames_dir, video })
    }

    fn finish(mut self) -> Result<()> {
        self.jsonl.flush().map_err(io(&self.jsonl_path))?;
        if let Some(v) = self.video.take() {
            v.finish()?;
        }
        Ok(())
    }
}

/// Runs `live` over `source` until it ends or `o.frames` have been processed. When the source
/// fails mid-way its error is returned after the outputs have been completed (the JSON lines
/// and frames before it are intact, a video is finished and playable).
pub fn run(source: &mut dyn FrameSource, live: &mut Live, o: &Options) -> Result<Summary> {
    let mut out = Outputs::create(o)?;
    tracing::info!(source = %source.describe(), out = %o.out.display(), "live demo, headless");
    let start = Instant::now();
    let mut s = Summary { frames: 0, faces: 0, secs: 0.0, jsonl: out.jsonl_path.clone() };
    let result = frames(source, live, o, &mut out, &mut s);
    let finished = out.finish();
    s.secs = start.elapsed().as_secs_f64();
    result.and(finished).map(|()| s)
}

fn frames(
    source: &mut dyn FrameSource,
    live: &mut Live,
    o: &Options,
    out: &mut Outputs,
    s: &mut Summary,
) -> Result<()> {
    while o.frames.is_none_or(|n| s.frames < n) {
        let t = Instant::now();
        let Some(mut frame) = source.next_frame()? else { break };
        let decode_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut r = live.process(&frame, decode_ms)?;
        if out.frames_dir.is_some() || out.video.is_some() {
            let t = Instant::now();
            draw::annotate(&mut frame.image, &r);
            r.ms.draw = t.elapsed().as_secs_f64() * 1e3;
        }
        if let Some(d) = &out.frames_dir {
            let p = d.join(format!("{:06}.png", frame.index));
            frame.image.save(&p).map_err(|e| io(&p)(std::io::Error::other(e)))?;
        }
        if let Some(v) = &mut out.video {
            v.write(&frame.image)?;
        }
        let line = serde_json::to_string(&r).map_err(|e| io(&out.jsonl_path)(e.into()))?;
        writeln!(out.jsonl, "{line}").map_err(io(&out.jsonl_path))?;
        out.jsonl.flush().map_err(io(&out.jsonl_path))?;
        s.faces += r.faces.len();
        s.frames += 1;
    }
    Ok(())
}
