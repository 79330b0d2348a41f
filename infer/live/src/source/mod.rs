//! Where frames come from, behind one trait: a camera ([`camera`]), a video file
//! ([`crate::video`]), a folder (or list) of images, and a synthetic scene (a real face
//! moving and changing scale over a background) whose ground truth is known.

pub mod camera;
mod threaded;

pub use threaded::{Latest, Paced};

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
    /// The image file, for frames read from image files.
    pub path: Option<PathBuf>,
}

/// A stream of frames.
pub trait FrameSource: Send {
    /// The next frame, `None` at the end of a finite source.
    fn next_frame(&mut self) -> Result<Option<Frame>>;
    /// What this source is, for logs (`folder runs/frames (40 images)`).
    fn describe(&self) -> String;
    /// Whether the frames are unrelated stills (no tracking or smoothing across them).
    fn stills(&self) -> bool {
        false
    }
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
        let files = fer_infer::predict::collect_images(&[path.to_path_buf()])?;
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
        let image = fer_infer::predict::load_image(path)?.to_rgb8();
        self.next += 1;
        Ok(Some(Frame { image, index: self.next - 1, truth: None, path: Some(path.clone()) }))
    }

    fn describe(&self) -> String {
        self.what.clone()
    }

    fn stills(&self) -> bool {
        true
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
        Ok(Some(Frame { image, index: i, truth: Some(b), path: None }))
    }

    fn describe(&self) -> String {
        format!("synthetic {}×{} (a face moving and changing scale)", self.width, self.height)
    }
}
