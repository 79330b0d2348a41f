//! `fer.crop` written by `fer-export`: from `--crop`, or from the run a checkpoint comes from
//! (its `config.resolved.toml` names the dataset; a dataset made by `fer-infer data faces` has
//! `faces.json`), and left out for torchvision weights.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fer7_meta, s};
use fer_checkpoint::{Checkpoint, HostTensor, TensorMap};
use fer_models_spec::{Arch, ArchConfig, spec};

fn fer_export(args: &[&str]) -> (String, i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_fer-export")).args(args).output().unwrap();
    (String::from_utf8_lossy(&o.stderr).into_owned(), o.status.code().unwrap_or(-1))
}

/// A run folder `run/seed1/best.safetensors` (constant weights) whose configuration names `data`.
fn run_dir(d: &Path, data: &Path) -> PathBuf {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(32);
    let tensors: TensorMap = spec(&cfg)
        .unwrap()
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
    let seed = d.join("run/seed1");
    std::fs::create_dir_all(&seed).unwrap();
    let ck = Checkpoint { meta: fer7_meta(&cfg), tensors, extra: BTreeMap::new() };
    ck.save(seed.join("best.safetensors")).unwrap();
    let toml = format!("version = 1\n[data]\nformat = \"image-folder\"\nroot = {:?}\n", s(data));
    std::fs::write(seed.join("config.resolved.toml"), toml).unwrap();
    seed.join("best.safetensors")
}

fn crop_of(onnx: &Path) -> Option<String> {
    let props = fer_export::read_metadata(&std::fs::read(onnx).unwrap()).unwrap();
    props.get("fer.crop").cloned()
}

#[test]
fn the_crop_comes_from_the_flag_or_the_runs_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("crops");
    std::fs::create_dir_all(&data).unwrap();
    let ck = run_dir(d, &data);
    let out = d.join("m.onnx");
    let export = |extra: &[&str]| {
        let mut args = vec!["--checkpoint", s(&ck), "--out", s(&out)];
        args.extend_from_slice(extra);
        let (err, code) = fer_export(&args);
        assert_eq!(code, 0, "{err}");
        (crop_of(&out), err)
    };
    // A dataset without faces.json: its own crops.
    let (crop, err) = export(&[]);
    assert_eq!(crop.as_deref(), Some(r#"{"kind":"dataset"}"#));
    assert!(err.contains("fer.crop = dataset"), "{err}");
    // A dataset made by `data faces`.
    let manifest = r#"{"crop":{"kind":"aligned","detector":"blazeface","margin":1.4},"side":96}"#;
    std::fs::write(data.join("faces.json"), manifest).unwrap();
    let (crop, _) = export(&[]);
    assert_eq!(crop.as_deref(), Some(r#"{"kind":"aligned","detector":"blazeface","margin":1.4}"#));
    // The flag wins.
    let (crop, _) = export(&["--crop", "whole"]);
    assert_eq!(crop.as_deref(), Some(r#"{"kind":"whole"}"#));
    // A broken manifest is an error naming it, not a silent default.
    std::fs::write(data.join("faces.json"), r#"{"crop":{"kind":"oval"},"side":96}"#).unwrap();
    let (err, code) = fer_export(&["--checkpoint", s(&ck), "--out", s(&out)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("faces.json") && err.contains("--crop"), "{err}");
    let (err, code) = fer_export(&["--checkpoint", s(&ck), "--out", s(&out), "--crop", "oval"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected whole, dataset, aligned or aligned:MARGIN"), "{err}");
}

#[test]
fn a_checkpoint_outside_a_run_gets_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let ck = run_dir(dir.path(), dir.path());
    let alone = dir.path().join("alone.safetensors");
    std::fs::copy(&ck, &alone).unwrap();
    let out = dir.path().join("m.onnx");
    let (err, code) = fer_export(&["--checkpoint", s(&alone), "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(crop_of(&out), None);
}
