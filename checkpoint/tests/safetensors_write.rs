//! Files we write are read by Python's `safetensors`, and our checkpoints round-trip. The
//! Python read-back is a live interoperability check against torch's loader (a golden cannot
//! stand in for it): without the venv it is skipped with a printed reason, except under
//! `CI=true`; the round trip through our reader always runs.

mod common;

use std::collections::BTreeMap;

use fer_checkpoint::{
    Checkpoint, Error, HostTensor, TensorMap, read_safetensors, sha256_of_tensors,
    write_safetensors,
};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, Preprocess};
use sha2::{Digest, Sha256};

fn sample_tensors() -> TensorMap {
    let mut m = TensorMap::new();
    m.insert(
        "conv.weight".into(),
        HostTensor::f32(
            vec![2, 1, 2, 2],
            vec![0.5, -1.25, f32::MIN_POSITIVE, 3e38, 0.0, -0.0, 1e-45, 7.0],
        ),
    );
    m.insert("bn.num_batches_tracked".into(), HostTensor::i64(vec![], vec![i64::MAX - 3]));
    m.insert("bn.running_var".into(), HostTensor::f32(vec![3], vec![1.0, 2.0, 3.5]));
    m.insert("empty".into(), HostTensor::f32(vec![0, 4], vec![]));
    m.insert("ids".into(), HostTensor::i64(vec![2, 2], vec![-1, 0, 1 << 40, -(1 << 50)]));
    m
}

const READ_BACK: &str = r#"
from safetensors import safe_open
from safetensors.torch import load_file
path = sys.argv[1] + "/w.safetensors"
with safe_open(path, framework="pt") as f:
    meta = f.metadata()
print(json.dumps({"tensors": describe(load_file(path)), "metadata": meta}))
"#;

#[test]
fn written_safetensors_read_in_python_and_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let tensors = sample_tensors();
    let meta: BTreeMap<String, String> =
        [("format".to_string(), "pt".to_string()), ("note".into(), "ünïcode ✓".into())].into();
    std::fs::write(&path, b"old contents are replaced").unwrap();
    write_safetensors(&path, &tensors, &meta).unwrap();

    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["w.safetensors"], "no temporary file is left behind");

    let (back, back_meta) = read_safetensors(&path).unwrap();
    assert_eq!(back, tensors);
    assert_eq!(back_meta, meta);

    // The live interoperability check: Python's safetensors and torch load what we wrote.
    if common::live("written_safetensors_read_in_python_and_back_unchanged (Python read-back)") {
        let py: serde_json::Value =
            serde_json::from_str(&common::python(READ_BACK, dir.path())).unwrap();
        common::assert_tensors_eq("python", &tensors, &py["tensors"]);
        assert_eq!(py["metadata"], serde_json::to_value(&meta).unwrap());
    }
}

fn meta() -> ModelMeta {
    ModelMeta {
        arch: ArchConfig::new(Arch::Resnet18, 3).with_input_size(112),
        labels: vec!["anger".into(), "happiness".into(), "neutral".into()],
        preprocess: Preprocess::imagenet(112, 1),
        temperature: 1.75,
    }
}

#[test]
fn checkpoint_round_trips_meta_tensors_and_extra() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("epoch3.safetensors");
    let ckpt = Checkpoint {
        meta: meta(),
        tensors: sample_tensors(),
        extra: [("epoch".to_string(), "3".to_string()), ("git_commit".into(), "abc123".into())]
            .into(),
    };
    ckpt.save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap(), ckpt);

    let (_, raw) = read_safetensors(&path).unwrap();
    assert_eq!(raw["fer.checkpoint_version"], "1");
    let parsed: ModelMeta = serde_json::from_str(&raw["fer.model_meta"]).unwrap();
    assert_eq!(parsed, ckpt.meta);

    // Saving again over it is fine; reserved extra keys are refused.
    ckpt.save(&path).unwrap();
    let mut bad = ckpt.clone();
    bad.extra.insert("fer.model_meta".into(), "{}".into());
    let e = bad.save(dir.path().join("bad.safetensors")).unwrap_err().to_string();
    assert!(e.contains("reserved"), "{e}");
    assert!(!dir.path().join("bad.safetensors").exists());

    // A plain safetensors file is not a checkpoint; broken metadata is named.
    let plain = dir.path().join("plain.safetensors");
    write_safetensors(&plain, &ckpt.tensors, &BTreeMap::new()).unwrap();
    let e = Checkpoint::load(&plain).unwrap_err().to_string();
    assert!(e.contains("fer.checkpoint_version") && e.contains("plain.safetensors"), "{e}");
    let broken = dir.path().join("broken.safetensors");
    let m = [
        ("fer.checkpoint_version".to_string(), "1".to_string()),
        ("fer.model_meta".into(), "{\"arch\": 1}".into()),
    ];
    write_safetensors(&broken, &ckpt.tensors, &m.into()).unwrap();
    assert!(matches!(Checkpoint::load(&broken), Err(Error::Meta { .. })));
    let newer = [("fer.checkpoint_version".to_string(), "2".to_string())];
    write_safetensors(&broken, &ckpt.tensors, &newer.into()).unwrap();
    let e = Checkpoint::load(&broken).unwrap_err().to_string();
    assert!(e.contains("newer"), "{e}");
}

#[test]
fn tensor_hash_depends_on_names_shapes_types_and_values_only() {
    let a = sample_tensors();
    let h = sha256_of_tensors(&a);
    assert_eq!(h.len(), 64);
    assert!(h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(sha256_of_tensors(&a.clone()), h, "deterministic");

    let mut reshaped = a.clone();
    reshaped.get_mut("ids").unwrap().shape = vec![4];
    let mut renamed = a.clone();
    let t = renamed.remove("ids").unwrap();
    renamed.insert("idz".into(), t);
    let mut retyped = a.clone();
    retyped.insert("ids".into(), HostTensor::f32(vec![2, 2], vec![-1.0, 0.0, 1.0, 2.0]));
    let mut changed = a.clone();
    changed.insert("bn.running_var".into(), HostTensor::f32(vec![3], vec![1.0, 2.0, 3.5000002]));
    for (what, m) in
        [("shape", reshaped), ("name", renamed), ("dtype", retyped), ("value", changed)]
    {
        assert_ne!(sha256_of_tensors(&m), h, "{what} must change the hash");
    }
    let zero_count: String =
        Sha256::digest(0u64.to_le_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sha256_of_tensors(&TensorMap::new()), zero_count, "only the entry count is hashed");
}
