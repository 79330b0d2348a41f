//! The live pipeline end to end through the CLI, headless: the synthetic source (a real face
//! photo moved around a frame, so the truth is known) and an image folder; the JSON lines; the
//! errors for no camera and no display.

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
    let o = cli(
        &["live", "--model", &model, "--source", "synthetic"],
        &[("DISPLAY", ""), ("WAYLAND_DISPLAY", "")],
    );
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--headless"), "{err}");
}
