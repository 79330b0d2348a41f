//! Multi-seed runs: the same config once per seed, and the stability summary (mean ± std).

use serde::{Deserialize, Serialize};

use std::path::Path;

use super::{Observer, RunOptions, RunOutcome, train};
use crate::config::ExperimentConfig;
use crate::error::{Error, Result};

/// Mean and sample standard deviation (the one helper, shared with `fer-infer report`).
pub use fer_metrics::run::MeanStd;

/// One seed's best epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Its run directory.
    pub dir: std::path::PathBuf,
    /// Epoch of its best checkpoint.
    pub best_epoch: usize,
    /// Validation accuracy at that epoch.
    pub val_accuracy: f64,
    /// Validation macro-F1 at that epoch.
    pub val_macro_f1: f64,
    /// Validation ECE at that epoch.
    pub val_ece: f64,
    /// Validation loss at that epoch.
    pub val_loss: f64,
}

/// The stability summary written as `summary.json` and `summary.md`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedSummary {
    /// Config name.
    pub name: String,
    /// Per seed.
    pub seeds: Vec<SeedResult>,
    /// Over seeds: validation accuracy at each seed's best epoch.
    pub val_accuracy: MeanStd,
    /// Over seeds: macro-F1.
    pub val_macro_f1: MeanStd,
    /// Over seeds: ECE.
    pub val_ece: MeanStd,
}

/// Runs `cfg` once per seed in `<run_dir>/seed<k>/` and writes the summary into `<run_dir>`.
/// Unless `opts.overwrite`, seeds that already finished are read back, not trained again, and
/// interrupted ones are resumed.
pub fn train_seeds(
    cfg: &ExperimentConfig,
    seeds: &[u64],
    opts: &RunOptions,
    obs: &dyn Observer,
) -> Result<SeedSummary> {
    if seeds.is_empty() {
        return Err(Error::Input("--seeds: give at least one seed".into()));
    }
    let root = opts.run_dir.clone().unwrap_or_else(|| cfg.run_dir());
    let mut outcomes = Vec::new();
    for &seed in seeds {
        let mut c = cfg.clone();
        c.seed = seed;
        let dir = root.join(format!("seed{seed}"));
        let o = RunOptions { run_dir: Some(dir.clone()), ..opts.clone() };
        // Without --overwrite, a seed that finished earlier is read back and one that was
        // interrupted is resumed: the same command continues a batch of runs.
        let out = match super::finished(&dir)? {
            Some(out) if !opts.overwrite => {
                obs.message(&format!("seed {seed}: finished earlier in {}", dir.display()));
                out
            }
            _ if !opts.overwrite
                && super::rundir::RunDir { path: dir.clone() }.state().exists() =>
            {
                obs.message(&format!("seed {seed}: resuming {}", dir.display()));
                super::resume(&dir, opts.device, obs)?
            }
            _ => {
                obs.message(&format!("seed {seed}"));
                train(&c, &o, obs)?
            }
        };
        outcomes.push((seed, out));
    }
    summarize(&cfg.run_name(), &root, &outcomes)
}

/// The summary of finished seeds (`(seed, outcome)`, in the order given), written as
/// `summary.json` and `summary.md` into `root` (the folder that holds the `seed<k>/` runs).
/// `train_seeds` and a sweep (`crate::sweep`, once its config's last seed finished) call it.
pub fn summarize(name: &str, root: &Path, outcomes: &[(u64, RunOutcome)]) -> Result<SeedSummary> {
    let mut results = Vec::new();
    for (seed, out) in outcomes {
        let seed = *seed;
        let best = out
            .records
            .iter()
            .find(|r| r.epoch == out.best_epoch)
            .ok_or_else(|| Error::Input(format!("seed {seed}: no epoch completed")))?;
        results.push(SeedResult {
            seed,
            dir: out.dir.clone(),
            best_epoch: out.best_epoch,
            val_accuracy: best.val_accuracy,
            val_macro_f1: best.val_macro_f1,
            val_ece: best.val_ece,
            val_loss: best.val_loss,
        });
    }
    let col = |f: fn(&SeedResult) -> f64| {
        MeanStd::of(&results.iter().map(f).collect::<Vec<_>>())
            .ok_or_else(|| Error::Input("--seeds: no seed finished".into()))
    };
    let summary = SeedSummary {
        name: name.to_string(),
        val_accuracy: col(|r| r.val_accuracy)?,
        val_macro_f1: col(|r| r.val_macro_f1)?,
        val_ece: col(|r| r.val_ece)?,
        seeds: results,
    };
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Input(e.to_string()))?;
    let rd = super::rundir::RunDir { path: root.to_path_buf() };
    rd.write_atomic("summary.json", &json)?;
    rd.write_atomic("summary.md", summary.markdown().as_bytes())?;
    Ok(summary)
}

impl SeedSummary {
    /// The summary as a markdown table.
    pub fn markdown(&self) -> String {
        let pct = |m: MeanStd| format!("{:.2} ± {:.2}", 100.0 * m.mean, 100.0 * m.std);
        let mut s = format!(
            "# {}\n\n| seed | best epoch | val accuracy % | val macro-F1 % | val ECE % |\n|---|---|---|---|---|\n",
            self.name
        );
        for r in &self.seeds {
            s += &format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} |\n",
                r.seed,
                r.best_epoch,
                100.0 * r.val_accuracy,
                100.0 * r.val_macro_f1,
                100.0 * r.val_ece
            );
        }
        s += &format!(
            "| mean ± std | | {} | {} | {} |\n",
            pct(self.val_accuracy),
            pct(self.val_macro_f1),
            pct(self.val_ece)
        );
        s
    }
}
