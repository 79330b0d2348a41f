//! `fer-infer parity` on a generated image folder and `fer-infer bench`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use fer_models_spec::{Arch, ArchConfig};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `happy/` and `sad/` folders (spelled as the datasets do, not as the model's labels) of
/// small RGB images, plus `contempt/`, a class the 7-class model does not have.
fn image_folder(root: &Path) {
    for (k, class) in ["happy", "sad", "contempt"].iter().enumerate() {
        let d = root.join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..5u32 {
            let img = image::RgbImage::from_fn(30 + i, 41, |x, y| {
                let v = (x * (i + 3) + y * (k as u32 + 2)) % 256;
                image::Rgb([v as u8, (255 - v) as u8, (v / 2) as u8])
            });
            img.save(d.join(format!("{i}.png"))).unwrap();
        }
    }
}

#[test]
fn parity_compares_every_runtime_and_reports_accuracy_on_known_classes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(40);
    let model = common::export(dir.path(), "m", &cfg, 1.0, false, 8);
    let data = dir.path().join("data");
    image_folder(&data);
    let report = dir.path().join("parity.json");
    let o = common::cli(
        &["parity", "--model", s(&model), "--data", s(&data), "--batch", "4", "--json", s(&report)],
        &[],
    );
    let (out, err) = common::texts(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("ort-cpu") && out.contains("tract"), "{out}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["images"], 15);
    assert_eq!(r["labelled"], 10, "contempt is not a class of the model");
    let rows: BTreeMap<String, &Value> = r["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["runtime"].as_str().unwrap().to_string(), row))
        .collect();
    assert!(rows["ort-cuda"]["unavailable"].as_str().unwrap().contains("cuda"));
    let tract = rows["tract"];
    assert!(tract["rel_diff"].as_f64().unwrap() <= 1e-4);
    assert_eq!(tract["top1_agreement"], 1.0);
    // Accuracy recomputed from `predict` on the same files, mapping folder names to labels.
    let p = common::cli(
        &["predict", "--faces", "whole", "--model", s(&model), "--top-k", "1", s(&data)],
        &[],
    );
    assert!(p.status.success());
    let (pred, _) = common::texts(&p);
    let (mut hit, mut n) = (0, 0);
    for line in pred.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let path = v["path"].as_str().unwrap();
        let top = v["top"][0]["label"].as_str().unwrap();
        let truth = if path.contains("/happy/") {
            "happiness"
        } else if path.contains("/sad/") {
            "sadness"
        } else {
            continue;
        };
        n += 1;
        hit += usize::from(top == truth);
    }
    assert_eq!(n, 10);
    let acc = rows["ort-cpu"]["accuracy"].as_f64().unwrap();
    assert!((acc - hit as f64 / n as f64).abs() < 1e-9, "{acc} vs {hit}/{n}");
    assert_eq!(rows["tract"]["accuracy"], rows["ort-cpu"]["accuracy"]);
}

#[test]
fn bench_times_each_runtime_at_each_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(32).with_width(0.5);
    let model = common::export(dir.path(), "m", &cfg, 1.0, false, 4);
    let args = [
        "bench",
        "--model",
        s(&model),
        "--batch",
        "1,3",
        "--iters",
        "4",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--format",
        "json",
    ];
    let o = common::cli(&args, &[]);
    let (out, err) = common::texts(&o);
    assert!(o.status.success(), "{err}");
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    let keys: Vec<(String, u64)> = v
        .iter()
        .map(|r| (r["backend"].as_str().unwrap().to_string(), r["batch"].as_u64().unwrap()))
        .collect();
    let want = [("ort-cpu", 1), ("ort-cpu", 3), ("tract", 1), ("tract", 3)];
    assert_eq!(keys, want.map(|(b, n)| (b.to_string(), n)));
    for r in &v {
        let (min, p50, p90) = (
            r["min_ms"].as_f64().unwrap(),
            r["p50_ms"].as_f64().unwrap(),
            r["p90_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= p50 && p50 <= p90, "{r}");
        let ips = r["images_per_s"].as_f64().unwrap();
        let mean = r["mean_ms"].as_f64().unwrap();
        assert!((ips - r["batch"].as_f64().unwrap() * 1000.0 / mean).abs() < 1e-6 * ips);
    }
}
