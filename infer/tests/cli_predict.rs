//! `fer-infer predict` on generated images classified whole (`--faces whole`; faces in photos:
//! `photos.rs`): output formats, probabilities, temperature, metadata-less models.

mod common;

use std::path::{Path, PathBuf};

use fer_models_spec::{Arch, ArchConfig};
use prost::Message;
use serde_json::Value;

const SIZE: usize = 48;

fn model(dir: &Path, temperature: f64) -> PathBuf {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(SIZE);
    common::export(dir, "mnv3s", &cfg, temperature, false, 21)
}

/// A gray and two RGB PNGs of odd sizes (one in a subfolder); returns the folder.
fn images(dir: &Path) -> PathBuf {
    let root = dir.join("imgs");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let gray =
        image::GrayImage::from_fn(37, 53, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]));
    gray.save(root.join("a_gray.png")).unwrap();
    let rgb = image::RgbImage::from_fn(61, 29, |x, y| {
        image::Rgb([(x * 4 % 256) as u8, (y * 9 % 256) as u8, ((x + y) * 5 % 256) as u8])
    });
    rgb.save(root.join("b_rgb.png")).unwrap();
    let rgb2 = image::RgbImage::from_fn(17, 91, |x, y| {
        image::Rgb([(255 - x * 11 % 256) as u8, (y * 2 % 256) as u8, 128])
    });
    rgb2.save(root.join("sub").join("c_rgb.png")).unwrap();
    std::fs::write(root.join("notes.txt"), "not an image, ignored in folders").unwrap();
    root
}

fn jsonl(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn probs(v: &Value) -> Vec<(String, f64)> {
    v["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["label"].as_str().unwrap().to_string(), s["prob"].as_f64().unwrap()))
        .collect()
}

fn predict(model: &Path, extra: &[&str], inputs: &[&Path]) -> (String, String, i32) {
    let mut args = vec!["predict", "--faces", "whole", "--model", model.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let o = common::cli(&args, &[]);
    let (out, err) = common::texts(&o);
    (out, err, o.status.code().unwrap_or(-1))
}

#[test]
fn jsonl_lists_every_image_with_sorted_probabilities_summing_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let (m, imgs) = (model(dir.path(), 2.0), images(dir.path()));
    let (out, err, code) = predict(&m, &["--top-k", "7", "--batch", "2"], &[&imgs]);
    assert_eq!(code, 0, "{err}");
    let lines = jsonl(&out);
    let paths: Vec<&str> = lines.iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 3, "{out}");
    assert!(paths[0].ends_with("a_gray.png") && paths[2].ends_with("sub/c_rgb.png"), "{paths:?}");
    for l in &lines {
        let p = probs(l);
        assert_eq!(p.len(), 7);
        let sum: f64 = p.iter().map(|(_, v)| v).sum();
        assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        assert!(p.windows(2).all(|w| w[0].1 >= w[1].1), "not sorted: {p:?}");
        let mut labels: Vec<&str> = p.iter().map(|(l, _)| l.as_str()).collect();
        labels.sort();
        let mut want = common::LABELS7.to_vec();
        want.sort();
        assert_eq!(labels, want);
    }
    // The CSV carries every class's probability in its own column, under one header.
    let (csv, err, code) = predict(&m, &["--format", "csv"], &[&imgs]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0][..4], ["path", "face", "faces", "crop"]);
    assert_eq!(rows[0][rows[0].len() - 7..], common::LABELS7);
    assert_eq!(rows.len(), 4);
    for (row, l) in rows[1..].iter().zip(&lines) {
        assert_eq!(row.len(), rows[0].len());
        assert_eq!(row[0], l["path"].as_str().unwrap());
        assert_eq!(row[3], "whole");
        for (label, prob) in probs(l) {
            let col = rows[0].iter().position(|h| *h == label).unwrap();
            let csv_prob: f64 = row[col].parse().unwrap();
            assert!((csv_prob - prob).abs() < 1e-6);
            assert!((l["probs"][&label].as_f64().unwrap() - prob).abs() < 1e-7);
        }
    }
}

/// A folder of TIFF (JAFFE's format) and Netpbm files is listed like one of PNGs, and the same
/// pixels give the same prediction whatever the file format.
#[test]
fn tiff_and_netpbm_files_in_folders_are_classified_as_their_png_copies() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path(), 1.0);
    let root = dir.path().join("faces");
    std::fs::create_dir_all(&root).unwrap();
    let gray =
        image::GrayImage::from_fn(48, 48, |x, y| image::Luma([((x * 5 + y * 9) % 256) as u8]));
    for ext in ["png", "tif", "TIFF", "pgm"] {
        gray.save_with_format(
            root.join(format!("face.{ext}")),
            image::ImageFormat::from_extension(ext).unwrap(),
        )
        .unwrap();
    }
    let rgb = image::DynamicImage::ImageLuma8(gray).to_rgb8();
    rgb.save(root.join("face_rgb.ppm")).unwrap();
    let (out, err, code) = predict(&m, &["--top-k", "7"], &[&root]);
    assert_eq!(code, 0, "{err}");
    let lines = jsonl(&out);
    let names: Vec<&str> = lines
        .iter()
        .map(|l| Path::new(l["path"].as_str().unwrap()).file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, ["face.TIFF", "face.pgm", "face.png", "face.tif", "face_rgb.ppm"]);
    let png = probs(&lines[2]);
    for (name, l) in names.iter().zip(&lines) {
        assert_eq!(probs(l), png, "{name}");
    }
}

#[test]
fn temperature_from_the_metadata_flattens_probabilities_as_softmax_of_logits_over_t() {
    let dir = tempfile::tempdir().unwrap();
    let (m, imgs) = (model(dir.path(), 2.0), images(dir.path()));
    let (t2, err, code) = predict(&m, &["--top-k", "7"], &[&imgs]);
    assert_eq!(code, 0, "{err}");
    let (t1, err, code) = predict(&m, &["--top-k", "7", "--temperature", "1"], &[&imgs]);
    assert_eq!(code, 0, "{err}");
    for (a, b) in jsonl(&t2).iter().zip(&jsonl(&t1)) {
        let p2: std::collections::BTreeMap<String, f64> = probs(a).into_iter().collect();
        let p1: std::collections::BTreeMap<String, f64> = probs(b).into_iter().collect();
        // softmax(z/2) = normalise(softmax(z)^(1/2))
        let z: f64 = p1.values().map(|p| p.sqrt()).sum();
        for (label, p) in &p1 {
            let want = p.sqrt() / z;
            assert!((p2[label] - want).abs() < 1e-5, "{label}: {} vs {want}", p2[label]);
        }
    }
}

/// The model with its `metadata_props` removed.
fn strip_metadata(path: &Path, out: &Path) {
    let mut proto =
        tract_onnx::pb::ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    assert!(!proto.metadata_props.is_empty());
    proto.metadata_props.clear();
    std::fs::write(out, proto.encode_to_vec()).unwrap();
}

#[test]
fn a_model_without_metadata_names_the_missing_key_then_runs_with_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (m, imgs) = (model(dir.path(), 1.0), images(dir.path()));
    let bare = dir.path().join("bare.onnx");
    strip_metadata(&m, &bare);
    let (_, err, code) = predict(&bare, &[], &[&imgs]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model metadata `fer.labels`: missing"), "{err}");
    assert!(err.contains("pass --labels"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let labels = common::LABELS7.join(",");
    let (_, err, code) = predict(&bare, &["--labels", &labels], &[&imgs]);
    assert_eq!(code, 2);
    assert!(err.contains("`fer.mean`: missing") && err.contains("--mean"), "{err}");
    // With the values the exporter wrote, the bare file predicts exactly what the full one does.
    let flags = [
        "--labels",
        &labels,
        "--mean",
        "0.485,0.456,0.406",
        "--std",
        "0.229,0.224,0.225",
        "--top-k",
        "7",
    ];
    let (bare_out, err, code) = predict(&bare, &flags, &[&imgs]);
    assert_eq!(code, 0, "{err}");
    let (full_out, _, _) = predict(&m, &["--top-k", "7"], &[&imgs]);
    assert_eq!(bare_out, full_out);
}
