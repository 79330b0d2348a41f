//! `fer-infer eval` end to end on generated image folders with models exported from random
//! weights: metrics.json against fer_metrics on the written probabilities and against
//! onnxruntime + torchmetrics + scikit-learn in Python on the same preprocessed inputs; ort
//! and tract agree; PNGs; cross-dataset class matching; bad input.

mod eval_support;

use std::path::Path;

use eval_support::{FER7, SIZE, eval, export, f, image_folder};
use fer_data::formats::{Format, OpenOptions};
use fer_models_spec::Preprocess;
use fer_test_support::python;
use serde_json::Value;

/// FER-2013 folder names (sorted by the reader: angry, disgust, fear, happy, neutral, sad,
/// surprise), 6 images each.
const FOLDERS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// Probabilities and labels from predictions.csv (`source,label,predicted,confidence,correct,
/// p_...`), labels as indices into `classes`.
fn predictions(dir: &Path, classes: &[String]) -> (Vec<String>, Vec<f32>, Vec<usize>) {
    let text = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
    let (mut src, mut probs, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        src.push(cells[0].to_string());
        labels.push(classes.iter().position(|c| c == cells[1]).unwrap());
        probs.extend(cells[5..].iter().map(|p| p.parse::<f32>().unwrap()));
    }
    (src, probs, labels)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// The preprocessed inputs of every sample in dataset order, and labels in model order.
fn dump_inputs(data: &Path, dir: &Path) -> usize {
    let ds =
        fer_data::formats::open(Format::ImageFolder, data, None, &OpenOptions::default()).unwrap();
    let p = Preprocess::imagenet(SIZE, 3);
    let (mut x, mut y) = (Vec::<u8>::new(), Vec::<u8>::new());
    for i in 0..ds.len() {
        let s = ds.load(i).unwrap();
        let v = fer_data::preprocess::preprocess(&s.image, &p).unwrap();
        x.extend(v.iter().flat_map(|f| f.to_le_bytes()));
        let emotion = ds.classes()[s.target.hard()];
        let model_index = FER7.iter().position(|l| *l == emotion.name()).unwrap() as i64;
        y.extend(model_index.to_le_bytes());
    }
    std::fs::write(dir.join("inputs.f32"), x).unwrap();
    std::fs::write(dir.join("labels.i64"), y).unwrap();
    ds.len()
}

#[test]
fn metrics_equal_fer_metrics_and_onnxruntime_torchmetrics_sklearn_and_tract() {
    let tmp = tempfile::tempdir().unwrap();
    let data = image_folder(&tmp.path().join("fer"), &FOLDERS, 6);
    let model = export(tmp.path(), "m", &FER7, 3.0, 1.5);
    let out = tmp.path().join("ort");
    let (m, stdout) = eval(&model, &data, "image-folder", &out, &["--bootstrap", "200"]);
    assert!(stdout.contains("accuracy") && stdout.contains("T = 1.5"), "{stdout}");

    // 1. metrics.json equals fer_metrics on the probabilities written to predictions.csv.
    let classes = strings(&m["classes"]["shared"]);
    assert_eq!(classes, FER7.map(String::from).to_vec());
    let (sources, probs, labels) = predictions(&out, &classes);
    let k = classes.len();
    assert_eq!(labels.len(), 42);
    assert_eq!(m["dataset"]["evaluated"], 42);
    let mm = &m["metrics"];
    let same = |name: &str, v: f64| {
        assert!((f(mm, name) - v).abs() < 1e-9, "{name}: json {} vs fer_metrics {v}", f(mm, name))
    };
    same("accuracy", fer_metrics::accuracy(&probs, &labels, k).unwrap());
    same("balanced_accuracy", fer_metrics::balanced_accuracy(&probs, &labels, k).unwrap());
    same("macro_f1", fer_metrics::macro_f1(&probs, &labels, k).unwrap());
    same("ece", fer_metrics::ece(&probs, &labels, k, 15).unwrap());
    same("adaptive_ece", fer_metrics::adaptive_ece(&probs, &labels, k, 15).unwrap());
    same("mce", fer_metrics::mce(&probs, &labels, k, 15).unwrap());
    same("nll", fer_metrics::nll(&probs, &labels, k).unwrap());
    same("brier", fer_metrics::brier(&probs, &labels, k).unwrap());
    // The ECE floor: fer_metrics' simulation with the eval's draws and its bootstrap seed.
    let floor = fer_metrics::ece_floor(&probs, k, 15, fer_infer::eval::ECE_FLOOR_DRAWS, 0).unwrap();
    let json_floor: [f64; 2] = serde_json::from_value(mm["ece_floor"].clone()).unwrap();
    assert!(floor.0 > 0.0 && (json_floor[0] - floor.0).abs() < 1e-9, "{json_floor:?} vs {floor:?}");
    assert!((json_floor[1] - floor.1).abs() < 1e-9);
    assert!(stdout.contains(&format!("ECE floor {:.4} ± {:.4}", floor.0, floor.1)), "{stdout}");
    let cm: Vec<Vec<u64>> = serde_json::from_value(mm["confusion_matrix"].clone()).unwrap();
    assert_eq!(cm, fer_metrics::confusion_matrix(&probs, &labels, k).unwrap());
    let ci = &mm["ci"];
    for name in ["accuracy", "macro_f1", "ece"] {
        let (lo, hi) = (ci[name][0].as_f64().unwrap(), ci[name][1].as_f64().unwrap());
        assert!(lo <= f(mm, name) + 1e-12 && f(mm, name) <= hi + 1e-12 && lo < hi, "{name} CI");
    }
    assert_eq!(f(&m["metrics_t1"], "temperature"), 1.0);

    // 2. Python: onnxruntime on the same preprocessed inputs, temperature from the file's
    //    metadata, torchmetrics and scikit-learn.
    let n = dump_inputs(&data, tmp.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/eval_reference.py");
    let o = std::process::Command::new(python())
        .args([script, model.to_str().unwrap(), tmp.path().to_str().unwrap(), &n.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f(&r, "temperature"), 1.5);
    // Same samples in the same order (the reader's sorted order).
    assert!(sources[0].ends_with("angry/000.png"), "{}", sources[0]);
    for (key, ours) in [("at_t", mm), ("at_1", &m["metrics_t1"])] {
        let py = &r[key];
        if key == "at_t" {
            let pp: Vec<f64> = serde_json::from_value(py["probs"].clone()).unwrap();
            let worst =
                pp.iter().zip(&probs).map(|(a, b)| (a - *b as f64).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-5, "probabilities differ from onnxruntime by {worst}");
        }
        for name in ["accuracy", "balanced_accuracy", "macro_f1", "ece", "mce", "nll", "brier"] {
            let (a, b) = (f(ours, name), f(py, name));
            assert!((a - b).abs() < 2e-5, "{key} {name}: ours {a}, python {b}");
        }
        let cm_py: Vec<Vec<u64>> = serde_json::from_value(py["confusion_matrix"].clone()).unwrap();
        let cm: Vec<Vec<u64>> = serde_json::from_value(ours["confusion_matrix"].clone()).unwrap();
        assert_eq!(cm, cm_py, "{key} confusion matrix");
        for (j, row) in ours["per_class"].as_array().unwrap().iter().enumerate() {
            for name in ["precision", "recall", "f1"] {
                let want = py[name][j].as_f64().unwrap();
                assert!((f(row, name) - want).abs() < 1e-9, "{key} {name}[{j}]");
            }
            assert_eq!(row["predicted"], py["predicted"][j], "{key} predicted[{j}]");
            let want = py["confidence"][j].as_f64().unwrap();
            assert!((f(row, "confidence") - want).abs() < 2e-6, "{key} confidence[{j}]");
        }
    }

    // 3. tract gives the same numbers.
    let out_t = tmp.path().join("tract");
    let (mt, _) =
        eval(&model, &data, "image-folder", &out_t, &["--backend", "tract", "--bootstrap", "0"]);
    assert_eq!(mt["model"]["backend"], "tract");
    assert!(mt["metrics"]["ci"].is_null());
    for name in ["accuracy", "macro_f1", "ece", "nll", "brier"] {
        let (a, b) = (f(mm, name), f(&mt["metrics"], name));
        assert!((a - b).abs() < 1e-4, "{name}: ort {a}, tract {b}");
    }
    assert_eq!(mm["confusion_matrix"], mt["metrics"]["confusion_matrix"]);

    // 4. The PNGs decode with the documented sizes and show the bars and cells.
    let rel = image::open(out.join("reliability.png")).unwrap().to_rgb8();
    assert_eq!(rel.dimensions(), fer_metrics::plot::reliability::SIZE);
    let blue = rel.pixels().filter(|p| p[2] > 150 && p[0] < 90 && p[1] > 110 && p[1] < 160).count();
    assert!(blue > 500, "no accuracy bars in the reliability diagram ({blue} px)");
    assert!(out.join("reliability_t1.png").is_file());
    let cm_png = image::open(out.join("confusion.png")).unwrap().to_rgb8();
    assert_eq!(cm_png.dimensions(), fer_metrics::plot::confusion::size(7));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| accuracy |") && report.contains("[0, 2]"), "{report}");
}

#[test]
fn fer_model_on_ckplus_evaluates_six_shared_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = eval_support::ckplus(
        &tmp.path().join("CK+48"),
        &[
            ("anger", 3),
            ("contempt", 2),
            ("disgust", 3),
            ("fear", 2),
            ("happy", 3),
            ("sadness", 2),
            ("surprise", 3),
        ],
    );
    let model = export(tmp.path(), "fer7", &FER7, 1.0, 1.0);
    let out = tmp.path().join("ck_eval");
    let (m, stdout) = eval(&model, &ck, "ckplus", &out, &["--bootstrap", "50"]);
    let shared = strings(&m["classes"]["shared"]);
    assert_eq!(shared, ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]);
    assert_eq!(strings(&m["classes"]["dropped_from_model"]), ["neutral"]);
    assert_eq!(strings(&m["classes"]["dropped_from_data"]), ["contempt"]);
    assert_eq!(m["dataset"]["left_out"], 2);
    assert_eq!(m["dataset"]["evaluated"], 16);
    assert!(m["metrics_t1"].is_null(), "T = 1: no second set of metrics");
    let cm: Vec<Vec<u64>> =
        serde_json::from_value(m["metrics"]["confusion_matrix"].clone()).unwrap();
    assert_eq!(cm.len(), 6);
    assert_eq!(cm.iter().flatten().sum::<u64>(), 16);
    for text in [&stdout, &std::fs::read_to_string(out.join("report.md")).unwrap()] {
        assert!(text.contains("dropped from the model: neutral"), "{text}");
        assert!(text.contains("dropped from the data: contempt"), "{text}");
        assert!(text.contains("6 shared classes"), "{text}");
    }
    // Probabilities over the 6 shared classes sum to one.
    let (_, probs, _) = predictions(&out, &shared);
    for row in probs.chunks(6) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

fn eval_error(model: &Path, data: &Path, format: &str) -> (String, i32) {
    let out = data.with_extension("out");
    let (_, stderr, code) = eval_support::cli(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!out.join("metrics.json").exists(), "no output on error");
    (stderr, code)
}

#[test]
fn bad_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = export(t, "fer7", &FER7, 1.0, 1.0);

    // A dataset with class folders but no images.
    for c in ["happy", "sad"] {
        std::fs::create_dir_all(t.join("empty").join(c)).unwrap();
    }
    let (e, code) = eval_error(&model, &t.join("empty"), "image-folder");
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("empty") && e.contains("no samples"), "{e}");

    // No class in common.
    let only_contempt = image_folder(&t.join("contempt_only"), &["contempt"], 2);
    let (e, _) = eval_error(&model, &only_contempt, "image-folder");
    assert!(e.contains("fer7.onnx: no class of the model's fer.labels"), "{e}");
    assert!(e.contains("contempt_only [contempt]"), "{e}");

    // Model labels that are not emotions.
    let pets = export(t, "pets", &["cat", "dog", "bird"], 1.0, 1.0);
    let faces = image_folder(&t.join("faces"), &["happy", "sad"], 2);
    let (e, _) = eval_error(&pets, &faces, "image-folder");
    assert!(e.contains("`cat`, `dog`, `bird` are not emotions"), "{e}");

    // A class folder that is not an emotion.
    let bored = image_folder(&t.join("bored"), &["happy", "bored"], 1);
    let (e, _) = eval_error(&model, &bored, "image-folder");
    assert!(e.contains("class folders not named after an expression: `bored`"), "{e}");
    assert!(e.contains("data.class_map"), "the error says how to map it: {e}");

    // A corrupt image stops the run unless --skip-bad.
    let bad = image_folder(&t.join("bad"), &["happy", "sad"], 3);
    std::fs::write(bad.join("sad").join("001.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let (e, code) = eval_error(&model, &bad, "image-folder");
    assert_eq!(code, 1);
    assert!(e.contains("001.png"), "{e}");
    let (m, _) = eval(&model, &bad, "image-folder", &t.join("bad_ok"), &["--skip-bad"]);
    assert_eq!(m["dataset"]["evaluated"], 5);
    assert_eq!(m["dataset"]["skipped"].as_array().unwrap().len(), 1);
}
