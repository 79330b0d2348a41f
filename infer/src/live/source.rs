//! Where frames come from, behind one trait: a folder (or list) of images, and a synthetic
//! scene (a real face moving and changing scale over a background) whose ground truth is known.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

use crate::error::{Error, Result};

/// One frame.
pub struct Frame {
    /// The picture, RGB.
    pub image: RgbImage,
    /// 0-based index in the stream.
    pub index: usize,
    /// Where the face was put, `[x0, y0, x1, y1]`, for synthetic frames.
    pub truth: Option<[f32; 4]>,
}

/// A stream of frames.
pub trait FrameSource: Send {
    /// The next frame, `None` at the end of a finite source.
    fn next_frame(&mut self) -> Result<Option<Frame>>;
    /// What this source is, for logs (`folder runs/frames (40 images)`).
    fn describe(&self) -> String;
}

/// The images of a folder (sorted by name) or an explicit list, decoded one by one.
pub struct ImageFolder {
    files: Vec<PathBuf>,
    next: usize,
    what: String,
}

impl ImageFolder {
    /// Every image file of `path` (a folder, searched recursively, or one image).
    pub fn open(path: &Path) -> Result<Self> {
        let files = crate::predict::collect_images(&[path.to_path_buf()])?;
        if files.is_empty() {
            return Err(Error::invalid("--source", format!("{}: no images", path.display())));
        }
        Ok(ImageFolder {
            what: format!("folder {} ({} images)", path.display(), files.len()),
            files,
            next: 0,
        })
    }
}

impl FrameSource for ImageFolder {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let Some(path) = self.files.get(self.next) else { return Ok(None) };
        let image = crate::predict::load_image(path)?.to_rgb8();
        self.next += 1;
        Ok(Some(Frame { image, index: self.next - 1, truth: None }))
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// A face image moving along a Lissajous path over a gradient background, scaled between 1.0×
/// and 1.6× of its size, at `width × height`.
pub struct Synthetic {
    face: RgbImage,
    width: u32,
    height: u32,
    frames: Option<usize>,
    next: usize,
}

impl Synthetic {
    /// `face` (a cropped face photo) moving in a `width × height` frame; `frames` ends the
    /// stream after that many frames (`None`: endless).
    pub fn new(face: RgbImage, width: u32, height: u32, frames: Option<usize>) -> Result<Self> {
        if face.width() * 16 > width * 8 || face.height() * 16 > height * 8 {
            return Err(Error::invalid(
                "synthetic source",
                format!(
                    "the face ({}×{}) must be at most half the frame ({width}×{height}); it grows to 1.6×",
                    face.width(),
                    face.height()
                ),
            ));
        }
        Ok(Synthetic { face, width, height, frames, next: 0 })
    }

    /// Frame `i`: where the face goes and how large it is.
    pub fn placement(&self, i: usize) -> [f32; 4] {
        let t = i as f32 / 30.0;
        let scale = 1.3 + 0.3 * (t * 0.7).sin();
        let (fw, fh) = (self.face.width() as f32 * scale, self.face.height() as f32 * scale);
        let cx = self.width as f32 / 2.0
            + (self.width as f32 / 2.0 - fw / 2.0 - 4.0) * 0.8 * (t * 0.9).sin();
        let cy = self.height as f32 / 2.0
            + (self.height as f32 / 2.0 - fh / 2.0 - 4.0) * 0.8 * (t * 1.3).cos();
        [cx - fw / 2.0, cy - fh / 2.0, cx + fw / 2.0, cy + fh / 2.0]
    }
}

impl FrameSource for Synthetic {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.frames.is_some_and(|n| self.next >= n) {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        let (w, h) = (self.width, self.height);
        let mut image = RgbImage::from_fn(w, h, |x, y| {
            let g = (40 + 120 * x / w + 60 * y / h) as u8;
            Rgb([g / 2, g, 255 - g / 2])
        });
        let b = self.placement(i);
        let (fw, fh) = ((b[2] - b[0]).round() as u32, (b[3] - b[1]).round() as u32);
        let face =
            image::imageops::resize(&self.face, fw, fh, image::imageops::FilterType::Triangle);
        image::imageops::replace(&mut image, &face, b[0].round() as i64, b[1].round() as i64);
        Ok(Some(Frame { image, index: i, truth: Some(b) }))
    }

    fn describe(&self) -> String {
        format!("synthetic {}×{} (a face moving and changing scale)", self.width, self.height)
    }
}

/// A source read on its own thread that keeps only the newest frame: a consumer slower than the
/// source (classification, drawing) always gets the most recent picture, never a backlog, so
/// the display does not lag behind reality. Frames replaced before being taken are counted.
pub struct Latest {
    shared: std::sync::Arc<(std::sync::Mutex<LatestState>, std::sync::Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
    what: String,
}

#[derive(Default)]
struct LatestState {
    frame: Option<Frame>,
    done: bool,
    stop: bool,
    error: Option<Error>,
    dropped: usize,
}

impl Latest {
    /// Starts reading `source` on a capture thread.
    pub fn spawn(mut source: Box<dyn FrameSource>) -> Self {
        use std::sync::{Arc, Condvar, Mutex};
        let what = format!("{} (capture thread, newest frame only)", source.describe());
        let shared = Arc::new((Mutex::new(LatestState::default()), Condvar::new()));
        let s = shared.clone();
        let handle = std::thread::spawn(move || {
            let (lock, cv) = &*s;
            loop {
                if lock.lock().map_or(true, |g| g.stop) {
                    break;
                }
                let next = source.next_frame();
                let Ok(mut g) = lock.lock() else { break };
                match next {
                    Ok(Some(f)) => {
                        g.dropped += usize::from(g.frame.is_some());
                        g.frame = Some(f);
                    }
                    Ok(None) => g.done = true,
                    Err(e) => {
                        g.error = Some(e);
                        g.done = true;
                    }
                }
                let done = g.done;
                drop(g);
                cv.notify_all();
                if done {
                    break;
                }
            }
        });
        Latest { shared, handle: Some(handle), what }
    }

    /// Frames the consumer never saw because a newer one replaced them.
    pub fn dropped(&self) -> usize {
        self.shared.0.lock().map_or(0, |g| g.dropped)
    }
}

impl FrameSource for Latest {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let (lock, cv) = &*self.shared;
        let poisoned = || Error::invalid("capture thread", "it panicked");
        let mut g = lock.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(f) = g.frame.take() {
                return Ok(Some(f));
            }
            if let Some(e) = g.error.take() {
                return Err(e);
            }
            if g.done {
                return Ok(None);
            }
            g = cv.wait(g).map_err(|_| poisoned())?;
        }
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

impl Drop for Latest {
    fn drop(&mut self) {
        if let Ok(mut g) = self.shared.0.lock() {
            g.stop = true;
        }
        self.shared.1.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Paces a source to at most `fps` frames per second, as a camera is (for the synthetic scene
/// in the window).
pub struct Paced {
    inner: Box<dyn FrameSource>,
    period: std::time::Duration,
    next: Option<std::time::Instant>,
}

impl Paced {
    /// `inner` at most `fps` frames per second.
    pub fn new(inner: Box<dyn FrameSource>, fps: f64) -> Self {
        Paced { inner, period: std::time::Duration::from_secs_f64(1.0 / fps.max(0.1)), next: None }
    }
}

impl FrameSource for Paced {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let now = std::time::Instant::now();
        if let Some(t) = self.next.filter(|t| *t > now) {
            std::thread::sleep(t - now);
        }
        self.next = Some(self.next.map_or(now, |t| t.max(now)) + self.period);
        self.inner.next_frame()
    }

    fn describe(&self) -> String {
        format!("{} at {:.0} frames/s", self.inner.describe(), 1.0 / self.period.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of a solid colour, as fast as asked.
    struct Counter(usize, usize);
    impl FrameSource for Counter {
        fn next_frame(&mut self) -> Result<Option<Frame>> {
            if self.0 >= self.1 {
                return Ok(None);
            }
            self.0 += 1;
            Ok(Some(Frame { image: RgbImage::new(4, 4), index: self.0 - 1, truth: None }))
        }
        fn describe(&self) -> String {
            "counter".into()
        }
    }

    #[test]
    fn a_slow_consumer_gets_the_newest_frames_and_the_rest_are_counted_as_dropped() {
        // 200 frames/s for 60 frames; the consumer takes one every 25 ms.
        let src = Paced::new(Box::new(Counter(0, 60)), 200.0);
        let mut latest = Latest::spawn(Box::new(src));
        let mut seen = Vec::new();
        while let Some(f) = latest.next_frame().unwrap() {
            seen.push(f.index);
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert!(seen.len() < 30, "a backlog was delivered: {seen:?}");
        assert_eq!(seen.len() + latest.dropped(), 60, "{seen:?}");
    }

    #[test]
    fn a_fast_consumer_sees_every_frame_in_order() {
        let mut latest = Latest::spawn(Box::new(Paced::new(Box::new(Counter(0, 10)), 100.0)));
        let mut seen = Vec::new();
        while let Some(f) = latest.next_frame().unwrap() {
            seen.push(f.index);
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(latest.dropped(), 0);
    }
}
