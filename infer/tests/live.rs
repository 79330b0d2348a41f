//! The live pipeline end to end through the CLI, headless: the synthetic source (a real face
//! photo moved around a frame, so the truth is known), an image folder and MJPEG videos (raw
//! and in AVI, read and written); the JSON lines; a video that breaks mid-stream; the errors
//! for no camera and no display.

mod common;

use common::{cli, export, texts};
use fer_infer::live::source::{FrameSource, Synthetic};
use fer_models_spec::{Arch, ArchConfig};
use serde_json::Value;

fn classifier(dir: &std::path::Path) -> String {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(64);
    export(dir, "clf", &cfg, 1.0, false, 1).to_str().unwrap().to_string()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn check_faces(recs: &[Value]) -> usize {
    let mut found = 0;
    for r in recs {
        let labels = r["labels"].as_array().unwrap().len();
        for f in r["faces"].as_array().unwrap() {
            let probs: Vec<f64> =
                f["probs"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
            assert_eq!(probs.len(), labels);
            let sum: f64 = probs.iter().sum();
            assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
            let best = probs.iter().cloned().fold(0.0, f64::max);
            assert!((f["confidence"].as_f64().unwrap() - best).abs() < 1e-6);
        }
        found += !r["faces"].as_array().unwrap().is_empty() as usize;
    }
    found
}

#[test]
fn synthetic_frames_find_the_face_where_it_was_put() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let out = dir.path().join("live");
    let o = cli(
        &[
            "live",
            "--model",
            &model,
            "--source",
            "synthetic",
            "--headless",
            "--frames",
            "24",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let (_, err) = texts(&o);
    assert!(o.status.success(), "{err}");
    let recs = lines(&out.join("frames.jsonl"));
    assert_eq!(recs.len(), 24);
    assert!(out.join("frames/000023.png").exists());
    let mut inside = 0;
    for r in &recs {
        let t: Vec<f64> =
            r["truth"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        if let Some(f) = r["faces"].as_array().unwrap().first() {
            let b: Vec<f64> =
                f["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let c = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
            inside += (t[0] < c[0] && c[0] < t[2] && t[1] < c[1] && c[1] < t[3]) as usize;
            assert_eq!(f["id"], 0, "one face, one track");
        }
        for stage in ["decode", "detect", "align", "classify", "draw"] {
            assert!(r["ms"][stage].as_f64().unwrap() >= 0.0);
        }
    }
    assert!(inside >= 21, "the face was found inside its true box in {inside} of 24 frames");
    assert_eq!(
        check_faces(&recs),
        recs.iter().filter(|r| !r["faces"].as_array().unwrap().is_empty()).count()
    );
}

#[test]
fn an_image_folder_is_a_source_too_on_tract() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let face = image::open(concat!(env!("FER_REPO_ROOT"), "/.deps/faces/astronaut_face.png"))
        .expect("run scripts/setup.sh")
        .to_rgb8();
    let mut s = Synthetic::new(face, 640, 480, Some(3)).unwrap();
    while let Some(f) = s.next_frame().unwrap() {
        f.image.save(frames.join(format!("f{}.png", f.index))).unwrap();
    }
    let out = dir.path().join("out");
    let o = cli(
        &[
            "live",
            "--model",
            &model,
            "--source",
            frames.to_str().unwrap(),
            "--headless",
            "--backend",
            "tract",
            "--no-frames",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", texts(&o).1);
    let recs = lines(&out.join("frames.jsonl"));
    assert_eq!(recs.len(), 3);
    assert_eq!(check_faces(&recs), 3, "a face in every frame");
}

#[test]
fn no_camera_and_no_display_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let o = cli(&["--webcam", "--model", &model, "--headless"], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let has_devices = std::fs::read_dir("/dev")
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("video"));
    if has_devices {
        assert!(err.contains("/dev/video"), "{err}");
    } else {
        assert!(err.contains("no camera") && err.contains("--source synthetic"), "{err}");
    }
    // A device number that is not there: named, with the devices that are, or none.
    let o = cli(&["live", "--model", &model, "--headless", "--source", "camera:77"], &[]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    if has_devices {
        assert!(
            err.contains("no camera /dev/video77: the video devices here are /dev/video"),
            "{err}"
        );
    } else {
        assert!(err.contains("no camera: this machine has no video devices"), "{err}");
    }
    for (flag, value, says) in [
        ("--source", "camera:x", "`camera` or `camera:N`"),
        ("--resolution", "640", "WIDTHxHEIGHT"),
    ] {
        let o = cli(&["live", "--model", &model, "--headless", flag, value], &[]);
        let (_, err) = texts(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    let mp4 = dir.path().join("clip.mp4");
    std::fs::write(&mp4, b"....ftypisom").unwrap();
    let o = cli(&["live", "--model", &model, "--headless", "--source", mp4.to_str().unwrap()], &[]);
    let (_, err) = texts(&o);
    assert!(!o.status.success());
    assert!(err.contains("only MJPEG video is read") && err.contains("ffmpeg -i"), "{err}");
    let o = cli(
        &["live", "--model", &model, "--source", "synthetic"],
        &[("DISPLAY", ""), ("WAYLAND_DISPLAY", "")],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--headless"), "{err}");
}

/// The synthetic scene's first `n` frames, JPEG-encoded, and where the face was in each.
fn synthetic_jpegs(n: usize) -> (Vec<Vec<u8>>, Vec<[f64; 4]>) {
    let face = image::open(concat!(env!("FER_REPO_ROOT"), "/.deps/faces/astronaut_face.png"))
        .expect("run scripts/setup.sh")
        .to_rgb8();
    let mut s = Synthetic::new(face, 640, 480, Some(n)).unwrap();
    let (mut jpegs, mut truth) = (Vec::new(), Vec::new());
    while let Some(f) = s.next_frame().unwrap() {
        let mut j = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut j, 90)
            .encode_image(&f.image)
            .unwrap();
        jpegs.push(j);
        truth.push(f.truth.unwrap().map(f64::from));
    }
    (jpegs, truth)
}

/// Frames whose first face's centre lies inside that frame's true box.
fn inside_truth(recs: &[Value], truth: &[[f64; 4]]) -> usize {
    recs.iter()
        .zip(truth)
        .filter(|(r, t)| {
            r["faces"].as_array().unwrap().first().is_some_and(|f| {
                let b: Vec<f64> =
                    f["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                let c = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
                t[0] < c[0] && c[0] < t[2] && t[1] < c[1] && c[1] < t[3]
            })
        })
        .count()
}

/// Splits concatenated JPEGs at every `FF D9 FF D8` (valid for encoder output without
/// thumbnails; independent of the library's marker walk) and decodes each.
fn decode_concatenated(bytes: &[u8]) -> Vec<image::RgbImage> {
    let mut starts = vec![0];
    starts.extend(
        (2..bytes.len().saturating_sub(1))
            .filter(|&i| bytes[i - 2..i + 2] == [0xFF, 0xD9, 0xFF, 0xD8]),
    );
    starts.push(bytes.len());
    starts
        .windows(2)
        .map(|w| image::load_from_memory(&bytes[w[0]..w[1]]).unwrap().to_rgb8())
        .collect()
}

#[test]
fn an_mjpeg_video_is_a_source_and_the_annotated_frames_are_written_as_mjpeg() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let (jpegs, truth) = synthetic_jpegs(12);
    let video = dir.path().join("scene.mjpeg");
    std::fs::write(&video, jpegs.concat()).unwrap();
    let out = dir.path().join("out");
    let written = out.join("annotated.mjpeg");
    let o = cli(
        &[
            "live",
            "--model",
            &model,
            "--source",
            video.to_str().unwrap(),
            "--headless",
            "--no-frames",
            "--out",
            out.to_str().unwrap(),
            "--out-video",
            written.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", texts(&o).1);
    let recs = lines(&out.join("frames.jsonl"));
    assert_eq!(recs.len(), 12);
    let inside = inside_truth(&recs, &truth);
    assert!(inside >= 11, "the face was found inside its true box in {inside} of 12 frames");
    assert_eq!(check_faces(&recs), 12);
    assert!(!out.join("frames").exists(), "--no-frames writes no PNG");
    let frames = decode_concatenated(&std::fs::read(&written).unwrap());
    assert_eq!(frames.len(), 12);
    assert!(frames.iter().all(|f| f.dimensions() == (640, 480)));
}

#[test]
fn avi_out_and_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let avi = dir.path().join("run.avi");
    let run = |source: &str, out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args =
            vec!["live", "--model", &model, "--headless", "--no-frames", "--source", source];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(extra);
        let o = cli(&args, &[]);
        assert!(o.status.success(), "{}", texts(&o).1);
        lines(&out.join("frames.jsonl"))
    };
    run("synthetic", "a", &["--frames", "10", "--fps", "25", "--out-video", avi.to_str().unwrap()]);
    // The header, by the AVI layout: RIFF size, 'AVI ', the frame period, the frame count, an
    // index entry per frame.
    let b = std::fs::read(&avi).unwrap();
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!((&b[..4], &b[8..12]), (&b"RIFF"[..], &b"AVI "[..]));
    assert_eq!(u32_at(4) as usize, b.len() - 8);
    assert_eq!((u32_at(32), u32_at(48)), (40_000, 10), "40 ms per frame at 25 frames/s, 10 frames");
    let idx = b.windows(4).rposition(|w| w == b"idx1").unwrap();
    assert_eq!(u32_at(idx + 4), 16 * 10);
    assert_eq!(b.len(), idx + 8 + 160);
    // Read back: the annotated synthetic frames, the face still found where it was put.
    let recs = run(avi.to_str().unwrap(), "b", &[]);
    assert_eq!(recs.len(), 10);
    let (_, truth) = synthetic_jpegs(10);
    let inside = inside_truth(&recs, &truth);
    assert!(inside >= 9, "the face was found inside its true box in {inside} of 10 frames");
}

#[test]
fn a_video_that_breaks_mid_stream_stops_with_its_name_and_the_frames_before_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let model = classifier(dir.path());
    let (mut jpegs, _) = synthetic_jpegs(5);
    // Frame 3 keeps its JPEG structure but loses its frame header (SOF0 becomes a comment).
    let sof = jpegs[3].windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpegs[3][sof + 1] = 0xFE;
    let video = dir.path().join("broken.mjpg");
    std::fs::write(&video, jpegs.concat()).unwrap();
    let byte: usize = jpegs[..3].iter().map(Vec::len).sum();
    let out = dir.path().join("out");
    let o = cli(
        &["live", "--model", &model, "--headless", "--source", video.to_str().unwrap()]
            .into_iter()
            .chain(["--out", out.to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let want = format!(
        "video file {} stopped delivering frames: frame 3 (byte {byte}) is not a valid JPEG",
        video.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(
        err.contains(&format!(
            "(after 3 frames); what was written before is kept in {}",
            out.display()
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(lines(&out.join("frames.jsonl")).len(), 3);
    for i in 0..3 {
        assert!(image::open(out.join(format!("frames/{i:06}.png"))).is_ok());
    }
}
