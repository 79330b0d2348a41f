//! Exported ONNX files against torchvision: for every architecture, torchvision makes random
//! weights (with randomised BatchNorm statistics), inputs and eval-mode logits; we export with
//! and without BatchNorm folding; onnx.checker and onnxruntime (CPU) then check the files.

mod common;

use std::collections::BTreeMap;

use common::{fer7_meta, reference, s};
use fer_checkpoint::load_weights;
use fer_export::{ExportOptions, export_onnx, write_onnx};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, spec};
use serde_json::Value;

/// Number of random inputs compared.
const N: usize = 64;

fn parity(arch: Arch, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let id = arch.id();
    reference(&["make", id, &size.to_string(), &N.to_string(), "7", s(dir.path())]);
    let weights = load_weights(dir.path().join("weights.safetensors")).unwrap();
    let cfg = ArchConfig::new(arch, 7).with_input_size(size);
    let graph = spec(&cfg).unwrap();
    let meta = fer7_meta(&cfg);
    let num_bn =
        graph.nodes.iter().filter(|n| matches!(n.op, fer_models_spec::Op::BatchNorm2d(_))).count();
    assert!(num_bn > 0);

    let folded = dir.path().join("folded.onnx");
    let kept = dir.path().join("kept.onnx");
    let opts = ExportOptions { fold_bn: true, embedding_output: true, ..Default::default() };
    write_onnx(&folded, &export_onnx(&graph, &weights, &meta, &opts).unwrap()).unwrap();
    let opts = ExportOptions { fold_bn: false, ..Default::default() };
    write_onnx(&kept, &export_onnx(&graph, &weights, &meta, &opts).unwrap()).unwrap();

    let report: Value =
        serde_json::from_str(&reference(&["check", s(dir.path()), s(&folded), s(&kept)])).unwrap();
    for (path, fold, outputs) in
        [(&folded, true, vec!["logits", "embedding"]), (&kept, false, vec!["logits"])]
    {
        let r = &report[s(path)];
        let what = format!("{id} fold_bn={fold}");
        assert_eq!(r["checker"], "ok", "{what}: onnx.checker");
        assert_eq!(r["ir_version"], 8, "{what}");
        assert_eq!(r["opset"], serde_json::json!([["", 17]]), "{what}");
        assert_eq!(r["producer_name"], "fer-toolkit", "{what}");
        assert_eq!(r["graph_name"], id, "{what}");
        assert_eq!(r["outputs"], serde_json::json!(outputs), "{what}");
        let size = size as u64;
        assert_eq!(r["inputs"], serde_json::json!([["input", ["batch", 3, size, size]]]), "{what}");
        let expected_bn = if fold { 0 } else { num_bn };
        assert_eq!(r["num_batchnorm"], expected_bn, "{what}: BatchNormalization nodes");
        for init in r["initializers"].as_array().unwrap() {
            let name = init.as_str().unwrap();
            // Folding gives bias-free convolutions a bias named after the convolution.
            let conv_weight = name.strip_suffix(".bias").map(|p| format!("{p}.weight"));
            let known = |n: &str| weights.contains_key(n);
            let ok = known(name) || (fold && conv_weight.is_some_and(|w| known(&w)));
            assert!(ok, "{what}: initializer {name} is not a torchvision name");
        }
        for out in &outputs {
            let o = &r[*out];
            let (diff, scale) =
                (o["max_abs_diff"].as_f64().unwrap(), o["max_abs_ref"].as_f64().unwrap());
            let tol = 1e-4 * scale.max(1.0);
            eprintln!("{what} {out}: max|diff| {diff:.3e}, tolerance {tol:.3e}");
            assert!(diff <= tol, "{what} {out}: max|diff| {diff} > {tol} (max|ref| {scale})");
            assert_eq!(o["shape"][0], N, "{what} {out}");
        }
        assert_eq!(r["logits"]["top1_agree"], 1.0, "{what}: top-1 agreement");
        assert_eq!(r["logits"]["shape"], serde_json::json!([N, 7]), "{what}");
        // The metadata, read back by onnx's own reader, parses to what we exported.
        let props: BTreeMap<String, String> =
            serde_json::from_value(r["metadata"].clone()).unwrap();
        assert_eq!(ModelMeta::from_props(&props).unwrap(), meta, "{what}");
        assert_eq!(props["fer.weights_sha256"], report["weights_sha256"], "{what}: weights hash");
    }
    let emb = &report[s(&folded)]["embedding"]["shape"];
    let features = graph.node(graph.tap("embedding").unwrap()).shape[0];
    assert_eq!(emb, &serde_json::json!([N, features]), "{id}: embedding width");
}

#[test]
fn mobilenet_v3_small_onnx_matches_torchvision_with_and_without_bn_folding() {
    parity(Arch::MobilenetV3Small, 64);
}

#[test]
fn mobilenet_v3_large_onnx_matches_torchvision_with_and_without_bn_folding() {
    parity(Arch::MobilenetV3Large, 64);
}

#[test]
fn efficientnet_b0_onnx_matches_torchvision_with_and_without_bn_folding() {
    parity(Arch::EfficientnetB0, 64);
}

#[test]
fn resnet18_onnx_matches_torchvision_with_and_without_bn_folding() {
    parity(Arch::Resnet18, 64);
}

#[test]
fn resnet50_onnx_matches_torchvision_with_and_without_bn_folding() {
    parity(Arch::Resnet50, 64);
}

#[test]
fn inception_v3_onnx_matches_torchvision_with_and_without_bn_folding() {
    parity(Arch::InceptionV3, 80);
}
