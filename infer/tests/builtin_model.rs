//! Without `--model`, `fer-infer` uses the student shipped in `models/` (docs/models.md): built
//! into the binary, written once into the user's cache, and the same model as the file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fer2013_mobilenet_v3_large.onnx")
}

fn images(dir: &Path) -> PathBuf {
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for k in 0..3u32 {
        let img = image::GrayImage::from_fn(48, 48, |x, y| {
            image::Luma([((x * (k + 1) + y * 3) % 256) as u8])
        });
        img.save(imgs.join(format!("{k}.png"))).unwrap();
    }
    imgs
}

fn predict(cache: &Path, model: Option<&Path>, imgs: &Path) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fer-infer"));
    c.arg("predict");
    if let Some(m) = model {
        c.arg("--model").arg(m);
    }
    c.arg(imgs).env("XDG_CACHE_HOME", cache).env("RUST_LOG", "warn");
    c.output().unwrap()
}

#[test]
fn predict_without_a_model_uses_the_shipped_student() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let cache = dir.path().join("cache");
    let builtin = predict(&cache, None, &imgs);
    let stderr = String::from_utf8_lossy(&builtin.stderr);
    assert!(builtin.status.success(), "{stderr}");
    // The bytes written into the cache are the shipped file's.
    let cached: Vec<PathBuf> = std::fs::read_dir(cache.join("fer-toolkit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("fer2013_")))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(std::fs::read(&cached[0]).unwrap(), std::fs::read(shipped()).unwrap());
    // Same predictions as naming the file; FER-2013's labels; a second call reuses the cache.
    let named = predict(&cache, Some(&shipped()), &imgs);
    assert!(named.status.success(), "{}", String::from_utf8_lossy(&named.stderr));
    assert_eq!(builtin.stdout, named.stdout);
    let text = String::from_utf8_lossy(&builtin.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    let labels = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"];
    for line in text.lines() {
        assert!(labels.iter().any(|l| line.contains(&format!("\"{l}\""))), "{line}");
    }
    let again = predict(&cache, None, &imgs);
    assert_eq!(again.stdout, builtin.stdout);
    // Nothing new in the cache: the model and the two built-in face detectors, reused.
    let files = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.sort();
        v
    };
    let after = files(&cache.join("fer-toolkit"));
    assert_eq!(after.len(), 3, "{after:?}");
}
