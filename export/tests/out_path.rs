//! `fer-export --out PATH` replaces only a regular file (or creates a new one), atomically; it
//! writes through a symbolic link to the link's target, and refuses a FIFO or a directory with
//! one sentence naming the path, leaving it as it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use fer_checkpoint::{HostTensor, TensorMap, write_safetensors};
use fer_models_spec::{Arch, ArchConfig, spec};

/// mobilenet_v3_small weights (7 classes), all 0.5.
fn weights(path: &Path) {
    let g = spec(&ArchConfig::new(Arch::MobilenetV3Small, 7)).unwrap();
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

fn export(weights: &Path, out: &Path) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_fer-export"))
        .args(["--arch", "mobilenet_v3_small", "--num-classes", "7", "--weights"])
        .arg(weights)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("running mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

fn is_onnx(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap();
    fer_export::read_metadata(&b).is_ok_and(|m| m.contains_key("fer.labels"))
}

#[test]
fn a_fifo_as_out_is_refused_naming_it_and_left_a_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    weights(&w);
    let fifo = dir.path().join("pipe.onnx");
    mkfifo(&fifo);
    let (code, stderr) = export(&w, &fifo);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pipe.onnx is a FIFO (named pipe), not a regular file"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 2, "a temporary file was left behind: {names:?}");
}

#[test]
fn a_symlink_as_out_keeps_the_link_and_replaces_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    weights(&w);
    let (target, link) = (dir.path().join("real.onnx"), dir.path().join("link.onnx"));
    std::fs::write(&target, b"old").unwrap();
    std::os::unix::fs::symlink("real.onnx", &link).unwrap();
    let (code, stderr) = export(&w, &link);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(is_onnx(&target), "the link's target was not replaced");

    // A dangling link creates its target.
    let (gone, dangling) = (dir.path().join("new.onnx"), dir.path().join("dangling.onnx"));
    std::os::unix::fs::symlink("new.onnx", &dangling).unwrap();
    let (code, stderr) = export(&w, &dangling);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert!(is_onnx(&gone));
}

#[test]
fn a_symlink_to_a_fifo_and_a_directory_are_refused() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    weights(&w);
    let (fifo, link) = (dir.path().join("pipe"), dir.path().join("to-pipe.onnx"));
    mkfifo(&fifo);
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let (code, stderr) = export(&w, &link);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pipe is a FIFO (named pipe)"), "{stderr}");
    assert!(stderr.contains("through the symbolic link"), "{stderr}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());

    let sub = dir.path().join("sub.onnx");
    std::fs::create_dir(&sub).unwrap();
    let (code, stderr) = export(&w, &sub);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("sub.onnx is a directory, not a regular file"), "{stderr}");
    assert!(sub.is_dir());
}
