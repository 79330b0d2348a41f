//! Weights of a diverged run (NaN or infinite values) are refused, naming the tensor, and no
//! ONNX file is written.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use fer_checkpoint::{HostTensor, TensorMap, write_safetensors};
use fer_models_spec::{Arch, ArchConfig, spec};

/// mobilenet_v3_small weights (7 classes), all 0.5, with a NaN in `nan_in` when given.
fn weights(path: &Path, nan_in: Option<&str>) {
    let g = spec(&ArchConfig::new(Arch::MobilenetV3Small, 7)).unwrap();
    let w: TensorMap = g
        .params()
        .into_iter()
        .map(|p| {
            let n = p.shape.iter().product();
            let t = if p.name.ends_with("num_batches_tracked") {
                HostTensor::i64(p.shape, vec![0; n])
            } else {
                let mut v = vec![0.5; n];
                if nan_in == Some(p.name.as_str()) {
                    v[n / 2] = f32::NAN;
                }
                HostTensor::f32(p.shape, v)
            };
            (p.name, t)
        })
        .collect();
    write_safetensors(path, &w, &BTreeMap::new()).unwrap();
}

fn export(weights: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fer-export"))
        .args(["--arch", "mobilenet_v3_small", "--num-classes", "7", "--weights"])
        .arg(weights)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn weights_holding_a_nan_are_refused_naming_the_tensor_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (w, out) = (dir.path().join("nan.safetensors"), dir.path().join("m.onnx"));
    weights(&w, Some("features.0.0.weight"));
    let o = export(&w, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nan.safetensors cannot be exported"), "{stderr}");
    assert!(stderr.contains("`features.0.0.weight` holds 1 non-finite value"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "an ONNX file was written from non-finite weights");
}

#[test]
fn the_export_library_refuses_non_finite_weights_too() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("inf.safetensors");
    weights(&w, Some("classifier.3.bias"));
    let map = fer_checkpoint::load_weights(&w).unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7);
    let meta = fer_models_spec::ModelMeta {
        arch: cfg.clone(),
        labels: (0..7).map(|i| format!("c{i}")).collect(),
        preprocess: fer_models_spec::Preprocess::imagenet(cfg.input_size(), cfg.in_channels),
        temperature: 1.0,
    };
    let err = fer_export::export_onnx(&spec(&cfg).unwrap(), &map, &meta, &Default::default())
        .unwrap_err();
    assert!(matches!(err, fer_export::Error::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("`classifier.3.bias`"), "{err}");
}
