//! Helpers shared by the export tests: the reference script (run by `fer_test_support`).

#![allow(dead_code)]

use std::path::Path;

use fer_models_spec::{ArchConfig, ModelMeta, Preprocess};

/// The reference script (torchvision, onnx, onnxruntime).
pub const REFERENCE_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/reference.py");

/// The FER-2013 labels.
pub const FER7: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// Runs the reference script with `args`; panics with its stderr if it fails.
pub fn reference(args: &[&str]) -> String {
    let mut all = vec![REFERENCE_PY];
    all.extend_from_slice(args);
    fer_test_support::run_python(&all)
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
