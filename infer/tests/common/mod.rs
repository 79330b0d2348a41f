//! Helpers shared by the integration tests: models exported by `fer_export` from random
//! weights, the CLI binary, the venv's Python (`fer_test_support`).
#![allow(dead_code)]

#[path = "random.rs"]
mod random;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fer_export::{ExportOptions, export_onnx, write_onnx};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, Preprocess, spec};
pub use random::random_weights_with_gain;

/// The seven FER-2013 classes, in a fixed order.
pub const LABELS7: [&str; 7] =
    ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"];

/// Exports `cfg` with random weights (seeded) to `dir/name.onnx`.
pub fn export(
    dir: &Path,
    name: &str,
    cfg: &ArchConfig,
    temperature: f64,
    embedding: bool,
    seed: u64,
) -> PathBuf {
    let graph = spec(cfg).expect("spec");
    let gain = if matches!(cfg.arch, Arch::Resnet18 | Arch::Resnet50) { 1.0 } else { 2.0 };
    let weights = random_weights_with_gain(&graph, seed, gain);
    let labels: Vec<String> = (0..cfg.num_classes)
        .map(|i| LABELS7.get(i).map_or_else(|| format!("class{i}"), |s| s.to_string()))
        .collect();
    let meta = ModelMeta {
        arch: cfg.clone(),
        labels,
        preprocess: Preprocess::imagenet(cfg.input_size(), cfg.in_channels),
        temperature,
    };
    let opts = ExportOptions { embedding_output: embedding, ..ExportOptions::default() };
    let bytes = export_onnx(&graph, &weights, &meta, &opts).expect("export");
    let path = dir.join(format!("{name}.onnx"));
    write_onnx(&path, &bytes).expect("write onnx");
    path
}

/// Runs the `fer-infer` binary with `args` and extra environment variables.
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    // Set for the binary's own tests; fer-live's tests share this module without running it.
    let Some(bin) = option_env!("CARGO_BIN_EXE_fer-infer") else {
        panic!("cli() runs in the tests of the fer-infer package only")
    };
    let mut cmd = Command::new(bin);
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawning fer-infer")
}

/// stdout and stderr as text.
pub fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Writes `data` as raw little-endian f32.
pub fn write_f32(path: &Path, data: &[f32]) {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write f32");
}

/// Reads raw little-endian f32.
pub fn read_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).expect("read f32");
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// `max |a - b| / max(1, max |a|)`.
pub fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

/// Inputs that differ per sample in ways that survive global pooling (per-sample channel
/// offsets, gains and a low-frequency pattern, plus pixel noise): i.i.d. pixel noise alone
/// pools to nearly the same features for every sample, and every sample then gets the same
/// top-1 class from a random network.
pub fn varied_input(shape: [usize; 4], seed: u64) -> ndarray::Array4<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let [n, c, h, w] = shape;
    let mut x = ndarray::Array4::<f32>::zeros(shape);
    for i in 0..n {
        let (fy, fx, ph) =
            (rng.gen_range(0.0..0.5), rng.gen_range(0.0..0.5), rng.gen_range(0.0..6.3));
        for ch in 0..c {
            let (off, gain) = (rng.gen_range(-2.0..2.0), rng.gen_range(0.2..2.0));
            for y in 0..h {
                for xx in 0..w {
                    let wave = (fy * y as f32 + fx * xx as f32 + ph).sin();
                    x[[i, ch, y, xx]] = off + gain * wave + rng.gen_range(-0.3..0.3);
                }
            }
        }
    }
    x
}
