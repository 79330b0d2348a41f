//! `fer-infer live` (also `fer-infer --webcam`): the live demo, in a window or headless.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fer_infer::Model;
use fer_infer::face::{BlazeFace, Range};
use fer_infer::live::source::{FrameSource, ImageFolder, Latest, Paced, Synthetic};
use fer_infer::live::{Live, draw};

use crate::UsageError;
use crate::args::{BackendArgs, MetaArgs, read_model};
use crate::window;

/// Arguments of `live`.
#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The exported classifier (`.onnx`).
    #[arg(long)]
    model: PathBuf,
    /// Frames: `camera` (or `camera:N`, the N-th video device), `synthetic` (a face moving over
    /// a background), or an image file or folder (frames in name order).
    #[arg(long, default_value = "camera")]
    source: String,
    /// Without a window: annotated frames (PNG) and one JSON line per frame go to `--out`.
    /// In the window: q (or Esc) quits, s saves a snapshot into `--out`.
    #[arg(long)]
    headless: bool,
    /// Output folder of `--headless` (`frames/*.png`, `frames.jsonl`).
    #[arg(long, default_value = "runs/live")]
    out: PathBuf,
    /// Stop after this many frames (synthetic: default 60 headless, endless in the window;
    /// folders end by themselves).
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
    /// Do not write annotated PNG frames (JSON lines only; faster).
    #[arg(long)]
    no_frames: bool,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    meta: MetaArgs,
}

fn default_face() -> PathBuf {
    PathBuf::from(option_env!("FER_REPO_ROOT").unwrap_or("."))
        .join(".deps/faces/astronaut_face.png")
}

/// Video devices of this machine (V4L2 nodes), for the no-camera message.
fn video_devices() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("video"))
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn open_source(a: &LiveArgs) -> anyhow::Result<Box<dyn FrameSource>> {
    let s = a.source.as_str();
    if s == "camera" || s.starts_with("camera:") {
        let devices = video_devices();
        if devices.is_empty() {
            return Err(UsageError(
                "no camera: this machine has no video devices (/dev/video*); use \
                 --source synthetic or --source FOLDER_OF_IMAGES"
                    .into(),
            )
            .into());
        }
        return Err(UsageError(format!(
            "camera capture is not in this build yet (devices found: {}); use --source \
             synthetic or --source FOLDER_OF_IMAGES",
            devices.join(", ")
        ))
        .into());
    }
    if s == "synthetic" {
        let path = a.face.clone().unwrap_or_else(default_face);
        let face = fer_infer::predict::load_image(&path)
            .with_context(|| "the synthetic source's face photo (scripts/setup.sh makes it)")?
            .to_rgb8();
        // Headless runs end (60 frames by default); the window runs until q.
        let frames = a.frames.or(a.headless.then_some(60));
        return Ok(Box::new(Synthetic::new(face, 640, 480, frames)?));
    }
    let p = Path::new(s);
    if !p.exists() {
        return Err(UsageError(format!(
            "--source {s}: not `camera`, `synthetic`, nor an existing file or folder"
        ))
        .into());
    }
    Ok(Box::new(ImageFolder::open(p)?))
}

pub fn run(a: LiveArgs) -> anyhow::Result<()> {
    let mut source = open_source(&a)?;
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if !a.headless && !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return Err(UsageError(
            "no display (DISPLAY and WAYLAND_DISPLAY are unset): add --headless to write \
             annotated frames and JSON lines to --out"
                .into(),
        )
        .into());
    }
    let (file, meta) = read_model(&a.model, &a.meta)?;
    let model = Model::from_parts(file, meta, &a.backend.options())
        .with_context(|| format!("loading {}", a.model.display()))?;
    let det_path = a.detector_file.clone().unwrap_or_else(|| a.detector.default_path());
    let mut detector =
        BlazeFace::open(&det_path, a.detector, a.backend.backend, a.backend.device.threads)
            .context("loading the face detector")?;
    detector.score_threshold = a.min_score;
    let mut live = Live::new(detector, model, a.smoothing);
    if !a.headless {
        // The window shows the newest frame: the source runs on a capture thread, paced like a
        // 30 frames/s camera when it is the synthetic scene.
        if a.source == "synthetic" {
            source = Box::new(Paced::new(source, 30.0));
        }
        let mut latest = Latest::spawn(source);
        let r = window::run(&mut latest, &mut live, &a.out, a.frames);
        if latest.dropped() > 0 {
            eprintln!("{} frames were replaced by newer ones before display", latest.dropped());
        }
        return r;
    }
    let frames_dir = a.out.join("frames");
    std::fs::create_dir_all(&frames_dir)
        .with_context(|| format!("creating {}", frames_dir.display()))?;
    let jsonl = a.out.join("frames.jsonl");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&jsonl).with_context(|| format!("creating {}", jsonl.display()))?,
    );
    tracing::info!(source = %source.describe(), out = %a.out.display(), "live demo, headless");
    let (mut n, mut faces, start) = (0usize, 0usize, Instant::now());
    let limit = a.frames.unwrap_or(usize::MAX);
    loop {
        if n >= limit {
            break;
        }
        let t = Instant::now();
        let Some(mut frame) = source.next_frame()? else { break };
        let decode_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut r = live.process(&frame, decode_ms)?;
        if !a.no_frames {
            let t = Instant::now();
            draw::annotate(&mut frame.image, &r);
            r.ms.draw = t.elapsed().as_secs_f64() * 1e3;
            let p = frames_dir.join(format!("{:06}.png", frame.index));
            frame.image.save(&p).with_context(|| format!("writing {}", p.display()))?;
        }
        serde_json::to_writer(&mut out, &r)?;
        writeln!(out)?;
        faces += r.faces.len();
        n += 1;
    }
    out.flush()?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{n} frames, {faces} faces in {secs:.1} s ({:.1} frames/s); {}",
        n as f64 / secs.max(1e-9),
        jsonl.display()
    );
    Ok(())
}
