//! The face pipeline beyond `predict`, on scikit-image's public-domain photos: `eval --faces`
//! and `data faces` on a labelled folder of photos (one without a face, one with two), `live`
//! on a folder of stills, and the model's `fer.crop` deciding what `predict` cuts.

mod common;
mod photo_support;

use std::path::{Path, PathBuf};

use fer_export::{ExportOptions, export_onnx, write_onnx};
use fer_models_spec::{Arch, ArchConfig, FaceCrop, ModelMeta, Preprocess, spec};
use photo_support::{fer_infer, place, predict};
use serde_json::Value;

/// `happy/astronaut.png`, `happy/two.png` (two faces, the larger on the left), in gray as the
/// built-in model was trained, and `neutral/coffee.png` (no face).
fn labelled_photos(dir: &Path, astronaut: &Path, coffee: &Path) -> PathBuf {
    let root = dir.join("photos");
    for c in ["happy", "neutral"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    let gray = image::DynamicImage::ImageLuma8(image::open(astronaut).unwrap().to_luma8());
    gray.save(root.join("happy/astronaut.png")).unwrap();
    std::fs::copy(coffee, root.join("neutral/coffee.png")).unwrap();
    let a = gray.to_rgb8();
    let mut two = place(&a, 1.0, 1024, 512, 0, 0);
    // The full-range model finds the mirrored face at 0.8× (41 px wide at its 256 px input) but
    // not at 0.6× in gray.
    let small = place(&image::imageops::flip_horizontal(&a), 0.8, 512, 512, 50, 100);
    image::imageops::replace(&mut two, &small, 512, 0);
    two.save(root.join("happy/two.png")).unwrap();
    root
}

#[test]
fn data_faces_writes_aligned_crops_and_lists_the_photos_it_left_out() {
    let (a, c) = (photo_or_skip!("astronaut.png"), photo_or_skip!("coffee.png"));
    let dir = tempfile::tempdir().unwrap();
    let photos = labelled_photos(dir.path(), &a, &c);
    let out = dir.path().join("crops");
    let (o, err, code) = fer_infer(&[
        "data",
        "faces",
        "--in",
        photos.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--side",
        "96",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(o.contains("wrote 2 crops"), "{o}");
    assert!(err.contains("coffee.png: no face found"), "never silent: {err}");
    for name in ["happiness/astronaut.png", "happiness/two.png"] {
        let img = image::open(out.join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (96, 96), "{name}");
    }
    let m: Value = serde_json::from_slice(&std::fs::read(out.join("faces.json")).unwrap()).unwrap();
    assert_eq!(m["crop"]["kind"], "aligned");
    assert_eq!(m["side"], 96);
    assert_eq!(
        (m["summary"]["no_face"].as_u64(), m["summary"]["several"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(m["left_out"][0]["source"].as_str().unwrap().ends_with("coffee.png"));
    // The largest of the two faces is the full-size astronaut, not her smaller mirror image.
    let one = image::open(out.join("happiness/astronaut.png")).unwrap().to_rgb8();
    let two = image::open(out.join("happiness/two.png")).unwrap().to_rgb8();
    let mirror = image::imageops::flip_horizontal(&one);
    let diff = |a: &image::RgbImage| -> f64 {
        a.pixels().zip(two.pixels()).map(|(p, q)| (p[0] as f64 - q[0] as f64).abs()).sum()
    };
    assert!(diff(&one) < diff(&mirror), "{} vs mirrored {}", diff(&one), diff(&mirror));
    // --multi skip leaves the two-face photo out, and says so; a second run refuses to overwrite.
    let out2 = dir.path().join("crops2");
    let (_, err, code) = fer_infer(&[
        "data",
        "faces",
        "--in",
        photos.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--multi",
        "skip",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("two.png: 2 faces found (--multi skip)"), "{err}");
    let (_, err, code) = fer_infer(&[
        "data",
        "faces",
        "--in",
        photos.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists and is not empty"), "{err}");
}

#[test]
fn eval_faces_scores_the_crops_and_reports_the_photo_without_a_face() {
    let (a, c) = (photo_or_skip!("astronaut.png"), photo_or_skip!("coffee.png"));
    let dir = tempfile::tempdir().unwrap();
    let photos = labelled_photos(dir.path(), &a, &c);
    let out = dir.path().join("eval");
    let (o, err, code) = fer_infer(&[
        "eval",
        "--data",
        photos.to_str().unwrap(),
        "--format",
        "image-folder",
        "--faces",
        "--bootstrap",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}\n{o}");
    assert!(
        err.contains("3 images: 0 whole, 1 with one face, 1 with several, 1 without a face"),
        "{err}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("coffee.png`: no face found"), "{report}");
    let preds = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(preds.lines().count(), 3, "header and the two photos with a face: {preds}");
    // Both are the astronaut, smiling.
    assert_eq!(preds.matches("happiness,happiness").count(), 2, "{preds}");
}

#[test]
fn live_on_a_folder_of_stills_names_each_file_and_numbers_faces_per_image() {
    let (a, c) = (photo_or_skip!("astronaut.png"), photo_or_skip!("coffee.png"));
    let dir = tempfile::tempdir().unwrap();
    let photos = labelled_photos(dir.path(), &a, &c);
    let out = dir.path().join("live");
    let (_, err, code) = fer_infer(&[
        "live",
        "--source",
        photos.to_str().unwrap(),
        "--headless",
        "--no-frames",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    let recs: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let paths: Vec<&str> = recs.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 3);
    assert!(paths[0].ends_with("astronaut.png") && paths[1].ends_with("two.png"), "{paths:?}");
    // No tracking across stills: ids restart at 0 in every image, probabilities are unsmoothed.
    for r in &recs {
        let ids: Vec<u64> =
            r["faces"].as_array().unwrap().iter().map(|f| f["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>(), "{r}");
    }
    // `live` runs the short-range model, so `predict` is asked for the same.
    let one = photos.join("happy/astronaut.png");
    let single = predict(&["--detector", "short", one.to_str().unwrap()]);
    let p_live = recs[0]["faces"][0]["probs"].as_array().unwrap();
    let labels = recs[0]["labels"].as_array().unwrap();
    assert_eq!(p_live.len(), 7);
    for (label, x) in labels.iter().zip(p_live) {
        let y = &single[0]["probs"][label.as_str().unwrap()];
        assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-5, "{label}: {x} vs {y}");
    }
}

/// A random-weight 7-class model with `crop` in its metadata.
fn model_with_crop(dir: &Path, crop: Option<FaceCrop>) -> PathBuf {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(64);
    let graph = spec(&cfg).unwrap();
    let weights = common::random_weights_with_gain(&graph, 3, 2.0);
    let meta = ModelMeta {
        arch: cfg.clone(),
        labels: common::LABELS7.iter().map(|s| s.to_string()).collect(),
        preprocess: Preprocess::imagenet(64, 3),
        temperature: 1.0,
    };
    let opts = ExportOptions { crop, ..ExportOptions::default() };
    let path = dir.join(format!("m_{}.onnx", crop.map_or("none".into(), |c| c.to_string())));
    write_onnx(&path, &export_onnx(&graph, &weights, &meta, &opts).unwrap()).unwrap();
    path
}

#[test]
fn the_crop_in_the_model_decides_what_predict_cuts() {
    let a = photo_or_skip!("astronaut.png");
    let dir = tempfile::tempdir().unwrap();
    let photo = a.to_str().unwrap();
    let run = |crop: Option<FaceCrop>, extra: &[&str]| -> Vec<Value> {
        let m = model_with_crop(dir.path(), crop);
        let mut args = vec!["--model", m.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(photo);
        predict(&args)
    };
    // No key: the dataset's crops, so the photo's face is detected (as before the key existed).
    let none = run(None, &[]);
    assert_eq!(none[0]["crop"], "aligned");
    // `whole`: the photo is classified whole; `--crop` overrides the file.
    let whole = run(Some(FaceCrop::Whole), &[]);
    assert_eq!((whole.len(), &whole[0]["crop"]), (1, &Value::from("whole")));
    assert_eq!(run(Some(FaceCrop::Whole), &["--crop", "dataset"])[0]["crop"], "aligned");
    // `aligned:2`: the same face, a wider crop, so other probabilities than margin 1.25.
    let wide = run(Some(FaceCrop::aligned(2.0)), &[]);
    assert_eq!(wide[0]["box"], none[0]["box"]);
    assert_ne!(wide[0]["probs"], none[0]["probs"]);
    let same = run(Some(FaceCrop::aligned(1.25)), &[]);
    assert_eq!(same[0]["probs"], none[0]["probs"]);
    // A bad value names the key.
    let (_, err, code) = fer_infer(&["predict", "--crop", "aligned:9", photo]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("margin 9 is outside 1–4"), "{err}");
}
