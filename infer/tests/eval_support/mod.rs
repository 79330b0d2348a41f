//! Fixtures of the eval and calibrate tests: image-folder and CK+-style datasets written as
//! PNGs, models exported from random weights (optionally over-confident), metrics.json.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fer_export::{ExportOptions, export_onnx, write_onnx};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, Preprocess, spec};
use rand::{Rng, SeedableRng};
use serde_json::Value;

#[path = "../common/random.rs"]
mod random;

/// Input side of the test models (the smallest MobileNetV3 accepts).
pub const SIZE: usize = 32;

/// FER-2013's labels in its id order (the model's logit order in these tests).
pub const FER7: [&str; 7] =
    ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"];

/// MobileNetV3-small, width 0.25, `labels.len()` classes, random weights (seeded); the final
/// layer's weights and bias multiplied by `scale` (a large scale makes it over-confident).
pub fn export(dir: &Path, name: &str, labels: &[&str], scale: f32, temperature: f64) -> PathBuf {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, labels.len())
        .with_input_size(SIZE)
        .with_width(0.25);
    let graph = spec(&cfg).expect("spec");
    let mut weights = random::random_weights(&graph, 5);
    for key in ["classifier.3.weight", "classifier.3.bias"] {
        let t = weights.get(key).expect("final layer").clone();
        let data: Vec<f32> = t.to_f32().iter().map(|v| v * scale).collect();
        weights.insert(key.to_string(), fer_checkpoint::HostTensor::f32(t.shape.clone(), data));
    }
    let meta = ModelMeta {
        arch: cfg.clone(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        preprocess: Preprocess::imagenet(SIZE, 3),
        temperature,
    };
    let bytes = export_onnx(&graph, &weights, &meta, &ExportOptions::default()).expect("export");
    let path = dir.join(format!("{name}.onnx"));
    write_onnx(&path, &bytes).expect("write onnx");
    path
}

/// One image: gray or RGB, 40–63 px, a seeded pattern whose brightness depends on `class` so
/// the random model's outputs vary between classes.
pub fn image(seed: u64, class: usize) -> image::DynamicImage {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (rng.gen_range(40..64), rng.gen_range(40..64));
    let base = (class * 35) as u32;
    let (a, b) = (rng.gen_range(1..9u32), rng.gen_range(1..9u32));
    if seed.is_multiple_of(3) {
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| {
            image::Luma([((base + x * a + y * b) % 256) as u8])
        }))
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            let v = base + x * a + y * b;
            image::Rgb([(v % 256) as u8, ((v * 3) % 256) as u8, ((255 + base - x) % 256) as u8])
        }))
    }
}

/// An image folder `root/<class>/<i>.png` with `per_class` images per class.
pub fn image_folder(root: &Path, classes: &[&str], per_class: usize) -> PathBuf {
    for (c, name) in classes.iter().enumerate() {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per_class {
            image((c * 100 + i) as u64, c).save(d.join(format!("{i:03}.png"))).unwrap();
        }
    }
    root.to_path_buf()
}

/// A CK+48-style folder: class folders of `S###_###_########.png`, `per_class[c]` images.
pub fn ckplus(root: &Path, per_class: &[(&str, usize)]) -> PathBuf {
    for (c, (name, n)) in per_class.iter().enumerate() {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..*n {
            let f = format!("S{:03}_{:03}_{:08}.png", 10 + i % 4, c + 1, i + 1);
            image((c * 100 + i) as u64, c).to_luma8().save(d.join(f)).unwrap();
        }
    }
    root.to_path_buf()
}

/// Runs `fer-infer` with `args`; returns (stdout, stderr, exit code).
pub fn cli(args: &[&str]) -> (String, String, i32) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fer-infer"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("spawning fer-infer");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (text(&o.stdout), text(&o.stderr), o.status.code().unwrap_or(-1))
}

/// `fer-infer eval` with `extra` flags into `out`; panics with the output on failure.
pub fn eval(
    model: &Path,
    data: &Path,
    format: &str,
    out: &Path,
    extra: &[&str],
) -> (Value, String) {
    let mut args = vec![
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
        "--batch",
        "16",
    ];
    args.extend_from_slice(extra);
    let (stdout, stderr, code) = cli(&args);
    assert_eq!(code, 0, "eval failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let json = std::fs::read_to_string(out.join("metrics.json")).expect("metrics.json");
    (serde_json::from_str(&json).expect("metrics.json parses"), stdout)
}

/// `v[key]` as f64 (panics with the key when absent).
pub fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing in {v}"))
}
