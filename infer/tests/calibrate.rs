//! `fer-infer calibrate` on an over-confident model: the fitted temperature lowers ECE and
//! NLL without changing accuracy, it is stored in the metadata (the rest of the file unchanged
//! in meaning), and `eval` and `predict` apply it.

mod eval_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eval_support::{FER7, cli, eval, export, f};
use fer_infer::{BackendOptions, MetaOverrides, Model};
use prost::Message;
use tract_onnx::pb;

const FOLDERS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

fn props(m: &pb::ModelProto) -> BTreeMap<String, String> {
    m.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
}

/// A folder of `n` images labelled with the model's own prediction for 7 images in 10 and a
/// wrong class for the rest: a 70%-accurate, over-confident model, whose best temperature is
/// finite and above 1 (on chance-level labels the NLL would fall all the way to T → ∞).
fn labelled_by_model(model: &Path, root: &Path, n: usize) -> PathBuf {
    let mut m = Model::open(model, &BackendOptions::ort_cpu(), &MetaOverrides::default()).unwrap();
    for name in FOLDERS {
        std::fs::create_dir_all(root.join(name)).unwrap();
    }
    for i in 0..n {
        let img = eval_support::image(1000 + i as u64, i % 7);
        let pred = m.predict(std::slice::from_ref(&img), &[], 1).unwrap()[0].top[0].index;
        let class = if i % 10 < 7 { pred } else { (pred + 1 + i % 6) % 7 };
        img.save(root.join(FOLDERS[class]).join(format!("{i:03}.png"))).unwrap();
    }
    root.to_path_buf()
}

#[test]
fn temperature_scaling_calibrates_an_overconfident_model_and_is_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // Final layer ×100: near one-hot probabilities (the random network's raw logits are small).
    let model = export(t, "hot", &FER7, 100.0, 1.0);
    let data = labelled_by_model(&model, &t.join("val"), 70);
    let calibrated = t.join("hot.calibrated.onnx");
    let (stdout, stderr, code) = cli(&[
        "calibrate",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--format",
        "image-folder",
        "--out",
        calibrated.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("fitted T =") && stdout.contains("ECE"), "{stdout}");

    // The metadata has the new temperature; everything else is the same.
    let before = pb::ModelProto::decode(std::fs::read(&model).unwrap().as_slice()).unwrap();
    let after = pb::ModelProto::decode(std::fs::read(&calibrated).unwrap().as_slice()).unwrap();
    let (mut pb_, mut pa) = (props(&before), props(&after));
    let temp: f64 = pa.remove("fer.temperature").unwrap().parse().unwrap();
    assert_eq!(pb_.remove("fer.temperature").as_deref(), Some("1"));
    assert_eq!(pa, pb_, "other metadata unchanged");
    assert!(temp > 1.5 && temp < 50.0, "an over-confident model needs T > 1, got {temp}");
    let strip = |mut m: pb::ModelProto| {
        m.metadata_props.clear();
        m
    };
    assert_eq!(strip(after), strip(before), "graph, weights and header unchanged");

    // eval applies the stored temperature: accuracy unchanged, NLL and ECE lower.
    let (m0, _) = eval(&model, &data, "image-folder", &t.join("e0"), &["--bootstrap", "0"]);
    let (m1, _) = eval(&calibrated, &data, "image-folder", &t.join("e1"), &["--bootstrap", "0"]);
    let (a, b) = (&m0["metrics"], &m1["metrics"]);
    assert_eq!(f(b, "temperature"), temp);
    assert_eq!(f(a, "accuracy"), f(b, "accuracy"));
    assert_eq!(a["confusion_matrix"], b["confusion_matrix"]);
    assert!(f(b, "nll") <= f(a, "nll"), "NLL {} -> {}", f(a, "nll"), f(b, "nll"));
    assert!(f(b, "ece") < f(a, "ece") - 0.05, "ECE {} -> {}", f(a, "ece"), f(b, "ece"));
    // At T = 1 the calibrated file scores exactly as the original.
    assert_eq!(m1["metrics_t1"]["nll"], a["nll"]);

    // calibrate's per-class line says what eval of the calibrated file reports per class:
    // mean confidence minus precision of each predicted class, and how many; classes never
    // predicted are left out (this near-one-hot random network predicts one class).
    let line =
        stdout.lines().find(|l| l.starts_with("per predicted class")).expect("per-class line");
    let mut shown = 0;
    for row in b["per_class"].as_array().unwrap() {
        let n = row["predicted"].as_u64().unwrap();
        let cell = format!(
            "{} {:+.1} ({n})",
            row["class"].as_str().unwrap(),
            100.0 * (f(row, "confidence") - f(row, "precision"))
        );
        assert_eq!(line.contains(&cell), n > 0, "{cell} in {line}");
        shown += usize::from(n > 0);
    }
    assert!(shown >= 1, "{line}");

    // The fitted T is a minimum of the NLL: eval with --temperature T·0.9 and T·1.1 (the
    // override replaces the stored value) scores a higher NLL on either side.
    for s in [0.9, 1.1] {
        let tt = (temp * s).to_string();
        let dir = t.join(format!("e_{s}"));
        let (mx, _) =
            eval(&model, &data, "image-folder", &dir, &["--bootstrap", "0", "--temperature", &tt]);
        assert!(f(&mx["metrics"], "nll") > f(b, "nll"), "NLL at {tt} not above NLL at {temp}");
    }

    // predict applies it too: same top class, lower top probability.
    let img = FOLDERS.iter().map(|c| data.join(c).join("000.png")).find(|p| p.is_file()).unwrap();
    let top = |m: &std::path::Path| {
        let (out, err, code) = cli(&[
            "predict",
            "--faces",
            "whole",
            "--model",
            m.to_str().unwrap(),
            img.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        (v["top"][0]["label"].as_str().unwrap().to_string(), v["top"][0]["prob"].as_f64().unwrap())
    };
    let ((l0, p0), (l1, p1)) = (top(&model), top(&calibrated));
    assert_eq!(l0, l1);
    assert!(p1 < p0, "calibrated top probability {p1} should be below {p0}");
}

/// The temperature and sample count `calibrate` prints on stdout.
fn fitted(stdout: &str) -> (String, String) {
    let line = stdout.lines().find(|l| l.starts_with("fitted T =")).expect(stdout);
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[3].to_string(), words[5].to_string())
}

/// Copies the samples `indices` of the image folder `ds` into `dest`, one folder per class, as
/// an independent reference for a part of a split plan.
fn copy_samples(ds: &dyn fer_data::Dataset, indices: &[usize], dest: &Path) {
    for &i in indices {
        let src = PathBuf::from(ds.source(i));
        let class = src.parent().unwrap().file_name().unwrap();
        std::fs::create_dir_all(dest.join(class)).unwrap();
        std::fs::copy(&src, dest.join(class).join(src.file_name().unwrap())).unwrap();
    }
}

/// `fer-infer calibrate --model model --data data --format image-folder extra… --out out`.
fn calibrate_cli(model: &Path, data: &Path, extra: &[&str], out: &Path) -> (String, String, i32) {
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let mut args = vec!["calibrate", "--model", m, "--data", d, "--format", "image-folder"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    cli(&args)
}

#[test]
fn calibrate_on_a_runs_holdout_reads_exactly_the_held_out_samples() {
    use fer_data::split::SplitPlan;
    use fer_data::{SplitName, formats};
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = export(t, "hot", &FER7, 100.0, 1.0);
    let data = labelled_by_model(&model, &t.join("all"), 70);
    // A plan as a training run writes it: everything is train, 30% of each class held out.
    let opts = formats::OpenOptions::default();
    let ds = formats::open(formats::Format::ImageFolder, &data, None, &opts).unwrap();
    let mut plan = SplitPlan::official(&[(SplitName::Train, ds.as_ref())]);
    plan.hold_out(ds.as_ref(), 0.3, 4).unwrap();
    let plan_path = t.join("split.json");
    plan.save(&plan_path).unwrap();
    // The same images copied into a folder of their own: the independent reference.
    let held = t.join("held");
    copy_samples(ds.as_ref(), &plan.calibration.as_ref().unwrap().indices, &held);
    let n_held = plan.calibration.as_ref().unwrap().indices.len();
    let run =
        |data: &Path, extra: &[&str], out: &str| calibrate_cli(&model, data, extra, &t.join(out));
    let (out_h, err_h, code) = run(&data, &["--holdout", plan_path.to_str().unwrap()], "h.onnx");
    assert_eq!(code, 0, "{out_h}\n{err_h}");
    assert!(out_h.contains("calibration hold-out"), "{out_h}");
    // A hold-out this small gets its interval and a warning that T may not carry over.
    assert!(out_h.contains("95 % bootstrap interval of T:"), "{out_h}");
    assert!(out_h.contains("ECE at the fitted T on this hold-out"), "{out_h}");
    assert!(
        out_h.contains("a perfectly calibrated model with these confidences would measure"),
        "{out_h}"
    );
    assert!(
        err_h.contains(&format!("warning: the hold-out has {n_held} samples"))
            || err_h.contains(&format!("on {n_held} samples")),
        "{err_h}"
    );
    assert!(err_h.contains("data.calib_fraction"), "{err_h}");
    let (out_r, err_r, code) = run(&held, &[], "r.onnx");
    assert_eq!(code, 0, "{out_r}\n{err_r}");
    assert_eq!(fitted(&out_h), fitted(&out_r));
    assert_eq!(fitted(&out_h).1, n_held.to_string());

    // A plan drawn from another listing is refused with the flag's name.
    let (out, err, code) = run(&held, &["--holdout", plan_path.to_str().unwrap()], "x.onnx");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("--holdout") && err.contains("different listing"), "{err}");
    assert!(!t.join("x.onnx").exists(), "nothing written on error");
}

#[test]
fn calibrate_on_a_runs_validation_share_reads_exactly_that_share() {
    use fer_data::split::{SplitPlan, stratified};
    use fer_data::{SplitName, formats};
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = export(t, "hot", &FER7, 100.0, 1.0);
    let data = labelled_by_model(&model, &t.join("all"), 70);
    // A plan as a run with data.val_fraction and no calibration hold-out writes it.
    let opts = formats::OpenOptions::default();
    let ds = formats::open(formats::Format::ImageFolder, &data, None, &opts).unwrap();
    let plan = stratified(ds.as_ref(), 0.3, 0.0, 9).unwrap();
    assert!(plan.calibration.is_none());
    let plan_path = t.join("split.json");
    plan.save(&plan_path).unwrap();
    // The validation share's images copied into a folder of their own: the reference.
    let val = plan.part(SplitName::Val).unwrap().indices.clone();
    let held = t.join("val");
    copy_samples(ds.as_ref(), &val, &held);
    let run =
        |data: &Path, extra: &[&str], out: &str| calibrate_cli(&model, data, extra, &t.join(out));
    let plan_arg = plan_path.to_str().unwrap();
    let (out_v, err_v, code) =
        run(&data, &["--holdout", plan_arg, "--holdout-part", "validation"], "v.onnx");
    assert_eq!(code, 0, "{out_v}\n{err_v}");
    assert!(out_v.contains("validation share"), "{out_v}");
    let (out_r, err_r, code) = run(&held, &[], "r.onnx");
    assert_eq!(code, 0, "{out_r}\n{err_r}");
    assert_eq!(fitted(&out_v), fitted(&out_r));
    assert_eq!(fitted(&out_v).1, val.len().to_string());

    // The same plan has no calibration hold-out: the default part is refused, naming the flag.
    let (out, err, code) = run(&data, &["--holdout", plan_arg], "c.onnx");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("--holdout") && err.contains("no calibration hold-out"), "{err}");
    assert!(err.contains("--holdout-part validation"), "{err}");
    assert!(!t.join("c.onnx").exists(), "nothing written on error");

    // A run that validated on an official split has no validation share of train to read.
    let official = SplitPlan::official(&[(SplitName::Train, ds.as_ref())]);
    let official_path = t.join("official.json");
    official.save(&official_path).unwrap();
    let official_arg = official_path.to_str().unwrap();
    let (out, err, code) =
        run(&data, &["--holdout", official_arg, "--holdout-part", "validation"], "o.onnx");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("official split"), "{err}");
    assert!(!t.join("o.onnx").exists(), "nothing written on error");

    // --holdout-part without --holdout is a usage error.
    let (out, err, code) = run(&data, &["--holdout-part", "validation"], "u.onnx");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("--holdout"), "{err}");
}

/// `fer-infer calibrate` with `args`, killed after two minutes (writing into a FIFO without a
/// reader would block for ever).
fn calibrate_with_deadline(args: &[&str]) -> (String, i32) {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fer-infer"))
        .arg("calibrate")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("fer-infer calibrate {args:?} did not finish (blocked writing into a FIFO?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (err, status.code().unwrap_or(-1))
}

#[test]
fn calibrate_refuses_a_fifo_as_out_and_writes_through_a_symlink() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = export(t, "m", &FER7, 1.0, 1.0);
    let data = eval_support::image_folder(&t.join("val"), &FOLDERS, 2);
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let fifo = t.join("pipe.onnx");
    let st = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let base = ["--model", m, "--data", d, "--format", "image-folder", "--out"];
    let (err, code) = calibrate_with_deadline(&[&base[..], &[fifo.to_str().unwrap()]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pipe.onnx is a FIFO (named pipe), not a regular file"), "{err}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // A symbolic link stays a link; the calibrated model replaces its target.
    let (target, link) = (t.join("real.onnx"), t.join("link.onnx"));
    std::fs::write(&target, b"old").unwrap();
    std::os::unix::fs::symlink("real.onnx", &link).unwrap();
    let (err, code) = calibrate_with_deadline(&[&base[..], &[link.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let after = pb::ModelProto::decode(std::fs::read(&target).unwrap().as_slice()).unwrap();
    assert!(props(&after).contains_key("fer.temperature"));
}
