//! H.264 in MP4 against an independent reference: clips drawn here are encoded by ffmpeg
//! (libx264, from the venv's `imageio-ffmpeg`, at test time), read back by `VideoFile` and
//! compared frame by frame with ffmpeg's own decoding to RGB, with and without B-frames and at
//! a size that is not a multiple of 16 (cropping). Then the CLI: `live --headless` on an MP4
//! finds the synthetic scene's face, `predict` on videos gives frame-indexed records, and
//! other codecs, a truncated file and a file that only claims to be MP4 are refused with the
//! file's name. Without `imageio_ffmpeg` in `.venv` the tests say so and pass.

mod common;
mod live_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cli, texts};
use fer_live::source::{FrameSource, Synthetic};
use fer_live::video::VideoFile;
use live_support::{classifier, face, inside_truth, lines};

/// The ffmpeg that `imageio-ffmpeg` bundles in the venv, if it is there.
fn ffmpeg() -> Option<PathBuf> {
    let py = fer_test_support::venv().join("bin/python");
    let o = Command::new(py)
        .args(["-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    (o.status.success() && p.is_file()).then_some(p)
}

macro_rules! ffmpeg_or_skip {
    () => {
        match ffmpeg() {
            Some(p) => p,
            None => {
                eprintln!(
                    "SKIPPED: imageio_ffmpeg is not in .venv (bash scripts/setup.sh installs it)"
                );
                return;
            }
        }
    };
}

/// Runs ffmpeg quietly; panics with its stderr on failure.
fn run(ff: &Path, args: &[&str]) {
    let o = Command::new(ff)
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Encodes `frames` (RGB, all `w × h`) at 25 frames/s into `out` with `codec` and `extra`.
fn encode(ff: &Path, frames: &[image::RgbImage], out: &Path, codec: &[&str]) {
    let (w, h) = frames[0].dimensions();
    let raw = out.with_extension("rgb");
    std::fs::write(&raw, frames.iter().flat_map(|f| f.as_raw().clone()).collect::<Vec<u8>>())
        .unwrap();
    let size = format!("{w}x{h}");
    let mut args = vec!["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &size, "-r", "25", "-i"];
    args.push(raw.to_str().unwrap());
    args.extend(codec);
    args.push(out.to_str().unwrap());
    run(ff, &args);
}

/// ffmpeg's decoding of `video` to RGB frames of `w × h`.
fn reference(ff: &Path, video: &Path, w: u32, h: u32) -> Vec<image::RgbImage> {
    let o = Command::new(ff)
        .args(["-hide_banner", "-loglevel", "error", "-i", video.to_str().unwrap()])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n = (w * h * 3) as usize;
    o.stdout.chunks_exact(n).map(|c| image::RgbImage::from_raw(w, h, c.to_vec()).unwrap()).collect()
}

/// Frames that differ from each other: a gradient, a square moving right and one moving down.
fn drawn(n: usize, w: u32, h: u32) -> Vec<image::RgbImage> {
    (0..n)
        .map(|i| {
            let i = i as u32;
            image::RgbImage::from_fn(w, h, |x, y| {
                let a = (10 + 17 * i..50 + 17 * i).contains(&x) && (20..70).contains(&y);
                let b = (5 + 13 * i..35 + 13 * i).contains(&y) && (200..240).contains(&x);
                match (a, b) {
                    (true, _) => image::Rgb([230, 40, 40]),
                    (_, true) => image::Rgb([30, 200, 60]),
                    _ => image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128]),
                }
            })
        })
        .collect()
}

/// Mean absolute difference per channel value.
fn mad(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let s: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    s as f64 / a.as_raw().len() as f64
}

/// Every frame of `path` with its time, through the library.
fn read_all(path: &Path) -> Vec<(image::RgbImage, usize, Option<f64>)> {
    let mut v = VideoFile::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(f) = v.next_frame().unwrap() {
        out.push((f.image, f.index, v.time_s()));
    }
    out
}

#[test]
fn h264_frames_match_ffmpegs_own_decoding_with_and_without_b_frames() {
    let ff = ffmpeg_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (322, 242);
    let src = drawn(12, w, h);
    for (name, codec) in [
        ("ip.mp4", &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "5"][..]),
        ("b.mp4", &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "3", "-g", "12"][..]),
        ("b.mov", &["-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p", "-bf", "2"]),
    ] {
        let path = dir.path().join(name);
        encode(&ff, &src, &path, codec);
        let want = reference(&ff, &path, w, h);
        let got = read_all(&path);
        assert_eq!((got.len(), want.len()), (12, 12), "{name}: frame counts");
        for (k, ((img, index, t), r)) in got.iter().zip(&want).enumerate() {
            assert_eq!((img.dimensions(), *index), ((w, h), k), "{name}");
            let d = mad(img, r);
            assert!(d < 2.0, "{name} frame {k}: mean difference {d} from ffmpeg's");
            // Presentation order: each frame is nearer its own reference than its neighbours'.
            for j in [k.wrapping_sub(1), k + 1] {
                if let Some(o) = want.get(j) {
                    assert!(mad(img, o) > d + 1.0, "{name}: frame {k} looks like frame {j}");
                }
            }
            let t = t.expect("a time stamp");
            assert!((t - k as f64 / 25.0).abs() < 1e-6, "{name} frame {k} at {t} s");
        }
        let v = VideoFile::open(&path).unwrap();
        assert!((v.fps().unwrap() - 25.0).abs() < 1e-6);
        assert!(v.describe().contains("H.264 in MP4, 322×242"), "{}", v.describe());
    }
}

/// The synthetic scene's first `n` frames (640 × 480) and where the face was in each.
fn synthetic(n: usize) -> (Vec<image::RgbImage>, Vec<[f64; 4]>) {
    let mut s = Synthetic::new(face(), 640, 480, Some(n)).unwrap();
    let (mut frames, mut truth) = (Vec::new(), Vec::new());
    while let Some(f) = s.next_frame().unwrap() {
        frames.push(f.image);
        truth.push(f.truth.unwrap().map(f64::from));
    }
    (frames, truth)
}

#[test]
fn an_mp4_is_a_live_source_and_predict_gives_records_per_frame() {
    let ff = ffmpeg_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let (frames, truth) = synthetic(10);
    let video = dir.path().join("scene.mp4");
    encode(&ff, &frames, &video, &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"]);
    let out = dir.path().join("out");
    let v = video.to_str().unwrap();
    let args = ["live", "--model", &model, "--headless", "--no-frames", "--source", v];
    let o = cli(&[&args[..], &["--out", out.to_str().unwrap()]].concat(), &[]);
    assert!(o.status.success(), "{}", texts(&o).1);
    let recs = lines(&out.join("frames.jsonl"));
    assert_eq!(recs.len(), 10);
    let inside = inside_truth(&recs, &truth);
    assert!(inside >= 9, "the face was found inside its true box in {inside} of 10 frames");

    // predict: every 3rd frame (0, 3, 6, 9), one record per face with frame and time.
    let o = cli(&["predict", "--model", &model, "--every", "3", v], &[]);
    let (stdout, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let recs: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let idx: Vec<u64> = recs.iter().map(|r| r["frame"].as_u64().unwrap()).collect();
    assert_eq!(idx, [0, 3, 6, 9], "{stdout}");
    for r in &recs {
        assert_eq!(r["path"], v);
        let t = r["time_s"].as_f64().unwrap();
        assert!((t - r["frame"].as_f64().unwrap() / 25.0).abs() < 1e-6, "{r}");
        assert_eq!((r["face"].as_u64(), r["crop"].as_str()), (Some(0), Some("aligned")), "{r}");
        let b: Vec<f64> =
            r["box"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let t = truth[r["frame"].as_u64().unwrap() as usize];
        let c = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
        assert!(t[0] < c[0] && c[0] < t[2] && t[1] < c[1] && c[1] < t[3], "{r}");
        assert_eq!(r["probs"].as_object().unwrap().len(), 7);
    }

    // CSV: the photo columns plus frame and time_s; a photo row leaves them empty.
    let photo = dir.path().join("still.png");
    frames[0].save(&photo).unwrap();
    let o = cli(
        &["predict", "--model", &model, "--format", "csv", "--every", "5", v]
            .into_iter()
            .chain([photo.to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[],
    );
    let (stdout, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(',').collect()).collect();
    let head = &rows[0];
    let (fi, ti) = (head.len() - 2, head.len() - 1);
    assert_eq!((head[fi], head[ti]), ("frame", "time_s"), "{}", head.join(","));
    assert_eq!(head[..7].join(","), "path,face,faces,crop,detector,score,x0");
    assert_eq!(rows.len(), 4, "{stdout}");
    assert_eq!((rows[1][fi], rows[1][ti]), ("0", "0"));
    assert_eq!((rows[2][fi], rows[2][ti]), ("5", "0.2"));
    assert_eq!((rows[3][fi], rows[3][ti]), ("", ""), "a photo has no frame");
    assert!(rows.iter().all(|r| r.len() == head.len()));
}

#[test]
fn other_codecs_truncated_files_and_impostors_are_refused_with_the_files_name() {
    let ff = ffmpeg_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let src = drawn(4, 160, 120);
    let d = |n: &str| dir.path().join(n);
    encode(
        &ff,
        &src,
        &d("hevc.mp4"),
        &["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"],
    );
    encode(&ff, &src, &d("part2.mp4"), &["-c:v", "mpeg4"]);
    encode(&ff, &src, &d("good.mp4"), &["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    let fast = d("fast.mp4");
    encode(
        &ff,
        &src,
        &fast,
        &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"],
    );
    let good = std::fs::read(d("good.mp4")).unwrap();
    std::fs::write(d("cut.mp4"), &good[..good.len() / 2]).unwrap();
    let fast_bytes = std::fs::read(&fast).unwrap();
    std::fs::write(d("cutfast.mp4"), &fast_bytes[..fast_bytes.len() - 200]).unwrap();
    std::fs::write(d("text.mp4"), "this is not a video\n").unwrap();
    let cases: [(&str, &[&str]); 5] = [
        ("hevc.mp4", &["H.265/HEVC", "not H.264", "ffmpeg -i", "libx264"]),
        ("part2.mp4", &["MPEG-4 part 2 (`mp4v`)", "ffmpeg -i"]),
        ("cut.mp4", &["the file is truncated", "moov"]),
        ("cutfast.mp4", &["the file is truncated: frame ", "lies past its end"]),
        ("text.mp4", &["not a video file this build reads", "ffmpeg -i"]),
    ];
    for (name, says) in cases {
        let p = d(name);
        let (out, p) = (d("out"), p.to_str().unwrap());
        let live = ["live", "--model", &model, "--headless", "--out", out.to_str().unwrap()];
        for args in [[&live[..], &["--source", p]].concat(), vec!["predict", "--model", &model, p]]
        {
            let o = cli(&args, &[]);
            let (_, err) = texts(&o);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
            let line =
                err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{err}"));
            assert!(line.contains(p), "{line}");
            for s in says {
                assert!(line.contains(s), "{name}: {line}");
            }
        }
    }
}
