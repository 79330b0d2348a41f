//! A camera that stops mid-stream, without hardware: a grabber that delivers MJPEG frames of
//! the synthetic scene, then fails the way V4L2 does when the device is unplugged. The headless
//! pipeline must end with an error naming the device and keep everything it wrote before.

// The fixtures are shared with the binary's tests in infer/tests.
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/live_support/mod.rs"]
mod live_support;

use fer_infer::face::{BlazeFace, Range};
use fer_infer::{BackendOptions, MetaOverrides, Model};
use fer_live::Live;
use fer_live::headless::{self, Options};
use fer_live::source::camera::{Camera, Grabber, PixelFormat, RawFrame};
use fer_live::source::{FrameSource, Latest};
use fer_live::video::VideoFile;
use live_support::{classifier, inside_truth, synthetic_jpegs};

const UNPLUGGED: &str = "No such device (os error 19)";

/// Hands out `frames` (MJPEG, or anything for broken frames), then fails.
struct Script {
    frames: Vec<Vec<u8>>,
    next: usize,
}

impl Grabber for Script {
    fn grab(&mut self) -> Result<RawFrame, String> {
        let data = self.frames.get(self.next).ok_or(UNPLUGGED)?.clone();
        self.next += 1;
        Ok(RawFrame { format: PixelFormat::Mjpeg, width: 640, height: 480, data })
    }
}

fn camera(frames: Vec<Vec<u8>>) -> Camera {
    Camera::with_grabber(
        "/dev/video0".into(),
        "scripted".into(),
        Box::new(Script { frames, next: 0 }),
    )
}

#[test]
fn an_unplugged_camera_ends_the_run_naming_the_device_and_the_output_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = classifier(dir.path());
    let model =
        Model::open(model_path.as_ref(), &BackendOptions::ort_cpu(), &MetaOverrides::default())
            .unwrap();
    let detector = BlazeFace::open(
        &Range::Short.default_path().unwrap(),
        Range::Short,
        &BackendOptions::ort_cpu().with_threads(1),
    )
    .unwrap();
    let mut live = Live::new(detector, model, 0.5);
    let (jpegs, truth) = synthetic_jpegs(5);
    let out = dir.path().join("out");
    let video = out.join("run.avi");
    let opts = Options {
        out: out.clone(),
        frames: None,
        png: true,
        video: Some(video.clone()),
        fps: 30.0,
    };

    let err = headless::run(&mut camera(jpegs), &mut live, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("camera /dev/video0 stopped delivering frames: {UNPLUGGED} (after 5 frames)")
    );

    // The five frames before are all there: JSON lines, PNGs, a finished AVI.
    let text = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 5);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["frame"], i);
        let png = image::open(out.join(format!("frames/{i:06}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (640, 480));
    }
    let inside = inside_truth(&recs, &truth);
    assert!(inside >= 4, "the face was inside its true box in {inside} of 5 frames");
    assert!(!out.join("frames/000005.png").exists());
    let bytes = std::fs::read(&video).unwrap();
    let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    assert_eq!(riff as usize, bytes.len() - 8, "the AVI's RIFF size was completed");
    let mut back = VideoFile::open(&video).unwrap();
    let mut n = 0;
    while let Some(f) = back.next_frame().unwrap() {
        assert_eq!(f.image.dimensions(), (640, 480));
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn the_window_capture_thread_passes_the_stop_on_after_the_frames() {
    let (jpegs, _) = synthetic_jpegs(3);
    let mut latest = Latest::spawn(Box::new(camera(jpegs)));
    let mut seen = Vec::new();
    let err = loop {
        match latest.next_frame() {
            Ok(Some(f)) => seen.push(f.index),
            Ok(None) => panic!("a camera does not end by itself"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(!seen.is_empty() && seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(
        err.starts_with("camera /dev/video0 stopped delivering frames: No such device"),
        "{err}"
    );
}

#[test]
fn a_few_broken_frames_are_skipped_but_a_run_of_them_stops_the_camera() {
    let (jpegs, _) = synthetic_jpegs(2);
    let broken = || b"\xFF\xD8 not a jpeg".to_vec();
    let mut frames = vec![jpegs[0].clone(), broken(), broken(), jpegs[1].clone()];
    frames.extend((0..fer_live::source::camera::MAX_BAD_FRAMES).map(|_| broken()));
    let mut cam = camera(frames);
    assert_eq!(cam.next_frame().unwrap().unwrap().index, 0);
    assert_eq!(cam.next_frame().unwrap().unwrap().index, 1, "two broken frames are skipped");
    let err = cam.next_frame().err().unwrap().to_string();
    assert!(
        err.starts_with(
            "camera /dev/video0 stopped delivering frames: 10 frames in a row could not be \
             decoded; the last: MJPEG frame (13 bytes)"
        ),
        "{err}"
    );
    assert!(err.ends_with("(after 2 frames)"), "{err}");
}
