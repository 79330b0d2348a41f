//! ONNX Runtime, tract and Python onnxruntime agree on models exported by `fer_export`.

mod common;

use std::process::Command;

use fer_infer::backend::Classifier;
use fer_infer::backend::{self, Backend};
use fer_infer::bench::synthetic_input;
use fer_infer::parity::{argmax_rows, compare};
use fer_infer::{BackendOptions, Error, OnnxFile};
use fer_models_spec::{Arch, ArchConfig};
use ndarray::{Array4, Axis, concatenate, s};

/// Small variants of three architectures (one gray-input), each with its weight seed.
///
/// Random EfficientNets are either flat (every input gets the same logits) or chaotic (logits
/// in the hundreds that amplify any rounding difference, so no two runtimes can agree to 1e-4);
/// seed 3 gives input-dependent logits of order 10, which is what a trained network gives.
fn archs() -> Vec<(&'static str, ArchConfig, u64)> {
    vec![
        ("mnv3s", ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(64), 10),
        ("effb0", ArchConfig::new(Arch::EfficientnetB0, 7).with_input_size(48).with_width(0.5), 3),
        (
            "r18gray",
            ArchConfig::new(Arch::Resnet18, 5)
                .with_input_size(40)
                .with_in_channels(1)
                .with_width(0.5),
            12,
        ),
    ]
}

fn backends(file: &OnnxFile) -> (Box<dyn Backend>, Box<dyn Backend>) {
    let ort = backend::open(file, &BackendOptions::ort_cpu().with_threads(1)).expect("ort");
    let tract = backend::open(file, &BackendOptions::tract()).expect("tract");
    (ort, tract)
}

fn input_for(cfg: &ArchConfig, n: usize, seed: u64) -> Array4<f32> {
    let s = cfg.input_size();
    common::varied_input([n, cfg.in_channels, s, s], seed)
}

#[test]
fn ort_and_tract_logits_agree_within_1e4_on_64_random_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, cfg, seed)) in archs().into_iter().enumerate() {
        let path = common::export(dir.path(), name, &cfg, 1.0, true, seed);
        let file = OnnxFile::open(&path).unwrap();
        let (mut ort, mut tract) = backends(&file);
        let x = input_for(&cfg, 64, i as u64);
        let a = ort.run(x.view()).unwrap();
        let b = tract.run(x.view()).unwrap();
        assert_eq!(a.logits.shape(), &[64, cfg.num_classes]);
        let (abs, rel, agree) = compare(a.logits.view(), b.logits.view());
        assert!(rel <= 1e-4, "{name}: rel diff {rel} (abs {abs})");
        assert_eq!(agree, 1.0, "{name}: top-1 differs");
        // The logits must not be degenerate, or agreement would say nothing.
        let distinct: std::collections::BTreeSet<usize> =
            argmax_rows(a.logits.view()).into_iter().collect();
        assert!(distinct.len() >= 2, "{name}: every input has the same top-1 class");
        let (ea, eb) = (a.embedding.expect("ort embedding"), b.embedding.expect("tract embedding"));
        assert_eq!(ea.nrows(), 64);
        let (_, erel, _) = compare(ea.view(), eb.view());
        assert!(erel <= 1e-4, "{name}: embedding rel diff {erel}");
    }
}

#[test]
fn a_batch_of_n_equals_n_single_runs_in_both_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let (name, cfg, seed) = archs().remove(0);
    let path = common::export(dir.path(), name, &cfg, 1.0, false, seed);
    let file = OnnxFile::open(&path).unwrap();
    let (ort, tract) = backends(&file);
    // tract runs batches image by image unless asked for batch-size plans: test both.
    let tract_batched: Box<dyn Backend> =
        Box::new(Classifier::open(&file, &BackendOptions::tract()).unwrap().with_batch_plans(true));
    let x = input_for(&cfg, 6, 77);
    for mut b in [ort, tract, tract_batched] {
        let batch = b.run(x.view()).unwrap().logits;
        let singles: Vec<_> =
            (0..6).map(|i| b.run(x.slice(s![i..i + 1, .., .., ..])).unwrap().logits).collect();
        let views: Vec<_> = singles.iter().map(|a| a.view()).collect();
        let singles = concatenate(Axis(0), &views).unwrap();
        let (_, rel, agree) = compare(batch.view(), singles.view());
        assert!(rel <= 1e-5, "{}: batch vs singles rel diff {rel}", b.name());
        assert_eq!(agree, 1.0, "{}", b.name());
    }
}

#[test]
fn python_onnxruntime_agrees_with_both_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let (name, cfg, seed) = archs().remove(1);
    let path = common::export(dir.path(), name, &cfg, 1.0, false, seed);
    let file = OnnxFile::open(&path).unwrap();
    let (mut ort, mut tract) = backends(&file);
    let x = input_for(&cfg, 64, 9);
    let (xin, yout) = (dir.path().join("x.f32"), dir.path().join("y.f32"));
    common::write_f32(&xin, x.as_slice().unwrap());
    let script = r#"
import sys, numpy as np, onnxruntime as ort
model, xin, yout, n, c, h, w = sys.argv[1:8]
so = ort.SessionOptions(); so.intra_op_num_threads = 1
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
x = np.fromfile(xin, dtype="<f4").reshape(int(n), int(c), int(h), int(w))
sess.run(["logits"], {"input": x})[0].astype("<f4").tofile(yout)
"#;
    let sh = x.shape().iter().map(|d| d.to_string()).collect::<Vec<_>>();
    let st = Command::new(fer_test_support::python())
        .args(["-c", script, path.to_str().unwrap(), xin.to_str().unwrap(), yout.to_str().unwrap()])
        .args(&sh)
        .status()
        .expect("python");
    assert!(st.success(), "python onnxruntime failed");
    let py = common::read_f32(&yout);
    let a = ort.run(x.view()).unwrap().logits;
    let b = tract.run(x.view()).unwrap().logits;
    assert_eq!(py.len(), a.len());
    let rel_ort = common::rel_diff(&py, a.as_slice().unwrap());
    let rel_tract = common::rel_diff(&py, b.as_slice().unwrap());
    assert!(rel_ort <= 1e-5, "ours (ort) vs python onnxruntime: {rel_ort}");
    assert!(rel_tract <= 1e-4, "tract vs python onnxruntime: {rel_tract}");
}

#[test]
fn a_batch_of_the_wrong_shape_is_an_error_in_both_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let (name, cfg, seed) = archs().remove(2);
    let path = common::export(dir.path(), name, &cfg, 1.0, false, seed);
    let file = OnnxFile::open(&path).unwrap();
    let (ort, tract) = backends(&file);
    let wrong = synthetic_input([2, 3, 40, 40], 0);
    for mut b in [ort, tract] {
        let e = b.run(wrong.view()).unwrap_err();
        assert!(matches!(e, Error::InputShape { .. }), "{}: {e}", b.name());
        assert_eq!(
            e.to_string(),
            "input shape [2, 3, 40, 40] does not match the model's input [batch, 1, 40, 40]"
        );
    }
}
