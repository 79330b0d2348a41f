//! Video files: [`VideoFile`] reads H.264 in MP4/MOV (`.mp4`, `.m4v`, `.mov`; the [`h264`]
//! module, behind the default `h264` cargo feature), MJPEG in AVI and raw MJPEG streams
//! (`.mjpeg`, `.mjpg`: JPEG files one after another) as a frame source, recognised by their
//! first bytes; [`VideoWriter`] writes MJPEG, raw or in AVI. Other codecs (H.265, VP9, AV1,
//! MPEG-4 part 2 in MP4; Matroska/WebM; raw `.h264` streams) are refused with a sentence naming
//! the codec or container found and an ffmpeg command that converts the file.

pub mod avi;
#[cfg(feature = "h264")]
pub mod h264;
#[cfg(feature = "h264")]
pub mod isobmff;
pub mod jpeg;
#[cfg(feature = "h264")]
mod sps;
mod writer;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use image::ImageFormat;
pub use writer::{QUALITY, VideoWriter};

use crate::error::{Error, Result};
use crate::source::{Frame, FrameSource};

/// Extensions read as video.
#[cfg(feature = "h264")]
pub const VIDEO_EXTENSIONS: [&str; 6] = ["mjpeg", "mjpg", "avi", "mp4", "m4v", "mov"];
/// Extensions read as video.
#[cfg(not(feature = "h264"))]
pub const VIDEO_EXTENSIONS: [&str; 3] = ["mjpeg", "mjpg", "avi"];
/// Extensions of video files this build cannot decode, named in the error.
const OTHER_VIDEO: [&str; 7] = ["mp4", "mkv", "mov", "webm", "h264", "264", "m4v"];

/// The conversion the errors suggest: to H.264 in MP4 when this build reads it, else to MJPEG.
fn convert_hint(path: &Path) -> String {
    if cfg!(feature = "h264") {
        format!("ffmpeg -i {} -c:v libx264 -pix_fmt yuv420p -an out.mp4", path.display())
    } else {
        format!("ffmpeg -i {} -c:v mjpeg -q:v 3 -an out.avi", path.display())
    }
}

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
    #[cfg(feature = "h264")]
    H264(Box<h264::H264<BufReader<File>>>),
}

/// A video file as a frame source, decoded frame by frame.
pub struct VideoFile {
    path: PathBuf,
    reader: Reader,
    next: usize,
    what: String,
    time_s: Option<f64>,
}

impl VideoFile {
    /// Opens `path`, recognised by its first bytes: an ISO BMFF box (`ftyp`, `moov`, …),
    /// `RIFF…AVI ` or a JPEG start (`FF D8`).
    pub fn open(path: &Path) -> Result<Self> {
        let err = |msg: String| Error::Video { path: path.to_path_buf(), msg };
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = [0u8; 12];
        let n = read_head(&mut file, &mut head).map_err(io)?;
        let head = &head[..n];
        let file = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
        let (reader, what) = if n == 12 && &head[..4] == b"RIFF" && &head[8..] == b"AVI " {
            let mut a = avi::Avi::open(file, len).map_err(err)?;
            a.read_headers().map_err(err)?;
            let fps = a.fps().map_or(String::new(), |f| format!(", {f:.1} frames/s"));
            (Reader::Avi(a), format!("video {} (MJPEG in AVI{fps})", path.display()))
        } else if n >= 2 && head[..2] == [0xFF, 0xD8] {
            (Reader::Mjpeg(jpeg::Bytes::new(file)), format!("video {} (MJPEG)", path.display()))
        } else {
            Self::open_other(path, file, head, len)?
        };
        Ok(VideoFile { path: path.to_path_buf(), reader, next: 0, what, time_s: None })
    }

    /// MP4/MOV, or the error for anything else.
    fn open_other(
        path: &Path,
        file: BufReader<File>,
        head: &[u8],
        len: u64,
    ) -> Result<(Reader, String)> {
        let err = |msg: String| Error::Video { path: path.to_path_buf(), msg };
        let convert = convert_hint(path);
        let is_bmff = head.len() >= 8
            && [&b"ftyp"[..], b"moov", b"mdat", b"free", b"skip", b"wide"].contains(&&head[4..8]);
        if is_bmff {
            #[cfg(feature = "h264")]
            return Self::open_mp4(path, file, len);
            #[cfg(not(feature = "h264"))]
            {
                let _ = (file, len);
                return Err(err(format!(
                    "MP4/MOV video is read by builds with the `h264` feature (default), not \
                     this one. Convert it, for example: {convert}"
                )));
            }
        }
        if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            return Err(err(format!(
                "a Matroska/WebM file; only MP4/MOV (H.264), AVI (MJPEG) and raw MJPEG are \
                 read. Convert it, for example: {convert}"
            )));
        }
        let named = OTHER_VIDEO.contains(&extension(path).as_str())
            || VIDEO_EXTENSIONS.contains(&extension(path).as_str());
        let hint = if named {
            format!(". If it is a video, convert it: {convert}")
        } else {
            String::new()
        };
        Err(err(format!(
            "not a video file this build reads: neither MP4/MOV, AVI nor an MJPEG stream by its \
             first bytes{hint}"
        )))
    }

    #[cfg(feature = "h264")]
    fn open_mp4(path: &Path, file: BufReader<File>, len: u64) -> Result<(Reader, String)> {
        let err = |msg: String| Error::Video { path: path.to_path_buf(), msg };
        let r = h264::open(file, len).map_err(|e| match e {
            isobmff::Mp4Error::Codec { .. } => err(format!(
                "{e}; only H.264 is read from MP4/MOV (MJPEG from AVI). Convert it, for \
                 example: {}",
                convert_hint(path)
            )),
            isobmff::Mp4Error::Fragmented => err(format!(
                "{e}. Rewrite it as a plain MP4, for example: ffmpeg -i {} -c copy out.mp4",
                path.display()
            )),
            e => err(e.to_string()),
        })?;
        let t = r.track();
        let fps = t.fps().map_or(String::new(), |f| format!(", {f:.1} frames/s"));
        let what = format!(
            "video {} (H.264 in MP4, {}×{}, {} frames{fps})",
            path.display(),
            t.width,
            t.height,
            t.samples.len()
        );
        Ok((Reader::H264(Box::new(r)), what))
    }

    /// Presentation time of the frame returned last, in seconds from the first, where the
    /// file says (MP4 time stamps, an AVI's frame rate; a raw MJPEG stream has none).
    pub fn time_s(&self) -> Option<f64> {
        self.time_s
    }

    /// The frame rate an AVI header or an MP4's time stamps give (raw MJPEG has none).
    pub fn fps(&self) -> Option<f64> {
        match &self.reader {
            Reader::Avi(a) => a.fps(),
            Reader::Mjpeg(_) => None,
            #[cfg(feature = "h264")]
            Reader::H264(r) => r.track().fps(),
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
            #[cfg(feature = "h264")]
            Reader::H264(_) => Ok(None),
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
        #[cfg(feature = "h264")]
        if let Reader::H264(r) = &mut self.reader {
            let next = r.next_picture().map_err(|e| self.stopped(e.to_string()))?;
            let Some((image, t)) = next else { return Ok(None) };
            self.time_s = t;
            self.next += 1;
            return Ok(Some(Frame { image, index: self.next - 1, truth: None, path: None }));
        }
        let Some((at, bytes)) = self.next_jpeg()? else { return Ok(None) };
        let image = fer_data::image_file::decode_bytes(&bytes, Some(ImageFormat::Jpeg))
            .map_err(|e| {
                let e = e.to_string();
                let e = e.trim_end();
                self.stopped(format!("frame {} (byte {at}) is not a valid JPEG: {e}", self.next))
            })?
            .to_rgb8();
        self.time_s = self.fps().map(|f| self.next as f64 / f);
        self.next += 1;
        Ok(Some(Frame { image, index: self.next - 1, truth: None, path: None }))
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// Reads up to `buf.len()` bytes (fewer only at the end of the file).
fn read_head(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
