//! Camera capture: a [`Camera`] frame source over a [`Grabber`] (the raw frames of one device),
//! the choice of capture mode (MJPEG first), decoding raw frames to RGB ([`decode`]), and the
//! list of video devices for the no-camera message ([`devices`]).
//!
//! The grabber of a real camera is nokhwa's V4L2 backend on a capture thread (cargo feature
//! `camera`, on by default); tests drive [`Camera`] with grabbers of their own, so a camera that
//! disconnects can be tested without one.

pub mod decode;
pub mod devices;
#[cfg(feature = "camera")]
mod v4l;

use std::fmt;

use super::{Frame, FrameSource};
use crate::error::{Error, Result};

/// How a camera lays out its frames (the V4L2 formats nokhwa reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Motion JPEG: every frame a JPEG (what USB webcams deliver at full rate).
    Mjpeg,
    /// YUV 4:2:2, packed Y0 U Y1 V.
    Yuyv,
    /// YUV 4:2:0, a Y plane then interleaved U V at half resolution.
    Nv12,
    /// Packed 8-bit RGB.
    Rgb,
    /// Packed 8-bit BGR.
    Bgr,
    /// 8-bit grey.
    Gray,
}

impl PixelFormat {
    /// The V4L2 four-character code.
    pub fn fourcc(self) -> &'static str {
        match self {
            PixelFormat::Mjpeg => "MJPG",
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Rgb => "RGB3",
            PixelFormat::Bgr => "BGR3",
            PixelFormat::Gray => "GREY",
        }
    }
}

/// A capture mode: pixel format, frame size and frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mode {
    /// Pixel layout.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}×{} {} at {} frames/s",
            self.width,
            self.height,
            self.format.fourcc(),
            self.fps
        )
    }
}

/// Parses `640x480` (or `640×480`) into width and height.
pub fn parse_resolution(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not WIDTHxHEIGHT (for example 640x480)");
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(format!("`{s}`: width and height must be between 1 and 16384"));
    }
    Ok((w, h))
}

/// Formats in order of preference after MJPEG: those decoded cheapest and in colour first.
const FALLBACK: [PixelFormat; 5] =
    [PixelFormat::Yuyv, PixelFormat::Nv12, PixelFormat::Rgb, PixelFormat::Bgr, PixelFormat::Gray];

/// Picks, among the modes a camera `offered`, the one to capture in: `want`'s format (MJPEG)
/// if offered, else the first of YUYV, NV12, RGB, BGR and grey that is; within that format the
/// size closest to `want`'s, then the rate closest to it. Returns the mode and, when it is not
/// what was asked for, a sentence saying so for the log. `None` if nothing usable is offered.
pub fn choose_mode(offered: &[Mode], want: Mode) -> Option<(Mode, Option<String>)> {
    let format = std::iter::once(want.format)
        .chain(FALLBACK)
        .find(|f| offered.iter().any(|m| m.format == *f))?;
    let dist = |m: &Mode| {
        let dx = i64::from(m.width) - i64::from(want.width);
        let dy = i64::from(m.height) - i64::from(want.height);
        (dx * dx + dy * dy, (i64::from(m.fps) - i64::from(want.fps)).abs())
    };
    let best = *offered.iter().filter(|m| m.format == format).min_by_key(|m| dist(m))?;
    let note = if best.format != want.format {
        let offers: Vec<&str> = {
            let mut f: Vec<&str> = offered.iter().map(|m| m.format.fourcc()).collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        Some(format!(
            "no {} offered (it offers {}); capturing {best}, converted on the CPU",
            want.format.fourcc(),
            offers.join(", ")
        ))
    } else if (best.width, best.height, best.fps) != (want.width, want.height, want.fps) {
        Some(format!("{want} is not offered; capturing {best}, the closest"))
    } else {
        None
    };
    Some((best, note))
}

/// One frame as the camera delivered it.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Pixel layout of `data`.
    pub format: PixelFormat,
    /// Width in pixels (for MJPEG, what was negotiated; the JPEG's own size wins).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The raw frames of one opened device, in order. An error means the device stopped
/// (unplugged, stalled, closed): [`Camera`] does not ask again.
pub trait Grabber: Send {
    /// Waits for the next frame.
    fn grab(&mut self) -> std::result::Result<RawFrame, String>;
}

/// Undecodable frames in a row after which a camera counts as broken (one now and then, as
/// some webcams send while they start, is skipped with a warning).
pub const MAX_BAD_FRAMES: usize = 10;

/// A camera as a frame source: raw frames from a [`Grabber`], decoded to RGB. It does not end
/// by itself; when the grabber fails, [`FrameSource::next_frame`] returns
/// [`Error::SourceStopped`] naming the device.
pub struct Camera {
    device: String,
    what: String,
    grabber: Box<dyn Grabber>,
    next: usize,
}

impl Camera {
    /// Opens video device `index` (`/dev/videoN`) in the mode closest to `want` (see
    /// [`choose_mode`]; the choice is logged when it is not `want`) and starts streaming.
    /// [`Error::NoCamera`] when there is no such device or this build has no camera support;
    /// [`Error::Camera`] when it cannot be opened.
    pub fn open(index: u32, want: Mode) -> Result<Self> {
        let found = devices::list();
        if !found.iter().any(|d| d.index == index) {
            return Err(Error::NoCamera { msg: devices::no_camera_message(index, &found) });
        }
        #[cfg(feature = "camera")]
        {
            let device = devices::path(index);
            let (grabber, mode, name) = v4l::open(index, want)
                .map_err(|msg| Error::Camera { device: device.clone(), msg })?;
            Ok(Camera::with_grabber(device, format!("{name}, {mode}"), grabber))
        }
        #[cfg(not(feature = "camera"))]
        {
            let _ = want;
            Err(Error::NoCamera { msg: devices::no_support_message(&found) })
        }
    }

    /// A camera over any grabber; `device` names it in messages (`/dev/video0`), `details`
    /// says what it is and how it captures (for logs).
    pub fn with_grabber(device: String, details: String, grabber: Box<dyn Grabber>) -> Self {
        let what = format!("camera {device} ({details})");
        Camera { device, what, grabber, next: 0 }
    }

    fn stopped(&self, msg: String) -> Error {
        Error::SourceStopped { what: format!("camera {}", self.device), msg, frames: self.next }
    }
}

impl FrameSource for Camera {
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let mut bad = 0;
        loop {
            let raw = self.grabber.grab().map_err(|msg| self.stopped(msg))?;
            match decode::to_rgb(&raw) {
                Ok(image) => {
                    self.next += 1;
                    return Ok(Some(Frame {
                        image,
                        index: self.next - 1,
                        truth: None,
                        path: None,
                    }));
                }
                Err(e) => {
                    bad += 1;
                    tracing::warn!(device = %self.device, "skipping a frame: {e}");
                    if bad >= MAX_BAD_FRAMES {
                        return Err(self.stopped(format!(
                            "{bad} frames in a row could not be decoded; the last: {e}"
                        )));
                    }
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(format: PixelFormat, width: u32, height: u32, fps: u32) -> Mode {
        Mode { format, width, height, fps }
    }

    #[test]
    fn mjpeg_is_chosen_when_offered_at_the_closest_size_and_rate() {
        use PixelFormat::*;
        let want = m(Mjpeg, 640, 480, 30);
        let offered = [
            m(Yuyv, 640, 480, 30),
            m(Mjpeg, 1280, 720, 30),
            m(Mjpeg, 640, 480, 15),
            m(Mjpeg, 640, 480, 60),
            m(Mjpeg, 320, 240, 30),
        ];
        let (mode, note) = choose_mode(&offered, want).unwrap();
        // 640×480 exists in MJPEG; 15 and 60 are equally far from 30: the first wins.
        assert_eq!(mode, m(Mjpeg, 640, 480, 15));
        assert!(note.unwrap().contains("640×480 MJPG at 15 frames/s"));
        let (mode, note) = choose_mode(&[m(Mjpeg, 640, 480, 30)], want).unwrap();
        assert_eq!((mode, note), (want, None));
    }

    #[test]
    fn without_mjpeg_the_fallback_is_said_in_the_note() {
        use PixelFormat::*;
        let want = m(Mjpeg, 640, 480, 30);
        let offered = [m(Gray, 640, 480, 30), m(Yuyv, 800, 600, 20), m(Yuyv, 640, 480, 10)];
        let (mode, note) = choose_mode(&offered, want).unwrap();
        assert_eq!(mode, m(Yuyv, 640, 480, 10));
        let note = note.unwrap();
        assert!(note.starts_with("no MJPG offered (it offers GREY, YUYV)"), "{note}");
        assert!(choose_mode(&[], want).is_none());
    }

    #[test]
    fn resolutions_parse_and_bad_ones_are_explained() {
        assert_eq!(parse_resolution("640x480"), Ok((640, 480)));
        assert_eq!(parse_resolution("1280×720"), Ok((1280, 720)));
        assert!(parse_resolution("640").unwrap_err().contains("WIDTHxHEIGHT"));
        assert!(parse_resolution("0x480").unwrap_err().contains("between 1 and"));
    }
}
