//! Helpers of the tests that run the `fer-train` binary: a tiny synthetic set and a config
//! beside it. They do not link libtorch themselves.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fer-train");

/// Writes the synthetic set (7 classes, 12 train and 4 validation images each, 32 px) into
/// `<dir>/data`.
pub fn synth(dir: &Path) -> PathBuf {
    let root = dir.join("data");
    let cfg =
        fer_data::synth::SynthConfig { seed: 3, train_per_class: 12, val_per_class: 4, size: 32 };
    fer_data::synth::write_fer_folder(&root, &cfg).unwrap();
    root
}

/// Writes `<dir>/<name>.toml`: MobileNetV3-Small at quarter width, 32 px, batch 16, AdamW at
/// lr 0.01, on the CPU, output into `<dir>/runs`, with `extra` appended (stages, teachers).
/// Returns its path.
pub fn config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    config_lr(dir, name, 0.01, extra)
}

/// [`config`] at learning rate `lr`.
pub fn config_lr(dir: &Path, name: &str, lr: f64, extra: &str) -> PathBuf {
    write_config(dir, name, lr, 1, extra)
}

/// [`config`] with `workers` loader workers.
pub fn config_workers(dir: &Path, name: &str, workers: usize, extra: &str) -> PathBuf {
    write_config(dir, name, 0.01, workers, extra)
}

fn write_config(dir: &Path, name: &str, lr: f64, workers: usize, extra: &str) -> PathBuf {
    let text = format!(
        r#"
version = 1
name = "{name}"
seed = 5
device = "cpu"
output_dir = "runs"
[data]
format = "fer2013-folder"
root = "data"
train_split = "train"
val_split = "val"
workers = {workers}
[model]
arch = "mobilenet_v3_small"
num_classes = 7
width_mult = 0.25
input_size = 32
[optim]
optimizer = "adamw"
lr = {lr}
batch_size = 16
{extra}
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// One cross-entropy stage of `epochs` epochs.
pub fn ce_stage(epochs: usize) -> String {
    format!(
        "[[stages]]\nname = \"train\"\nepochs = {epochs}\n[[stages.loss]]\nkind = \"cross_entropy\"\nweight = 1.0\n"
    )
}

/// Runs `fer-train -q ARGS` and returns its output.
pub fn fer_train(args: &[&str]) -> Output {
    Command::new(BIN).arg("-q").args(args).output().unwrap()
}

/// Asserts exit `code`, an `error:` line containing every needle, and no panic.
pub fn assert_fails(out: &Output, code: i32, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected `{n}` in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Path as `&str` (test temp dirs are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
