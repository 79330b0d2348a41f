//! The library API without Python: metadata round trip, file layout, typed errors.

mod common;

use std::collections::BTreeMap;

use common::fer7_meta;
use fer_checkpoint::{HostTensor, TensorMap, sha256_of_tensors};
use fer_export::{Error, ExportOptions, export_onnx, read_metadata, write_onnx};
use fer_models_spec::{Arch, ArchConfig, Graph, ModelMeta, ParamKind, spec};
use prost::Message;
use tract_onnx::pb::ModelProto;

/// Deterministic pseudo-random weights with the graph's names and shapes.
fn weights(graph: &Graph) -> TensorMap {
    let mut state = 0x2545_f491_u64;
    let mut next = move || {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 0.2 - 0.1
    };
    graph
        .params()
        .into_iter()
        .map(|p| {
            let n = p.shape.iter().product();
            let t = match p.kind {
                ParamKind::Counter => HostTensor::i64(p.shape, vec![5; n]),
                _ if p.name.ends_with("running_var") => HostTensor::f32(p.shape, vec![1.0; n]),
                _ => HostTensor::f32(p.shape, (0..n).map(|_| next()).collect()),
            };
            (p.name, t)
        })
        .collect()
}

fn small() -> (Graph, TensorMap, ModelMeta) {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(32);
    let g = spec(&cfg).unwrap();
    let w = weights(&g);
    (g, w, fer7_meta(&cfg))
}

#[test]
fn metadata_round_trips_through_the_written_file() {
    let (g, w, mut meta) = small();
    meta.temperature = 1.7;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.onnx");
    let opts = ExportOptions { embedding_output: true, ..Default::default() };
    write_onnx(&path, &export_onnx(&g, &w, &meta, &opts).unwrap()).unwrap();
    let props = read_metadata(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(ModelMeta::from_props(&props).unwrap(), meta);
    assert_eq!(props["fer.weights_sha256"], sha256_of_tensors(&w));
    assert_eq!(props["fer.toolkit_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(props["fer.outputs"], r#"["logits","embedding"]"#);
    assert_eq!(props["fer.bn_folded"], "true");
    for (k, v) in meta.to_props() {
        assert_eq!(props[&k], v, "{k}");
    }
    // Only the temporary file's rename leaves the directory: nothing else is left behind.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("sub.onnx")]);
}

#[test]
fn folded_export_names_initializers_after_the_convolutions_and_drops_batch_norm_tensors() {
    let (g, w, meta) = small();
    let bytes = export_onnx(&g, &w, &meta, &ExportOptions::default()).unwrap();
    let m = ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = m.graph.unwrap();
    let inits: BTreeMap<&str, &[i64]> =
        graph.initializer.iter().map(|t| (t.name.as_str(), t.dims.as_slice())).collect();
    // features.0.0 is a bias-free conv followed by BN features.0.1: folding adds the bias.
    assert_eq!(inits["features.0.0.weight"], [16, 3, 3, 3]);
    assert_eq!(inits["features.0.0.bias"], [16]);
    assert!(!inits.keys().any(|k| k.starts_with("features.0.1.")));
    assert!(!inits.keys().any(|k| k.ends_with("num_batches_tracked")));
    assert!(
        !graph.node.iter().any(|n| n.op_type == "BatchNormalization" || n.op_type == "Dropout")
    );
    assert_eq!(m.ir_version, 8);
    assert_eq!(m.producer_name, "fer-toolkit");
    assert_eq!(graph.name, "mobilenet_v3_small");

    let kept = ExportOptions { fold_bn: false, ..Default::default() };
    let m = ModelProto::decode(export_onnx(&g, &w, &meta, &kept).unwrap().as_slice()).unwrap();
    let graph = m.graph.unwrap();
    assert!(graph.initializer.iter().any(|t| t.name == "features.0.1.running_var"));
    assert!(!graph.initializer.iter().any(|t| t.name == "features.0.0.bias"));
    let bn = g.nodes.iter().filter(|n| matches!(n.op, fer_models_spec::Op::BatchNorm2d(_))).count();
    assert_eq!(graph.node.iter().filter(|n| n.op_type == "BatchNormalization").count(), bn);
}

#[test]
fn missing_and_misshapen_weights_are_named_in_the_error() {
    let (g, mut w, meta) = small();
    let opts = ExportOptions::default();
    w.insert("classifier.3.bias".into(), HostTensor::f32(vec![6], vec![0.0; 6]));
    let e = export_onnx(&g, &w, &meta, &opts).unwrap_err();
    assert!(matches!(&e, Error::ShapeMismatch { name, .. } if name == "classifier.3.bias"), "{e}");
    w.remove("features.1.block.0.1.running_mean");
    let e = export_onnx(&g, &w, &meta, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "weights: missing tensor `features.1.block.0.1.running_mean` (expected shape [16])"
    );
}

#[test]
fn unsupported_opset_and_inconsistent_metadata_are_rejected() {
    let (g, w, meta) = small();
    let e = export_onnx(&g, &w, &meta, &ExportOptions { opset: 13, ..Default::default() });
    assert!(matches!(e, Err(Error::BadOption { field: "opset", .. })));
    let mut m2 = meta.clone();
    m2.labels.pop();
    let e = export_onnx(&g, &w, &m2, &ExportOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "model metadata `labels`: 6 labels for 7 model outputs");
    let mut m3 = meta;
    m3.preprocess.input_size = 64;
    assert!(matches!(
        export_onnx(&g, &w, &m3, &ExportOptions::default()),
        Err(Error::MetaMismatch { field: "preprocess.input_size", .. })
    ));
}

#[test]
fn write_onnx_reports_the_path_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("m.onnx");
    let e = write_onnx(&path, b"x").unwrap_err();
    assert!(e.to_string().contains("no-such-dir"), "{e}");
}
