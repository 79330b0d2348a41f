//! `fer-infer live` (also `fer-infer --webcam`): the live demo, in a window or headless.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fer_infer::Model;
use fer_infer::face::{BlazeFace, Range};
use fer_live::source::camera::{self, Camera};
use fer_live::source::{FrameSource, ImageFolder, Latest, Paced, Synthetic};
use fer_live::video::{self, VideoFile};
use fer_live::{Live, headless, window};

use crate::UsageError;
use crate::args::{BackendArgs, MetaArgs, read_model};

/// Arguments of `live`.
#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The exported classifier (`.onnx`).
    /// Default: the built-in FER-2013 student (docs/models.md).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Frames: `camera` (or `camera:N`, the video device /dev/videoN), `synthetic` (a face
    /// moving over a background), a video (H.264 in `.mp4`/`.m4v`/`.mov`, MJPEG in `.avi`, raw
    /// `.mjpeg`/`.mjpg`), or an image file or folder (frames in name order).
    #[arg(long, default_value = "camera")]
    source: String,
    /// Camera (and synthetic scene) frame size, WIDTHxHEIGHT; the camera's closest is used.
    #[arg(long, default_value = "640x480", value_parser = parse_resolution)]
    resolution: (u32, u32),
    /// Camera frame rate to ask for; also the pace of the synthetic scene and of raw MJPEG
    /// files in the window, and the rate written into `--out-video` AVI files (an AVI or MP4
    /// source keeps its own).
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Without a window: annotated frames (PNG) and one JSON line per frame go to `--out`.
    /// In the window: q (or Esc) quits, s saves a snapshot into `--out`.
    #[arg(long)]
    headless: bool,
    /// Output folder of `--headless` (`frames/*.png`, `frames.jsonl`).
    #[arg(long, default_value = "runs/live")]
    out: PathBuf,
    /// With `--headless`: also write the annotated frames as an MJPEG video, a raw stream
    /// (`.mjpeg`, `.mjpg`) or in AVI (`.avi`).
    #[arg(long)]
    out_video: Option<PathBuf>,
    /// Stop after this many frames (synthetic: default 60 headless, endless in the window;
    /// folders and videos end by themselves, cameras do not).
    #[arg(long)]
    frames: Option<usize>,
    /// Face detector: `short` range (128 px, webcam distance) or `full` range (256 px).
    #[arg(long, value_enum, default_value = "short")]
    detector: Range,
    /// The detector's ONNX file (default: `.deps/blazeface/` from scripts/setup.sh).
    #[arg(long)]
    detector_file: Option<PathBuf>,
    /// Minimum detector confidence.
    #[arg(long, default_value_t = 0.5)]
    min_score: f32,
    /// Weight of the newest logits in each face's running average (1: no smoothing).
    #[arg(long, default_value_t = 0.5)]
    smoothing: f32,
    /// The face photo the synthetic source moves around (default: the astronaut face that
    /// scripts/setup.sh crops from scikit-image's public-domain test image).
    #[arg(long)]
    face: Option<PathBuf>,
    /// Do not write annotated PNG frames (JSON lines, and `--out-video` if given, only).
    #[arg(long)]
    no_frames: bool,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    meta: MetaArgs,
}

/// The synthetic source's face: the embedded astronaut crop (written once to the cache), else
/// the checkout's `.deps/faces/astronaut_face.png`.
fn default_face() -> anyhow::Result<PathBuf> {
    if let Some(bytes) = fer_infer::assets::ASTRONAUT_FACE {
        return fer_infer::assets::cached("astronaut_face.png", bytes)
            .context("writing the built-in face photo");
    }
    Ok(fer_infer::assets::in_checkout(".deps/faces/astronaut_face.png"))
}

fn parse_resolution(s: &str) -> Result<(u32, u32), String> {
    camera::parse_resolution(s)
}

/// A frame source and, for the window, the rate to pace it at (`None`: it paces itself).
fn open_source(a: &LiveArgs) -> anyhow::Result<(Box<dyn FrameSource>, Option<f64>)> {
    let s = a.source.as_str();
    let (width, height) = a.resolution;
    if let Some(rest) = s.strip_prefix("camera") {
        let index = match rest.strip_prefix(':') {
            None if rest.is_empty() => 0,
            Some(n) => n.parse::<u32>().map_err(|_| {
                UsageError(format!(
                    "--source {s}: the camera is `camera` or `camera:N`, N a number"
                ))
            })?,
            None => return Err(UsageError(format!("--source {s}: did you mean camera:N?")).into()),
        };
        let want = camera::Mode { format: camera::PixelFormat::Mjpeg, width, height, fps: a.fps };
        return Ok((Box::new(Camera::open(index, want)?), None));
    }
    if s == "synthetic" {
        let path = match &a.face {
            Some(f) => f.clone(),
            None => default_face()?,
        };
        let face = fer_infer::predict::load_image(&path)
            .with_context(|| "the synthetic source's face photo (scripts/setup.sh makes it)")?
            .to_rgb8();
        // Headless runs end (60 frames by default); the window runs until q.
        let frames = a.frames.or(a.headless.then_some(60));
        let src = Synthetic::new(face, width, height, frames)?;
        return Ok((Box::new(src), Some(f64::from(a.fps))));
    }
    let p = Path::new(s);
    if video::is_video_path(p) {
        let v = VideoFile::open(p)?;
        let fps = v.fps().unwrap_or(f64::from(a.fps));
        return Ok((Box::new(v), Some(fps)));
    }
    if !p.exists() {
        return Err(UsageError(format!(
            "--source {s}: not `camera`, `camera:N`, `synthetic`, nor an existing video, image \
             or folder"
        ))
        .into());
    }
    Ok((Box::new(ImageFolder::open(p)?), None))
}

pub fn run(a: LiveArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if !a.headless && !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return Err(UsageError(
            "no display (DISPLAY and WAYLAND_DISPLAY are unset): add --headless to write \
             annotated frames and JSON lines to --out"
                .into(),
        )
        .into());
    }
    if a.out_video.is_some() && !a.headless {
        return Err(UsageError("--out-video is written by --headless runs".into()).into());
    }
    let (mut source, pace) = open_source(&a)?;
    let (file, meta) = read_model(&model_path, &a.meta)?;
    let model = Model::from_parts(file, meta, &a.backend.options())
        .with_context(|| format!("loading {}", model_path.display()))?;
    let det_path = match &a.detector_file {
        Some(f) => f.clone(),
        None => a.detector.default_path().context("writing the built-in face detector")?,
    };
    let mut detector = BlazeFace::open(&det_path, a.detector, &a.backend.options())
        .context("loading the face detector")?;
    detector.score_threshold = a.min_score;
    let mut live = Live::new(detector, model, a.smoothing);
    // A folder of photos: each is classified on its own (tracking and smoothing are for video).
    live.set_stills(source.stills());
    if !a.headless {
        // The window shows the newest frame: the source runs on a capture thread, paced like a
        // camera when it is the synthetic scene or a video file.
        if let Some(fps) = pace {
            source = Box::new(Paced::new(source, fps));
        }
        let mut latest = Latest::spawn(source);
        let mut said = |p: &Path| eprintln!("snapshot: {}", p.display());
        let r = window::run(&mut latest, &mut live, &a.out, a.frames, &mut said);
        if let Ok(shown) = &r {
            eprintln!("{} frames shown ({:.1} frames/s)", shown.frames, shown.fps);
        }
        if latest.dropped() > 0 {
            eprintln!("{} frames were replaced by newer ones before display", latest.dropped());
        }
        return r.map(|_| ()).map_err(Into::into);
    }
    let opts = headless::Options {
        out: a.out.clone(),
        frames: a.frames,
        png: !a.no_frames,
        video: a.out_video.clone(),
        fps: pace.unwrap_or(f64::from(a.fps)),
    };
    let s = match headless::run(source.as_mut(), &mut live, &opts) {
        Ok(s) => s,
        Err(e @ fer_live::Error::SourceStopped { .. }) => {
            return Err(anyhow::anyhow!(
                "{e}; what was written before is kept in {}",
                a.out.display()
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let video = a.out_video.as_ref().map_or(String::new(), |v| format!(", {}", v.display()));
    eprintln!(
        "{} frames, {} faces in {:.1} s ({:.1} frames/s); {}{video}",
        s.frames,
        s.faces,
        s.secs,
        s.frames as f64 / s.secs.max(1e-9),
        s.jsonl.display()
    );
    Ok(())
}
