//! The `fer-export` binary end to end: torchvision `.pth` and our checkpoints in, ONNX out
//! (checked by onnx and onnxruntime); bad input gives a non-zero exit and a message, no panic.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{FER7, reference, s};
use fer_checkpoint::{Checkpoint, HostTensor, TensorMap, load_weights, write_safetensors};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, Preprocess, spec};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_fer-export");

fn fer_export(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("RUST_BACKTRACE", "1").output().expect("runs fer-export")
}

/// Asserts a failure with `code` and a one-line-headed message containing `needle`.
fn assert_fails(out: &Output, code: i32, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.starts_with("fer-export: error: "), "{stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    stderr
}

fn metadata_of(report: &Value, path: &Path) -> BTreeMap<String, String> {
    serde_json::from_value(report[s(path)]["metadata"].clone()).unwrap()
}

#[test]
fn exports_a_torchvision_pth_and_a_toolkit_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    reference(&["make", "mobilenet_v3_small", "64", "16", "3", s(d)]);
    let pth = d.join("weights.pth");
    let from_pth = d.join("from_pth.onnx");
    let out = fer_export(&[
        "--onnx",
        "--weights",
        s(&pth),
        "--arch",
        "mobilenet_v3_small",
        "--num-classes",
        "7",
        "--input-size",
        "64",
        "--embedding",
        "--out",
        s(&from_pth),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(s(&from_pth)) && stdout.contains("opset 17"), "{stdout}");
    assert!(stdout.contains("outputs: logits, embedding"), "{stdout}");

    // Our checkpoint, with its own labels, temperature and normalisation, BatchNorm kept.
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(64);
    let mut preprocess = Preprocess::imagenet(64, 3);
    preprocess.mean = vec![0.5, 0.5, 0.5];
    let meta = ModelMeta {
        arch: cfg,
        labels: ["a", "b", "c", "d", "e", "f", "g"].map(String::from).to_vec(),
        preprocess,
        temperature: 1.25,
    };
    let ck = Checkpoint {
        meta: meta.clone(),
        tensors: load_weights(&pth).unwrap(),
        extra: BTreeMap::new(),
    };
    let ck_path = d.join("best.safetensors");
    ck.save(&ck_path).unwrap();
    let from_ck = d.join("from_ck.onnx");
    let out = fer_export(&["--checkpoint", s(&ck_path), "--no-fold-bn", "--out", s(&from_ck)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The newest opset we write.
    let opset22 = d.join("opset22.onnx");
    let out = fer_export(&[
        "--weights",
        s(&pth),
        "--arch",
        "mobilenet_v3_small",
        "--num-classes",
        "7",
        "--input-size",
        "64",
        "--opset",
        "22",
        "--out",
        s(&opset22),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let report: Value =
        serde_json::from_str(&reference(&["check", s(d), s(&from_pth), s(&from_ck), s(&opset22)]))
            .unwrap();
    assert_eq!(report[s(&opset22)]["opset"], serde_json::json!([["", 22]]));
    assert_eq!(report[s(&opset22)]["ir_version"], 10);
    for (path, outputs) in [(&from_pth, 2), (&from_ck, 1), (&opset22, 1)] {
        let r = &report[s(path)];
        assert_eq!(r["checker"], "ok", "{}", path.display());
        assert_eq!(r["outputs"].as_array().unwrap().len(), outputs);
        let l = &r["logits"];
        let tol = 1e-4 * l["max_abs_ref"].as_f64().unwrap().max(1.0);
        assert!(l["max_abs_diff"].as_f64().unwrap() <= tol, "{}: {l}", path.display());
        assert_eq!(l["top1_agree"], 1.0);
    }
    assert!(report[s(&from_pth)]["num_batchnorm"] == 0);
    assert!(report[s(&from_ck)]["num_batchnorm"].as_u64().unwrap() > 0);
    // Default labels for 7 classes are FER-2013's; the checkpoint's metadata is carried over.
    let labels: Vec<String> =
        serde_json::from_str(&metadata_of(&report, &from_pth)["fer.labels"]).unwrap();
    assert_eq!(labels, FER7);
    assert_eq!(ModelMeta::from_props(&metadata_of(&report, &from_ck)).unwrap(), meta);
}

/// resnet18 weights (the wrong architecture for mobilenet_v3_small), as safetensors.
fn resnet18_weights(path: &Path) {
    let g = spec(&ArchConfig::new(Arch::Resnet18, 7)).unwrap();
    let w: TensorMap = g
        .params()
        .into_iter()
        .map(|p| {
            let n = p.shape.iter().product();
            let t = if p.name.ends_with("num_batches_tracked") {
                HostTensor::i64(p.shape, vec![0; n])
            } else {
                HostTensor::f32(p.shape, vec![0.5; n])
            };
            (p.name, t)
        })
        .collect();
    write_safetensors(path, &w, &BTreeMap::new()).unwrap();
}

#[test]
fn bad_inputs_fail_with_a_message_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out_path = d.join("m.onnx");
    let out = s(&out_path);
    let tv = |w: &str, arch: &str, n: &str| {
        fer_export(&["--weights", w, "--arch", arch, "--num-classes", n, "--out", out])
    };

    let missing = d.join("nope.pth");
    assert_fails(&tv(s(&missing), "resnet18", "7"), 1, "nope.pth");

    let text = d.join("notes.pth");
    std::fs::write(&text, "these are not weights\n").unwrap();
    assert_fails(&tv(s(&text), "resnet18", "7"), 1, "not a PyTorch .pth or .safetensors file");

    let r18 = d.join("resnet18.safetensors");
    resnet18_weights(&r18);
    let msg = assert_fails(&tv(s(&r18), "mobilenet_v3_small", "7"), 1, "does not hold");
    for name in ["features.0.0.weight", "classifier.3.bias", "layer1.0.conv1.weight"] {
        assert!(msg.contains(name), "`{name}` not listed in: {msg}");
    }

    assert_fails(&tv(s(&r18), "resnet18", "5"), 2, "--labels");
    assert_fails(&tv(s(&r18), "resnet19", "7"), 2, "unknown --arch `resnet19`");
    let wrong_count = fer_export(&[
        "--weights",
        s(&r18),
        "--arch",
        "resnet18",
        "--num-classes",
        "3",
        "--labels",
        "a,b",
        "--out",
        out,
    ]);
    assert_fails(&wrong_count, 2, "--labels has 2");
    let opset = fer_export(&[
        "--weights",
        s(&r18),
        "--arch",
        "resnet18",
        "--num-classes",
        "7",
        "--opset",
        "9",
        "--out",
        out,
    ]);
    assert_fails(&opset, 2, "--opset 9");
    let mean = fer_export(&[
        "--weights",
        s(&r18),
        "--arch",
        "resnet18",
        "--num-classes",
        "7",
        "--mean",
        "0.5,0.5",
        "--out",
        out,
    ]);
    assert_fails(&mean, 2, "--mean has 2 values for 3 input channels");
    assert!(!out_path.exists(), "no file is written on failure");

    // Usage errors found by the argument parser also exit with 2.
    let no_out = fer_export(&["--weights", s(&r18)]);
    assert_eq!(no_out.status.code(), Some(2));
    let both = fer_export(&["--checkpoint", s(&r18), "--weights", s(&r18), "--out", out]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn damaged_weight_files_are_one_sentence_naming_the_file_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r18 = d.join("resnet18.safetensors");
    resnet18_weights(&r18);
    let bytes = std::fs::read(&r18).unwrap();
    std::fs::write(d.join("cut.safetensors"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    std::fs::write(d.join("empty.pth"), b"").unwrap();
    std::fs::create_dir(d.join("folder.pth")).unwrap();
    // A zip that is not a torch.save archive.
    std::fs::write(d.join("zip.pth"), b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    let out = d.join("m.onnx");
    let cases: [(&str, &[&str], &str); 6] = [
        ("cut.safetensors", &["--weights"], "run past the end of the data"),
        ("cut.safetensors", &["--checkpoint"], "run past the end of the data"),
        ("empty.pth", &["--weights"], "empty.pth"),
        ("folder.pth", &["--weights"], "folder.pth"),
        ("zip.pth", &["--weights"], "zip.pth"),
        ("resnet18.safetensors", &["--checkpoint"], "resnet18.safetensors"),
    ];
    for (file, flag, says) in cases {
        let p = d.join(file);
        let mut args = vec![flag[0], s(&p), "--out", s(&out)];
        if flag[0] == "--weights" {
            args.extend(["--arch", "resnet18", "--num-classes", "7"]);
        }
        let o = fer_export(&args);
        let err = assert_fails(&o, 1, says);
        assert!(err.contains(file), "{file}: {err}");
        assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{err}");
        assert!(!out.exists(), "{file}: wrote {}", out.display());
    }
}
