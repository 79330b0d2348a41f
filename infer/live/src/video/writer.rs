//! Annotated frames as an MJPEG video: every frame JPEG-encoded, either concatenated (a raw
//! `.mjpeg` stream) or in an AVI container (`.avi`, playable by common players). Each frame is
//! flushed as it is written, so a run that stops early leaves a readable file.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::error::{Error, Result};

/// JPEG quality of the written frames.
pub const QUALITY: u8 = 90;

/// Where the AVI header's counts sit, to be filled in by [`VideoWriter::finish`].
const RIFF_SIZE_AT: u64 = 4;
const AVIH_FRAMES_AT: u64 = 48;
const STRH_LENGTH_AT: u64 = 140;
const MOVI_SIZE_AT: u64 = 216;
/// Offset of the `movi` list type, from which `idx1` counts.
const MOVI_AT: u32 = 220;

/// A video being written.
pub struct VideoWriter {
    file: BufWriter<File>,
    path: PathBuf,
    avi: bool,
    fps: u32,
    frames: u32,
    size: Option<(u32, u32)>,
    /// AVI: (offset from `movi`, length) of every frame chunk.
    index: Vec<(u32, u32)>,
    pos: u64,
    jpeg: Vec<u8>,
}

fn le(v: &mut Vec<u8>, xs: &[u32]) {
    for x in xs {
        v.extend(x.to_le_bytes());
    }
}

impl VideoWriter {
    /// Creates `path`: `.avi` for MJPEG in AVI, `.mjpeg`/`.mjpg` for a raw stream; `fps` goes
    /// into the AVI header.
    pub fn create(path: &Path, fps: f64) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let avi = match ext.as_str() {
            "avi" => true,
            "mjpeg" | "mjpg" => false,
            _ => {
                return Err(Error::invalid(
                    "--out-video",
                    format!("{}: the name must end in .mjpeg, .mjpg or .avi", path.display()),
                ));
            }
        };
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = BufWriter::new(File::create(path).map_err(io)?);
        let fps = fps.round().clamp(1.0, 1000.0) as u32;
        Ok(VideoWriter {
            file,
            path: path.to_path_buf(),
            avi,
            fps,
            frames: 0,
            size: None,
            index: Vec::new(),
            pos: 0,
            jpeg: Vec::new(),
        })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io { path: self.path.clone(), source }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| self.io(e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn avi_header(&mut self, w: u32, h: u32) -> Result<()> {
        let mut v = Vec::with_capacity(224);
        v.extend(b"RIFF\0\0\0\0AVI LIST");
        le(&mut v, &[192]);
        v.extend(b"hdrlavih");
        // µs per frame, max bytes/s, padding, flags (has index), frames, initial frames,
        // streams, suggested buffer, width, height, 4 reserved.
        le(&mut v, &[56, 1_000_000 / self.fps, 0, 0, 0x10, 0, 0, 1, 0, w, h, 0, 0, 0, 0]);
        v.extend(b"LIST");
        le(&mut v, &[116]);
        v.extend(b"strlstrh");
        le(&mut v, &[56]);
        v.extend(b"vidsMJPG");
        // flags, priority+language, initial frames, scale, rate, start, length, buffer,
        // quality (-1: default), sample size, then the frame rectangle (four i16).
        le(&mut v, &[0, 0, 0, 1, self.fps, 0, 0, 0, u32::MAX, 0]);
        for s in [0, 0, w as u16, h as u16] {
            v.extend(s.to_le_bytes());
        }
        v.extend(b"strf");
        le(&mut v, &[40, 40, w, h]);
        v.extend(1u16.to_le_bytes());
        v.extend(24u16.to_le_bytes());
        v.extend(b"MJPG");
        le(&mut v, &[w * h * 3, 0, 0, 0, 0]);
        v.extend(b"LIST\0\0\0\0movi");
        debug_assert_eq!(v.len(), MOVI_AT as usize + 4);
        self.put(&v)
    }

    /// Appends `img` (every frame of an AVI must have the first frame's size).
    pub fn write(&mut self, img: &RgbImage) -> Result<()> {
        let (w, h) = img.dimensions();
        match self.size {
            None if self.avi => self.avi_header(w, h)?,
            Some(s) if self.avi && s != (w, h) => {
                return Err(Error::invalid(
                    "--out-video",
                    format!(
                        "{}: frame {} is {w}×{h}, the first was {}×{}; an AVI holds one size",
                        self.path.display(),
                        self.frames,
                        s.0,
                        s.1
                    ),
                ));
            }
            _ => {}
        }
        self.size = Some((w, h));
        let mut jpeg = std::mem::take(&mut self.jpeg);
        jpeg.clear();
        JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
            .encode_image(img)
            .map_err(|e| Error::invalid("--out-video", format!("JPEG encoding: {e}")))?;
        if self.avi {
            let len = jpeg.len() as u32;
            self.index.push(((self.pos - u64::from(MOVI_AT)) as u32, len));
            self.put(b"00dc")?;
            self.put(&len.to_le_bytes())?;
            self.put(&jpeg)?;
            if len % 2 == 1 {
                self.put(&[0])?;
            }
        } else {
            self.put(&jpeg)?;
        }
        self.jpeg = jpeg;
        self.frames += 1;
        self.file.flush().map_err(|e| self.io(e))
    }

    /// Completes the file (an AVI's index and counts) and returns the number of frames.
    pub fn finish(mut self) -> Result<u32> {
        if self.avi && self.size.is_some() {
            let movi_end = self.pos;
            let mut idx = b"idx1".to_vec();
            le(&mut idx, &[16 * self.index.len() as u32]);
            for (offset, len) in &self.index {
                idx.extend(b"00dc");
                le(&mut idx, &[0x10, *offset, *len]);
            }
            self.put(&idx)?;
            let patches = [
                (RIFF_SIZE_AT, (self.pos - 8) as u32),
                (AVIH_FRAMES_AT, self.frames),
                (STRH_LENGTH_AT, self.frames),
                (MOVI_SIZE_AT, (movi_end - u64::from(MOVI_AT)) as u32),
            ];
            for (at, value) in patches {
                self.file.seek(SeekFrom::Start(at)).map_err(|e| self.io(e))?;
                self.file.write_all(&value.to_le_bytes()).map_err(|e| self.io(e))?;
            }
        }
        self.file.flush().map_err(|e| self.io(e))?;
        Ok(self.frames)
    }
}
