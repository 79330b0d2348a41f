//! MJPEG video files: [`VideoFile`] reads a raw MJPEG stream (`.mjpeg`, `.mjpg`: JPEG files
//! one after another) or MJPEG in AVI as a frame source; [`VideoWriter`] writes either.
//! Other codecs (H.264 in MP4, MKV, …) are not read: no pure-Rust decoder for them is in this
//! build, and the error says how to convert such a file.

pub mod avi;
pub mod jpeg;
mod writer;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use image::ImageFormat;
pub use writer::{QUALITY, VideoWriter};

use crate::error::{Error, Result};
use crate::source::{Frame, FrameSource};

/// Extensions read as MJPEG video.
pub const VIDEO_EXTENSIONS: [&str; 3] = ["mjpeg", "mjpg", "avi"];
/// Extensions of video containers this build cannot decode, named in the error.
const OTHER_VIDEO: [&str; 7] = ["mp4", "mkv", "mov", "webm", "h264", "264", "m4v"];

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

/// Whether `path` names a video file by its extension (readable or not), rather than an image.
pub fn is_video_path(path: &Path) -> bool {
    let e = extension(path);
    VIDEO_EXTENSIONS.contains(&e.as_str()) || OTHER_VIDEO.contains(&e.as_str())
}

enum Reader {
    Mjpeg(jpeg::Bytes<BufReader<File>>),
    Avi(avi::Avi<BufReader<File>>),
}

/// An MJPEG video file as a frame source, decoded frame by frame.
pub struct VideoFile {
    path: PathBuf,
    reader: Reader,
    next: usize,
    what: String,
}

impl VideoFile {
    /// Opens `path`, recognised by its first bytes: `RIFF…AVI ` or a JPEG start (`FF D8`).
    pub fn open(path: &Path) -> Result<Self> {
        let err = |msg: String| Error::Video { path: path.to_path_buf(), msg };
        if OTHER_VIDEO.contains(&extension(path).as_str()) {
            return Err(err(format!(
                "only MJPEG video is read (raw .mjpeg/.mjpg, or MJPEG in .avi); this build has \
                 no H.264 decoder. Convert it, for example: ffmpeg -i {} -c:v mjpeg -q:v 3 \
                 out.avi",
                path.display()
            )));
        }
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = [0u8; 12];
        let n = file.read(&mut head).map_err(io)?;
        let file = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
        let (reader, what) = if n == 12 && &head[..4] == b"RIFF" && &head[8..] == b"AVI " {
            let mut a = avi::Avi::open(file, len).map_err(err)?;
            a.read_headers().map_err(err)?;
            let fps = a.fps().map_or(String::new(), |f| format!(", {f:.1} frames/s"));
            (Reader::Avi(a), format!("video {} (MJPEG in AVI{fps})", path.display()))
        } else if n >= 2 && head[..2] == [0xFF, 0xD8] {
            (Reader::Mjpeg(jpeg::Bytes::new(file)), format!("video {} (MJPEG)", path.display()))
        } else {
            return Err(err(
                "neither an MJPEG stream (it does not start with a JPEG) nor an AVI file".into(),
            ));
        };
        Ok(VideoFile { path: path.to_path_buf(), reader, next: 0, what })
    }

    /// The frame rate an AVI header gives (raw MJPEG has none).
    pub fn fps(&self) -> Option<f64> {
        match &self.reader {
            Reader::Avi(a) => a.fps(),
            Reader::Mjpeg(_) => None,
        }
    }

    fn stopped(&self, msg: String) -> Error {
        Error::SourceStopped {
            what: format!("video file {}", self.path.display()),
            msg,
            frames: self.next,
        }
    }

    fn cut_off(&self, at: u64) {
        tracing::warn!(
            "{}: the file ends inside a frame (byte {at}), as a cut-off recording does; \
             stopping after {} frames",
            self.path.display(),
            self.next
        );
    }

    /// The next frame's JPEG bytes and offset.
    fn next_jpeg(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        // Err(offset): the file ends inside the frame there.
        let r: std::result::Result<_, u64> = match &mut self.reader {
            Reader::Mjpeg(r) => match jpeg::next_jpeg(r) {
                Ok(j) => Ok(j.map(|j| (j.start, j.bytes))),
                Err(jpeg::SplitError::Truncated { start, .. }) => Err(start),
                Err(e) => return Err(self.stopped(e.to_string())),
            },
            Reader::Avi(a) => match a.next_frame() {
                Ok(avi::Next::Frame(at, b)) => Ok(Some((at, b))),
                Ok(avi::Next::End) => Ok(None),
                Ok(avi::Next::Truncated(at)) => Err(at),
                Err(e) => return Err(self.stopped(e)),
            },
        };
        match r {
            Ok(j) => Ok(j),
            Err(at) => {
                self.cut_off(at);
                Ok(None)
            }
        }
    }
}

impl FrameSource for VideoFile {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let Some((at, bytes)) = self.next_jpeg()? else { return Ok(None) };
        let image = fer_data::image_file::decode_bytes(&bytes, Some(ImageFormat::Jpeg))
            .map_err(|e| {
                let e = e.to_string();
                let e = e.trim_end();
                self.stopped(format!("frame {} (byte {at}) is not a valid JPEG: {e}", self.next))
            })?
            .to_rgb8();
        self.next += 1;
        Ok(Some(Frame { image, index: self.next - 1, truth: None, path: None }))
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}
