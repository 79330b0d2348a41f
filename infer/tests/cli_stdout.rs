//! `fer-infer` printing never panics: a closed pipe ends quietly (exit 0), a full disk is an
//! error naming stdout (exit 1).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fer_models_spec::{Arch, ArchConfig};

/// A model and a folder of three images.
fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(48);
    let model = common::export(dir, "m", &cfg, 1.0, false, 3);
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for k in 0..3u32 {
        let img =
            image::GrayImage::from_fn(40, 40, |x, y| image::Luma([((x * k + y) % 256) as u8]));
        img.save(imgs.join(format!("{k}.png"))).unwrap();
    }
    (model, imgs)
}

fn predict(model: &Path, imgs: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fer-infer"));
    c.args(["predict", "--model"]).arg(model).arg(imgs).env("RUST_LOG", "warn");
    c
}

#[test]
fn predict_into_a_full_device_is_an_error_naming_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let (model, imgs) = fixture(dir.path());
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = predict(&model, &imgs).stdout(full).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing to stdout") && stderr.contains("No space left"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn predict_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let (model, imgs) = fixture(dir.path());
    let mut child =
        predict(&model, &imgs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error") && !stderr.contains("panicked"), "{stderr}");
}
