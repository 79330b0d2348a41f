//! One table across experiments × datasets × seeds, from `eval` outputs and trainer runs.
//!
//! Sources, found by walking each given folder (up to [`MAX_DEPTH`] levels down):
//! - an **eval folder** holds `metrics.json` (written by `fer-infer eval`); it gives the test
//!   accuracy, macro-F1 and ECE at the model's temperature, the parameter count, the runtime
//!   and its forward time per image;
//! - a **run folder** holds `metrics.jsonl` and `config.resolved.toml` (written by
//!   `fer-train`, read as the trainer's own types: [`fer_metrics::run`]); the best epoch under
//!   the config's `[early_stopping]` (the trainer's rule, [`EarlyStopping::best`]: ties and
//!   gains within `min_delta` keep the earlier epoch, so it is the epoch of
//!   `best.safetensors`) gives `val_accuracy`, `val_macro_f1` and `val_ece`. Runs have no
//!   runtime, forward time or parameter count.
//!
//! Grouping: one row per (experiment, dataset, runtime); the entries of a row are its
//! repetitions (seeds, folds), reported as mean ± sample standard deviation ([`MeanStd`]:
//! `n − 1`; 0 for one entry). Evaluations of one model by two runtimes are two rows, never two
//! repetitions, and each row's ms/image is its runtime's.
//! - experiment: the config's `name` (runs; for an eval, the config of the run folder that
//!   holds the model, else the model's file stem), with a trailing `seed<N>` / `fold<N>`
//!   token (after `_`, `-` or `.`) removed, so `exp3_seed1` and `exp3_seed2` are one row;
//! - seed: the config's `seed`, else the `seed<N>` token;
//! - dataset: `<name> (<split>)` — the data path's last component and the split (`val` for
//!   trainer runs, which report validation metrics).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fer_metrics::plot::{BarGroup, CurveRow};
use fer_metrics::run::{EarlyStopping, MeanStd, read_jsonl};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eval::{EvalReport, Tta};

/// How deep folders are searched for eval and run folders.
pub const MAX_DEPTH: usize = 4;

/// One evaluated model or training run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Group name (seed suffix removed).
    pub experiment: String,
    /// `<name> (<split>)`.
    pub dataset: String,
    /// The seed, when known.
    pub seed: Option<u64>,
    /// Accuracy.
    pub accuracy: Option<f64>,
    /// Macro-F1.
    pub macro_f1: Option<f64>,
    /// ECE (15 bins).
    pub ece: Option<f64>,
    /// Parameters (eval folders: the ONNX file's initializer elements).
    pub parameters: Option<u64>,
    /// The runtime that evaluated it (`ort-cpu`, `tract`, …); `None` for trainer runs.
    pub runtime: Option<String>,
    /// Forward milliseconds per image, on `runtime`.
    pub ms_per_image: Option<f64>,
    /// The best epoch of a trainer run (the epoch of its `best.safetensors`).
    pub best_epoch: Option<usize>,
    /// The folder it came from.
    pub source: PathBuf,
    /// Per-epoch curves of a trainer run (empty for eval folders).
    #[serde(skip)]
    pub curves: Vec<CurveRow>,
}

/// Mean and sample standard deviation of the known values, with their count (the helper the
/// trainer's seed summary uses too).
pub type Stat = MeanStd;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Group name.
    pub experiment: String,
    /// Dataset and split.
    pub dataset: String,
    /// The runtime of its evaluations; `None` for trainer runs.
    pub runtime: Option<String>,
    /// Entries in the group.
    pub n: usize,
    /// Their seeds (known ones), sorted.
    pub seeds: Vec<u64>,
    /// Accuracy over the entries.
    pub accuracy: Option<Stat>,
    /// Macro-F1.
    pub macro_f1: Option<Stat>,
    /// ECE.
    pub ece: Option<Stat>,
    /// Parameters (the first known; equal within a group in practice).
    pub parameters: Option<u64>,
    /// Forward ms per image on `runtime`.
    pub ms_per_image: Option<Stat>,
}

/// Splits a trailing `seed<N>` / `fold<N>` token off `name`.
pub fn strip_repetition(name: &str) -> (String, Option<u64>) {
    let mut base = name.to_string();
    let mut seed = None;
    loop {
        let cut = base.rfind(['_', '-', '.']).map_or(0, |i| i + 1);
        let token = &base[cut..];
        let digits = |p: &str| token.strip_prefix(p).and_then(|d| d.parse::<u64>().ok());
        let (s, f) = (digits("seed"), digits("fold"));
        if cut == 0 || (s.is_none() && f.is_none()) {
            return (base, seed);
        }
        seed = seed.or(s);
        base.truncate(cut - 1);
    }
}

/// Finds every eval folder and run folder under `roots`.
pub fn collect(roots: &[PathBuf]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for root in roots {
        let before = out.len();
        walk(root, 0, &mut out)?;
        if out.len() == before {
            return Err(Error::invalid(
                "report input",
                format!(
                    "{}: no metrics.json (fer-infer eval) or metrics.jsonl with \
                     config.resolved.toml (fer-train) found within {MAX_DEPTH} levels",
                    root.display()
                ),
            ));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<Entry>) -> Result<()> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    if !dir.is_dir() {
        return Err(io(std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder")));
    }
    if dir.join("metrics.json").is_file() {
        out.push(from_eval(dir)?);
    }
    if dir.join("metrics.jsonl").is_file() {
        out.push(from_run(dir)?);
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    for s in subs {
        walk(&s, depth + 1, out)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

fn from_eval(dir: &Path) -> Result<Entry> {
    let path = dir.join("metrics.json");
    let r: EvalReport = serde_json::from_str(&read(&path)?)
        .map_err(|e| Error::Parse { path: path.clone(), msg: e.to_string() })?;
    let config = r.model.path.parent().map(|p| p.join("config.resolved.toml"));
    let from_config = match config {
        Some(c) if c.is_file() => Some(run_config(&c)?),
        _ => None,
    };
    let (name, config_seed) = match from_config {
        Some(c) => (c.name, Some(c.seed)),
        None => {
            let stem = r.model.path.file_stem().map(|s| s.to_string_lossy().into_owned());
            (stem.unwrap_or_else(|| "model".into()), None)
        }
    };
    let (mut experiment, name_seed) = strip_repetition(&name);
    if r.settings.tta != Tta::None {
        // Never averaged with the same model's plain evaluation.
        experiment.push_str(&format!(" + {} TTA", r.settings.tta.name()));
    }
    Ok(Entry {
        experiment,
        dataset: format!("{} ({})", r.dataset.name, r.dataset.spec.split_name()),
        seed: config_seed.or(name_seed),
        accuracy: Some(r.metrics.accuracy),
        macro_f1: Some(r.metrics.macro_f1),
        ece: Some(r.metrics.ece),
        parameters: Some(r.model.parameters),
        runtime: Some(r.model.backend.clone()),
        ms_per_image: Some(r.timing.ms_per_image),
        best_epoch: None,
        source: dir.to_path_buf(),
        curves: Vec::new(),
    })
}

/// What the report reads of a run's `config.resolved.toml` (the trainer's full config lives in
/// `fer-train`, which `fer-infer` does not depend on); other keys are left alone.
#[derive(Debug, Deserialize)]
struct RunConfig {
    name: String,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    data: RunData,
    /// The trainer's own section type, so the selection rule is read as it was trained.
    #[serde(default)]
    early_stopping: EarlyStopping,
}

/// `[data]`: only its root names the dataset.
#[derive(Debug, Default, Deserialize)]
struct RunData {
    #[serde(default)]
    root: PathBuf,
}

impl RunConfig {
    /// The data root's last component.
    fn dataset(&self) -> String {
        self.data
            .root
            .components()
            .next_back()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
}

fn run_config(path: &Path) -> Result<RunConfig> {
    toml::from_str(&read(path)?)
        .map_err(|e| Error::Parse { path: path.to_path_buf(), msg: e.to_string() })
}

fn from_run(dir: &Path) -> Result<Entry> {
    let cfg_path = dir.join("config.resolved.toml");
    if !cfg_path.is_file() {
        return Err(Error::Parse {
            path: cfg_path,
            msg: "missing: a run folder with metrics.jsonl needs its config.resolved.toml".into(),
        });
    }
    let cfg = run_config(&cfg_path)?;
    let records = read_jsonl(&dir.join("metrics.jsonl"))?;
    let best = cfg.early_stopping.best(&records);
    let curves = records.iter().map(CurveRow::from).collect();
    let (experiment, _) = strip_repetition(&cfg.name);
    Ok(Entry {
        experiment,
        dataset: format!("{} (val)", cfg.dataset()),
        seed: Some(cfg.seed),
        accuracy: best.map(|r| r.val_accuracy),
        macro_f1: best.map(|r| r.val_macro_f1),
        ece: best.map(|r| r.val_ece),
        parameters: None,
        runtime: None,
        ms_per_image: None,
        best_epoch: best.map(|r| r.epoch),
        source: dir.to_path_buf(),
        curves,
    })
}

/// Groups entries by (experiment, dataset, runtime), in name order.
pub fn group(entries: &[Entry]) -> Vec<Row> {
    type Key = (String, String, Option<String>);
    let mut groups: BTreeMap<Key, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        let key = (e.experiment.clone(), e.dataset.clone(), e.runtime.clone());
        groups.entry(key).or_default().push(e);
    }
    groups
        .into_iter()
        .map(|((experiment, dataset, runtime), es)| {
            let vals =
                |f: fn(&Entry) -> Option<f64>| es.iter().filter_map(|e| f(e)).collect::<Vec<_>>();
            let mut seeds: Vec<u64> = es.iter().filter_map(|e| e.seed).collect();
            seeds.sort_unstable();
            Row {
                experiment,
                dataset,
                runtime,
                n: es.len(),
                seeds,
                accuracy: Stat::of(&vals(|e| e.accuracy)),
                macro_f1: Stat::of(&vals(|e| e.macro_f1)),
                ece: Stat::of(&vals(|e| e.ece)),
                parameters: es.iter().find_map(|e| e.parameters),
                ms_per_image: Stat::of(&vals(|e| e.ms_per_image)),
            }
        })
        .collect()
}

fn pm(s: &Option<Stat>) -> String {
    s.map_or("n/a".into(), |s| format!("{:.4} ± {:.4}", s.mean, s.std))
}

/// The markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| experiment | dataset | n | seeds | accuracy | macro-F1 | ECE | parameters | runtime | \
         ms/image |\n|---|---|---:|---|---:|---:|---:|---:|---|---:|\n",
    );
    for r in rows {
        let seeds: Vec<String> = r.seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.experiment,
            r.dataset,
            r.n,
            seeds.join(", "),
            pm(&r.accuracy),
            pm(&r.macro_f1),
            pm(&r.ece),
            r.parameters.map_or("n/a".into(), |p| p.to_string()),
            r.runtime.as_deref().unwrap_or("n/a"),
            r.ms_per_image.map_or("n/a".into(), |t| format!("{:.3}", t.mean)),
        );
    }
    s
}

/// One row against the baseline row of the same dataset and runtime: what the experiment
/// (distillation, say) added, as differences of means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gain {
    /// The row's experiment.
    pub experiment: String,
    /// Dataset and split.
    pub dataset: String,
    /// Runtime (`None` for trainer runs).
    pub runtime: Option<String>,
    /// Entries behind the row and behind the baseline row.
    pub n: (usize, usize),
    /// Accuracy minus the baseline's (fractions; `None` when either is unknown).
    pub accuracy: Option<f64>,
    /// Macro-F1 minus the baseline's.
    pub macro_f1: Option<f64>,
    /// ECE minus the baseline's (negative: better calibrated).
    pub ece: Option<f64>,
}

/// Every row that has a row of experiment `baseline` on its dataset and runtime, against that
/// row. An error names the experiments when none is `baseline`.
pub fn gains(rows: &[Row], baseline: &str) -> Result<Vec<Gain>> {
    if !rows.iter().any(|r| r.experiment == baseline) {
        let mut names: Vec<&str> = rows.iter().map(|r| r.experiment.as_str()).collect();
        names.dedup();
        return Err(Error::invalid(
            "--baseline",
            format!("no experiment `{baseline}` in the table (experiments: {})", names.join(", ")),
        ));
    }
    let diff = |a: &Option<Stat>, b: &Option<Stat>| a.zip(*b).map(|(a, b)| a.mean - b.mean);
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| r.experiment != baseline) {
        let base = rows
            .iter()
            .find(|b| b.experiment == baseline && b.dataset == r.dataset && b.runtime == r.runtime);
        if let Some(b) = base {
            out.push(Gain {
                experiment: r.experiment.clone(),
                dataset: r.dataset.clone(),
                runtime: r.runtime.clone(),
                n: (r.n, b.n),
                accuracy: diff(&r.accuracy, &b.accuracy),
                macro_f1: diff(&r.macro_f1, &b.macro_f1),
                ece: diff(&r.ece, &b.ece),
            });
        }
    }
    Ok(out)
}

/// The markdown section of [`gains`], in percentage points.
pub fn gains_markdown(gains: &[Gain], baseline: &str) -> String {
    let pts = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{:+.2}", 100.0 * v));
    let mut s = format!(
        "## Against the baseline `{baseline}`\n\nDifferences of means, in percentage points, \
         with the baseline row of the same dataset and runtime. With one entry a side, they \
         include run-to-run noise: compare over seeds before trusting a gain.\n\n\
         | experiment | dataset | runtime | accuracy | macro-F1 | ECE (lower is better) | entries (baseline) |\n\
         |---|---|---|---:|---:|---:|---|\n"
    );
    for g in gains {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} ({}) |",
            g.experiment,
            g.dataset,
            g.runtime.as_deref().unwrap_or("n/a"),
            pts(g.accuracy),
            pts(g.macro_f1),
            pts(g.ece),
            g.n.0,
            g.n.1
        );
    }
    if gains.is_empty() {
        s += "| (no row shares a dataset and runtime with the baseline) | | | | | | |\n";
    }
    s
}

/// The CSV table (means and standard deviations in separate columns; empty when unknown).
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "experiment,dataset,n,seeds,accuracy_mean,accuracy_std,macro_f1_mean,macro_f1_std,\
         ece_mean,ece_std,parameters,ms_per_image,runtime\n",
    );
    let q = |x: &str| {
        if x.contains([',', '"', '\n']) {
            format!("\"{}\"", x.replace('"', "\"\""))
        } else {
            x.into()
        }
    };
    let st = |x: &Option<Stat>| x.map_or(",".into(), |s| format!("{},{}", s.mean, s.std));
    for r in rows {
        let seeds: Vec<String> = r.seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{}",
            q(&r.experiment),
            q(&r.dataset),
            r.n,
            q(&seeds.join(" ")),
            st(&r.accuracy),
            st(&r.macro_f1),
            st(&r.ece),
            r.parameters.map_or(String::new(), |p| p.to_string()),
            r.ms_per_image.map_or(String::new(), |t| t.mean.to_string()),
            q(r.runtime.as_deref().unwrap_or("")),
        );
    }
    s
}

/// The bars of the plot: accuracy, macro-F1 and ECE per row.
pub fn bar_groups(rows: &[Row]) -> Vec<BarGroup> {
    rows.iter()
        .map(|r| BarGroup {
            label: match &r.runtime {
                Some(rt) => format!("{} @ {} on {rt} (n={})", r.experiment, r.dataset, r.n),
                None => format!("{} @ {} (n={})", r.experiment, r.dataset, r.n),
            },
            values: [r.accuracy, r.macro_f1, r.ece]
                .iter()
                .map(|s| s.map(|s| (s.mean, s.std)))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gains_pair_rows_by_dataset_and_runtime() {
        let row = |exp: &str, rt: Option<&str>, acc: f64| Row {
            experiment: exp.into(),
            dataset: "demo (val)".into(),
            runtime: rt.map(str::to_string),
            n: 1,
            seeds: vec![],
            accuracy: Some(Stat { mean: acc, std: 0.0, n: 1 }),
            macro_f1: None,
            ece: Some(Stat { mean: 0.05, std: 0.0, n: 1 }),
            parameters: None,
            ms_per_image: None,
        };
        let rows = [
            row("base", Some("ort-cpu"), 0.60),
            row("kd", Some("ort-cpu"), 0.65),
            row("kd", Some("tract"), 0.65),
        ];
        let g = gains(&rows, "base").unwrap();
        assert_eq!(g.len(), 1, "tract has no baseline row: {g:?}");
        assert!((g[0].accuracy.unwrap() - 0.05).abs() < 1e-12 && g[0].macro_f1.is_none());
        let md = gains_markdown(&g, "base");
        assert!(md.contains("| kd | demo (val) | ort-cpu | +5.00 | n/a | +0.00 | 1 (1) |"), "{md}");
        let e = gains(&rows, "exp3").unwrap_err().to_string();
        assert!(e.contains("no experiment `exp3`") && e.contains("base, kd"), "{e}");
    }

    #[test]
    fn seed_and_fold_suffixes_are_stripped() {
        assert_eq!(strip_repetition("exp3_seed12"), ("exp3".into(), Some(12)));
        assert_eq!(strip_repetition("ck_kd-fold3_seed1"), ("ck_kd".into(), Some(1)));
        assert_eq!(strip_repetition("exp3.fold0"), ("exp3".into(), None));
        assert_eq!(strip_repetition("seed3"), ("seed3".into(), None));
        assert_eq!(strip_repetition("exp_seedling"), ("exp_seedling".into(), None));
    }
}
