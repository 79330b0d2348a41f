//! One line of `metrics.jsonl`: everything measured in one epoch.
//!
//! The file is JSON lines, one flat object per epoch, so that `pandas.read_json(path,
//! lines=True)` gives one column per field: each loss term of the stage is a column of its
//! own, `loss_<label>` (for example `loss_cross_entropy`, `loss_kd_ensemble[a+b]`), holding
//! the term's unweighted mean. Files written before the flat layout hold the terms nested
//! under `terms`; they are read the same way, and rewritten flat when a run is resumed.
//! Keys this version does not know are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::selection::Metric;

/// Prefix of the loss-term columns of `metrics.jsonl`.
pub const TERM_PREFIX: &str = "loss_";

/// One line of `metrics.jsonl`: everything measured in one epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "Line", try_from = "Line")]
pub struct EpochRecord {
    /// Epoch number over the whole run, from 1.
    pub epoch: usize,
    /// Stage name.
    pub stage: String,
    /// Learning rate at the epoch's last update.
    pub lr: f64,
    /// Mean training loss (the weighted sum of the stage's terms).
    pub train_loss: f64,
    /// Training top-1 accuracy on the augmented batches.
    pub train_accuracy: f64,
    /// Mean of each loss term (unweighted), by label; the `loss_<label>` columns.
    pub terms: BTreeMap<String, f64>,
    /// Validation cross-entropy (NLL of the softmax).
    pub val_loss: f64,
    /// Validation top-1 accuracy.
    pub val_accuracy: f64,
    /// Validation macro-F1.
    pub val_macro_f1: f64,
    /// Validation ECE (15 equal-width bins, top label).
    pub val_ece: f64,
    /// Training images seen this epoch.
    pub images: usize,
    /// Training throughput, images per second (timing: varies between identical runs).
    pub img_per_s: f64,
    /// Wall time of the epoch's training in seconds (timing).
    pub epoch_seconds: f64,
    /// Wall time of the epoch's validation (precise BatchNorm included) in seconds (timing;
    /// 0 in records written before it existed).
    pub val_seconds: f64,
}

impl EpochRecord {
    /// The value of a selection metric.
    pub fn metric(&self, m: Metric) -> f64 {
        match m {
            Metric::ValAccuracy => self.val_accuracy,
            Metric::ValMacroF1 => self.val_macro_f1,
            Metric::ValLoss => self.val_loss,
        }
    }
}

/// The JSON form of a record: the terms flattened into `loss_<label>` columns.
#[derive(Serialize, Deserialize)]
struct Line {
    epoch: usize,
    stage: String,
    lr: f64,
    train_loss: f64,
    train_accuracy: f64,
    /// Written: the `loss_<label>` columns. Read: every key not named here.
    #[serde(flatten)]
    columns: BTreeMap<String, serde_json::Value>,
    /// The terms in the layout before the flat one; never written.
    #[serde(default, skip_serializing)]
    terms: Option<BTreeMap<String, f64>>,
    val_loss: f64,
    val_accuracy: f64,
    val_macro_f1: f64,
    val_ece: f64,
    images: usize,
    img_per_s: f64,
    epoch_seconds: f64,
    #[serde(default)]
    val_seconds: f64,
}

impl From<EpochRecord> for Line {
    fn from(r: EpochRecord) -> Line {
        let columns =
            r.terms.into_iter().map(|(k, v)| (format!("{TERM_PREFIX}{k}"), v.into())).collect();
        Line {
            epoch: r.epoch,
            stage: r.stage,
            lr: r.lr,
            train_loss: r.train_loss,
            train_accuracy: r.train_accuracy,
            columns,
            terms: None,
            val_loss: r.val_loss,
            val_accuracy: r.val_accuracy,
            val_macro_f1: r.val_macro_f1,
            val_ece: r.val_ece,
            images: r.images,
            img_per_s: r.img_per_s,
            epoch_seconds: r.epoch_seconds,
            val_seconds: r.val_seconds,
        }
    }
}

impl TryFrom<Line> for EpochRecord {
    type Error = String;

    fn try_from(l: Line) -> Result<EpochRecord, String> {
        let mut terms = l.terms.unwrap_or_default();
        for (key, value) in l.columns {
            let Some(label) = key.strip_prefix(TERM_PREFIX) else { continue };
            let v = value.as_f64().ok_or_else(|| format!("`{key}` is {value}, not a number"))?;
            terms.insert(label.to_string(), v);
        }
        Ok(EpochRecord {
            epoch: l.epoch,
            stage: l.stage,
            lr: l.lr,
            train_loss: l.train_loss,
            train_accuracy: l.train_accuracy,
            terms,
            val_loss: l.val_loss,
            val_accuracy: l.val_accuracy,
            val_macro_f1: l.val_macro_f1,
            val_ece: l.val_ece,
            images: l.images,
            img_per_s: l.img_per_s,
            epoch_seconds: l.epoch_seconds,
            val_seconds: l.val_seconds,
        })
    }
}

/// Why `metrics.jsonl` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not an epoch record.
    #[error("{}:{line}: not an epoch record of metrics.jsonl: {msg}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A record could not be encoded.
    #[error("epoch {epoch}: the record cannot be written as JSON: {msg}")]
    Encode {
        /// The record's epoch.
        epoch: usize,
        /// What is wrong.
        msg: String,
    },
}

/// The records of the `metrics.jsonl` at `path`, in file order (blank lines skipped).
pub fn read_jsonl(path: &Path) -> Result<Vec<EpochRecord>, RecordError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| RecordError::Io { path: path.to_path_buf(), source })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| RecordError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                msg: e.to_string(),
            })
        })
        .collect()
}

/// `records` as the text of `metrics.jsonl`: one line each, each ending in a newline.
pub fn to_jsonl(records: &[EpochRecord]) -> Result<String, RecordError> {
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r)
            .map_err(|e| RecordError::Encode { epoch: r.epoch, msg: e.to_string() })?;
        text += &line;
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EpochRecord {
        EpochRecord {
            epoch: 2,
            stage: "hybrid".into(),
            lr: 0.01,
            train_loss: 1.25,
            train_accuracy: 0.5,
            terms: [("kd".to_string(), 0.75), ("rkd_distance[a]".to_string(), 0.1)].into(),
            val_loss: 1.1,
            val_accuracy: 0.6,
            val_macro_f1: 0.55,
            val_ece: 0.04,
            images: 80,
            img_per_s: 123.5,
            epoch_seconds: 0.65,
            val_seconds: 0.1,
        }
    }

    #[test]
    fn each_loss_term_is_a_column_of_its_own() {
        let text = to_jsonl(&[record()]).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj["loss_kd"], 0.75);
        assert_eq!(obj["loss_rkd_distance[a]"], 0.1);
        assert!(obj.values().all(|x| !x.is_object()), "nested value in {text}");
        assert_eq!(serde_json::from_str::<EpochRecord>(text.trim()).unwrap(), record());
    }

    #[test]
    fn the_nested_layout_of_earlier_files_is_still_read() {
        let old = r#"{"epoch":2,"stage":"hybrid","lr":0.01,"train_loss":1.25,"train_accuracy":0.5,"terms":{"kd":0.75,"rkd_distance[a]":0.1},"val_loss":1.1,"val_accuracy":0.6,"val_macro_f1":0.55,"val_ece":0.04,"images":80,"img_per_s":123.5,"epoch_seconds":0.65,"val_seconds":0.1,"unknown":[1]}"#;
        assert_eq!(serde_json::from_str::<EpochRecord>(old).unwrap(), record());
        let bad = old.replace("\"unknown\"", "\"loss_x\"");
        let e = serde_json::from_str::<EpochRecord>(&bad).unwrap_err();
        assert!(e.to_string().contains("`loss_x` is [1], not a number"), "{e}");
    }
}
