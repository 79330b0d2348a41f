//! The real camera: nokhwa's V4L2 backend, opened and read on a capture thread of its own
//! (a nokhwa camera cannot move between threads), its frames handed over through a channel.

use std::sync::mpsc;

use nokhwa::utils::{
    CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};

use super::{Grabber, Mode, PixelFormat, RawFrame, choose_mode};

const ALL: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::GRAY,
];

fn pixel(f: FrameFormat) -> PixelFormat {
    match f {
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::RAWRGB => PixelFormat::Rgb,
        FrameFormat::RAWBGR => PixelFormat::Bgr,
        FrameFormat::GRAY => PixelFormat::Gray,
    }
}

fn frame_format(p: PixelFormat) -> FrameFormat {
    ALL[ALL.iter().position(|f| pixel(*f) == p).expect("every pixel format has a frame format")]
}

/// Seconds without a frame after which a streaming camera counts as stalled (the first frame
/// may take longer: some cameras adjust exposure first).
const STALL_SECS: u64 = 5;
const FIRST_FRAME_SECS: u64 = 15;

/// The receiving end of the capture thread.
struct Channel {
    rx: mpsc::Receiver<Result<RawFrame, String>>,
    started: bool,
}

impl Grabber for Channel {
    fn grab(&mut self) -> Result<RawFrame, String> {
        let secs = if self.started { STALL_SECS } else { FIRST_FRAME_SECS };
        let r = match self.rx.recv_timeout(std::time::Duration::from_secs(secs)) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("no frame for {secs} s")),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err("the capture thread ended".into()),
        };
        self.started = true;
        r
    }
}

/// Opens the device, picks and sets the mode, starts streaming.
fn setup(index: u32, want: Mode) -> Result<(nokhwa::Camera, Mode, String), String> {
    let device = super::devices::path(index);
    let any = RequestedFormat::with_formats(RequestedFormatType::None, &ALL);
    let mut cam = nokhwa::Camera::new(CameraIndex::Index(index), any)
        .map_err(|e| format!("cannot open it: {e}"))?;
    let offered: Vec<Mode> = cam
        .compatible_camera_formats()
        .map_err(|e| format!("cannot list its formats: {e}"))?
        .iter()
        .map(|f| Mode {
            format: pixel(f.format()),
            width: f.width(),
            height: f.height(),
            fps: f.frame_rate(),
        })
        .collect();
    let (mode, note) = choose_mode(&offered, want).ok_or_else(|| {
        "it offers no format this program decodes (MJPG, YUYV, NV12, RGB3, BGR3, GREY)".to_string()
    })?;
    let format = CameraFormat::new(
        Resolution::new(mode.width, mode.height),
        frame_format(mode.format),
        mode.fps,
    );
    let exact = [format.format()];
    cam.set_camera_requset(RequestedFormat::with_formats(
        RequestedFormatType::Exact(format),
        &exact,
    ))
    .map_err(|e| format!("cannot set {mode}: {e}"))?;
    cam.open_stream().map_err(|e| format!("cannot start streaming {mode}: {e}"))?;
    match note {
        Some(note) => tracing::warn!("camera {device}: {note}"),
        None => tracing::info!("camera {device}: capturing {mode}"),
    }
    let name = cam.info().human_name();
    Ok((cam, mode, name))
}

/// Opens camera `index` on a capture thread; returns its grabber, the mode chosen and the
/// device's name. The thread ends when the grabber is dropped or the camera fails.
pub(super) fn open(index: u32, want: Mode) -> Result<(Box<dyn Grabber>, Mode, String), String> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("camera {index}"))
        .spawn(move || {
            let mut cam = match setup(index, want) {
                Ok((cam, mode, name)) => {
                    let _ = ready_tx.send(Ok((mode, name)));
                    cam
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            loop {
                let frame = cam.frame().map_err(|e| e.to_string()).map(|b| RawFrame {
                    format: pixel(b.source_frame_format()),
                    width: b.resolution().width(),
                    height: b.resolution().height(),
                    data: b.buffer().to_vec(),
                });
                let failed = frame.is_err();
                if tx.send(frame).is_err() || failed {
                    break;
                }
            }
            let _ = cam.stop_stream();
        })
        .map_err(|e| format!("cannot start the capture thread: {e}"))?;
    let (mode, name) =
        ready_rx.recv().map_err(|_| "the capture thread ended while opening".to_string())??;
    Ok((Box::new(Channel { rx, started: false }), mode, name))
}
