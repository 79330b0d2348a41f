//! Fixtures of the live tests: a small exported classifier, the synthetic scene's frames as
//! JPEGs with where the face was put, and checks of the JSON lines.
#![allow(dead_code)]

use fer_live::source::{FrameSource, Synthetic};
use fer_models_spec::{Arch, ArchConfig};
use serde_json::Value;

use crate::common::export;

/// A MobileNetV3-Small classifier at 64 px with random weights, exported to `dir`.
pub fn classifier(dir: &std::path::Path) -> String {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(64);
    export(dir, "clf", &cfg, 1.0, false, 1).to_str().unwrap().to_string()
}

/// The JSON lines of `path`.
pub fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Checks every face's probabilities (one per label, summing to 1, the confidence their
/// maximum); returns the number of frames with a face.
pub fn check_faces(recs: &[Value]) -> usize {
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

/// The synthetic scene's face photo (cropped by scripts/setup.sh).
pub fn face() -> image::RgbImage {
    image::open(concat!(env!("FER_REPO_ROOT"), "/.deps/faces/astronaut_face.png"))
        .expect("run scripts/setup.sh")
        .to_rgb8()
}

/// The synthetic scene's first `n` frames, JPEG-encoded, and where the face was in each.
pub fn synthetic_jpegs(n: usize) -> (Vec<Vec<u8>>, Vec<[f64; 4]>) {
    let mut s = Synthetic::new(face(), 640, 480, Some(n)).unwrap();
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
pub fn inside_truth(recs: &[Value], truth: &[[f64; 4]]) -> usize {
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
