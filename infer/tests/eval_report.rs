//! `fer-infer report` over eval folders and trainer run folders: grouping by experiment and
//! dataset with seeds as repetitions, mean ± sample std, best epoch under the config's metric,
//! markdown, CSV and PNGs.

mod eval_support;

use std::path::Path;

use eval_support::{FER7, cli, eval, export, image_folder};
use fer_metrics::run::{EarlyStopping, EpochRecord, Metric, read_jsonl};

/// A fake trainer run: `config.resolved.toml` and `metrics.jsonl` (`[early_stopping]` given as
/// TOML lines) with one record per `(val_accuracy, val_macro_f1, val_ece)`, written as the
/// trainer writes them.
fn run_with(root: &Path, name: &str, seed: u64, early_stopping: &str, epochs: &[(f64, f64, f64)]) {
    let d = root.join(format!("{name}_s{seed}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("config.resolved.toml"),
        format!(
            "version = 1\nname = \"{name}_seed{seed}\"\nseed = {seed}\n[data]\n\
             format = \"ckplus\"\nroot = \"/data/CK+48\"\n[early_stopping]\n{early_stopping}\n"
        ),
    )
    .unwrap();
    let records: Vec<EpochRecord> = epochs
        .iter()
        .enumerate()
        .map(|(i, &(acc, f1, ece))| EpochRecord {
            epoch: i + 1,
            stage: "train".into(),
            train_loss: 2.0 / (i + 1) as f64,
            train_accuracy: 0.5,
            terms: [("cross_entropy".to_string(), 2.0 / (i + 1) as f64)].into(),
            val_loss: 1.0,
            val_accuracy: acc,
            val_macro_f1: f1,
            val_ece: ece,
            ..EpochRecord::default()
        })
        .collect();
    std::fs::write(d.join("metrics.jsonl"), fer_metrics::run::to_jsonl(&records).unwrap()).unwrap();
}

/// A fake trainer run whose best `val_accuracy` is at epoch 2 (not the last), with the given
/// values there.
fn run_dir(root: &Path, name: &str, seed: u64, best: (f64, f64, f64)) {
    let epochs = [(0.1, 0.1, 0.3), best, (best.0 - 0.05, 0.0, 0.0)];
    run_with(root, name, seed, "metric = \"val_accuracy\"", &epochs);
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, var.sqrt())
}

#[test]
fn report_groups_runs_and_evals_by_experiment_and_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let runs = t.join("runs");
    let vals = [(0.80, 0.70, 0.05), (0.84, 0.75, 0.07), (0.86, 0.71, 0.04)];
    for (seed, v) in vals.iter().enumerate() {
        run_dir(&runs, "ck_kd", seed as u64, *v);
    }
    // Two evals of "the same experiment" with seeds 1 and 2 in the model names.
    let data = image_folder(&t.join("fer"), &["happy", "sad", "angry"], 3);
    let evals = t.join("evals");
    let mut accs = Vec::new();
    for seed in [1, 2] {
        let model = export(t, &format!("mnv3_seed{seed}"), &FER7, seed as f32, 1.0);
        let (m, _) = eval(
            &model,
            &data,
            "image-folder",
            &evals.join(format!("e{seed}")),
            &["--bootstrap", "0"],
        );
        accs.push(m["metrics"]["accuracy"].as_f64().unwrap());
    }
    let out = t.join("report");
    let (stdout, stderr, code) = cli(&[
        "report",
        runs.to_str().unwrap(),
        evals.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("5 entries in 2 rows"), "{stdout}");

    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let ck = rows.iter().find(|r| r[0] == "ck_kd").expect("ck_kd row");
    assert_eq!((ck[1], ck[2], ck[3]), ("CK+48 (val)", "3", "0 1 2"));
    let num = |s: &str| s.parse::<f64>().unwrap();
    for (col, pick) in [(4, 0), (6, 1), (8, 2)] {
        let v: Vec<f64> = vals.iter().map(|x| [x.0, x.1, x.2][pick]).collect();
        let (m, s) = mean_std(&v);
        assert!((num(ck[col]) - m).abs() < 1e-12 && (num(ck[col + 1]) - s).abs() < 1e-12, "{csv}");
    }
    let ev = rows.iter().find(|r| r[0] == "mnv3").expect("mnv3 row (seed suffix stripped)");
    assert_eq!((ev[1], ev[2], ev[3]), ("fer (all)", "2", "1 2"));
    let (m, s) = mean_std(&accs);
    assert!((num(ev[4]) - m).abs() < 1e-12 && (num(ev[5]) - s).abs() < 1e-12, "{csv}");
    assert!(num(ev[10]) > 0.0, "parameters from the ONNX file");

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| ck_kd | CK+48 (val) | 3 | 0, 1, 2 |"), "{md}");
    let png = image::open(out.join("report.png")).unwrap();
    assert!(png.width() > 1000 && png.height() >= 230);
    assert_eq!(std::fs::read_dir(out.join("curves")).unwrap().count(), 3);

    // A folder with neither kind of output is an error naming it.
    std::fs::create_dir_all(t.join("nothing")).unwrap();
    let (_, err, code) =
        cli(&["report", t.join("nothing").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("nothing: no metrics.json"), "{err}");
}

/// The report's best epoch is the trainer's (`fer_metrics::run::EarlyStopping::best`, the rule
/// that saves `best.safetensors`): with ties and gains within `min_delta`, the earlier epoch.
#[test]
fn report_takes_the_trainers_best_epoch_with_ties_and_min_delta() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    // val_accuracy 0.5, 0.6, 0.6 (tie), 0.605 (+0.005 <= min_delta 0.01), 0.55: epoch 2 is
    // the best; "the last of the maxima without min_delta" would say epoch 4.
    let epochs =
        [(0.5, 0.1, 0.1), (0.6, 0.2, 0.2), (0.6, 0.3, 0.3), (0.605, 0.4, 0.4), (0.55, 0.5, 0.5)];
    run_with(&runs, "ties", 1, "metric = \"val_accuracy\"\nmin_delta = 0.01", &epochs);
    let rule = EarlyStopping { metric: Metric::ValAccuracy, min_delta: 0.01, patience: None };
    let records = read_jsonl(&runs.join("ties_s1/metrics.jsonl")).unwrap();
    assert_eq!(rule.best(&records).map(|r| r.epoch), Some(2));

    let entries = fer_infer::report::collect(std::slice::from_ref(&runs)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].best_epoch, Some(2));
    assert_eq!(entries[0].macro_f1, Some(0.2), "macro-F1 of epoch 2");

    let out = tmp.path().join("report");
    let (stdout, stderr, code) =
        cli(&["report", runs.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!((row[4], row[6], row[8]), ("0.6", "0.2", "0.2"), "{csv}");
}

/// One model evaluated by ONNX Runtime and by tract is two rows (one per runtime, each with its
/// own ms/image), not one row of two "seeds".
#[test]
fn report_keeps_runtimes_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = image_folder(&t.join("fer"), &["happy", "sad", "angry"], 3);
    let model = export(t, "mnv3_seed1", &FER7, 1.0, 1.0);
    let evals = t.join("evals");
    let mut ms = Vec::new();
    for backend in ["ort", "tract"] {
        let dir = evals.join(backend);
        let (m, _) =
            eval(&model, &data, "image-folder", &dir, &["--bootstrap", "0", "--backend", backend]);
        ms.push((
            m["model"]["backend"].as_str().unwrap().to_string(),
            m["timing"]["ms_per_image"].as_f64().unwrap(),
        ));
    }
    let out = t.join("report");
    let (stdout, stderr, code) =
        cli(&["report", evals.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("2 entries in 2 rows"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",ms_per_image,runtime"), "{csv}");
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for (runtime, ms_per_image) in &ms {
        let row =
            rows.iter().find(|r| r[12] == runtime).unwrap_or_else(|| panic!("{runtime}: {csv}"));
        assert_eq!((row[0], row[2], row[3]), ("mnv3", "1", "1"), "{csv}");
        assert_eq!(row[11].parse::<f64>().unwrap(), *ms_per_image, "{csv}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| ort-cpu |") && md.contains("| tract |"), "{md}");
}
