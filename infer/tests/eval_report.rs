//! `fer-infer report` over eval folders and trainer run folders: grouping by experiment and
//! dataset with seeds as repetitions, mean ± sample std, best epoch under the config's metric,
//! markdown, CSV and PNGs.

mod eval_support;

use std::path::Path;

use eval_support::{FER7, cli, eval, export, image_folder};

/// A fake trainer run: `config.resolved.toml` and `metrics.jsonl` whose best `val_accuracy`
/// is at epoch 2 (not the last), with the given values there.
fn run_dir(root: &Path, name: &str, seed: u64, best: (f64, f64, f64)) {
    let d = root.join(format!("{name}_s{seed}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("config.resolved.toml"),
        format!(
            "version = 1\nname = \"{name}_seed{seed}\"\nseed = {seed}\n[data]\n\
             format = \"ckplus\"\nroot = \"/data/CK+48\"\n[early_stopping]\nmetric = \"val_accuracy\"\n"
        ),
    )
    .unwrap();
    let line = |e: u32, acc: f64, f1: f64, ece: f64| {
        format!(
            "{{\"epoch\": {e}, \"train_loss\": {}, \"val_loss\": 1.0, \"train_accuracy\": 0.5, \
             \"val_accuracy\": {acc}, \"val_macro_f1\": {f1}, \"val_ece\": {ece}}}\n",
            2.0 / e as f64
        )
    };
    let text = line(1, 0.1, 0.1, 0.3)
        + &line(2, best.0, best.1, best.2)
        + &line(3, best.0 - 0.05, 0.0, 0.0);
    std::fs::write(d.join("metrics.jsonl"), text).unwrap();
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
