//! Helpers shared by the export tests: the venv's Python and the reference script.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use fer_models_spec::{ArchConfig, ModelMeta, Preprocess};

/// The repository's venv interpreter (made by scripts/setup.sh).
pub const PYTHON: &str = concat!(env!("FER_REPO_ROOT"), "/.venv/bin/python");
/// The reference script (torchvision, onnx, onnxruntime).
pub const REFERENCE_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/reference.py");

/// The FER-2013 labels.
pub const FER7: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// Runs the reference script with `args`; panics with its stderr if it fails.
pub fn reference(args: &[&str]) -> String {
    let out = Command::new(PYTHON)
        .arg(REFERENCE_PY)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} (run scripts/setup.sh): {e}"));
    assert!(
        out.status.success(),
        "reference.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("reference.py prints UTF-8")
}

/// Metadata for `cfg` with the FER-2013 labels (7 classes) and ImageNet preprocessing.
pub fn fer7_meta(cfg: &ArchConfig) -> ModelMeta {
    ModelMeta {
        arch: cfg.clone(),
        labels: FER7.iter().map(|s| s.to_string()).collect(),
        preprocess: Preprocess::imagenet(cfg.input_size(), cfg.in_channels),
        temperature: 1.0,
    }
}

/// Path as `&str` (test temp dirs are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}
