//! Which epoch is the best one: the `[early_stopping]` section and its one rule.
//!
//! The rule, applied epoch by epoch in order: an epoch is an improvement when its metric is
//! finite and it beats the best so far by more than `min_delta` (`value > best + min_delta`
//! for metrics where higher is better, `value < best − min_delta` for `val_loss`); the first
//! finite epoch is always one. The best epoch is the last improvement, so a tie, or a gain of
//! at most `min_delta`, keeps the earlier epoch. The trainer saves `best.safetensors` at each
//! improvement and counts the epochs since the last one for `patience`; `fer-infer report`
//! replays the same rule over `metrics.jsonl`, so both name the same epoch.

use serde::{Deserialize, Serialize};

use super::record::EpochRecord;

/// A validation metric, computed after every epoch, that can select the best epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Top-1 accuracy on the validation set (higher is better).
    #[default]
    ValAccuracy,
    /// Unweighted mean of the per-class F1 scores (higher is better).
    ValMacroF1,
    /// Mean cross-entropy on the validation set, without label smoothing (lower is better).
    ValLoss,
}

impl Metric {
    /// Whether larger values are better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::ValLoss)
    }

    /// The name used in configs and in `metrics.jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::ValAccuracy => "val_accuracy",
            Metric::ValMacroF1 => "val_macro_f1",
            Metric::ValLoss => "val_loss",
        }
    }
}

/// The `[early_stopping]` section of a config: the metric that selects `best.safetensors`, and
/// when a stage stops early.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// `val_accuracy`, `val_macro_f1` or `val_loss`: decides the best epoch (whose weights are
    /// `best.safetensors`) whether or not early stopping is on. Default `val_accuracy`.
    #[serde(default)]
    pub metric: Metric,
    /// Stop a stage after this many epochs (`≥ 1`) without an improvement of at least
    /// `min_delta`; the next stage, if any, then starts. Default: never stop early.
    #[serde(default)]
    pub patience: Option<usize>,
    /// Smallest change of the metric that counts as an improvement, `≥ 0` (in the metric's
    /// units: 0.001 is 0.1 percentage point of accuracy). Default 0.
    #[serde(default)]
    pub min_delta: f64,
}

impl EarlyStopping {
    /// The best of `records` (in epoch order) under the rule of this module; `None` when no
    /// record has a finite metric.
    pub fn best<'a>(&self, records: &'a [EpochRecord]) -> Option<&'a EpochRecord> {
        let mut best = BestEpoch::new(self);
        records.iter().fold(None, |kept, r| if best.observe(r) { Some(r) } else { kept })
    }
}

/// The rule of this module, followed epoch by epoch: the best epoch so far and the epochs
/// since it (for `patience`).
#[derive(Debug, Clone, PartialEq)]
pub struct BestEpoch {
    rule: EarlyStopping,
    best: Option<(usize, f64)>,
    stale: usize,
}

impl BestEpoch {
    /// No epoch seen yet.
    pub fn new(rule: &EarlyStopping) -> BestEpoch {
        BestEpoch { rule: rule.clone(), best: None, stale: 0 }
    }

    /// Whether `value` of the selection metric improves on the best so far.
    pub fn improves(&self, value: f64) -> bool {
        let d = self.rule.min_delta;
        let better = |b: f64| {
            if self.rule.metric.higher_is_better() { value > b + d } else { value < b - d }
        };
        value.is_finite() && self.best.is_none_or(|(_, b)| better(b))
    }

    /// Takes the next epoch into account; true when it is the new best.
    pub fn observe(&mut self, r: &EpochRecord) -> bool {
        let value = r.metric(self.rule.metric);
        let improved = self.improves(value);
        if improved {
            self.best = Some((r.epoch, value));
            self.stale = 0;
        } else {
            self.stale += 1;
        }
        improved
    }

    /// The best epoch so far (1-based), if any.
    pub fn epoch(&self) -> Option<usize> {
        self.best.map(|(e, _)| e)
    }

    /// Epochs observed since the last improvement.
    pub fn stale(&self) -> usize {
        self.stale
    }

    /// Starts counting towards `patience` afresh (a new stage), keeping the best epoch.
    pub fn reset_patience(&mut self) {
        self.stale = 0;
    }

    /// Whether `patience` epochs have passed without an improvement.
    pub fn out_of_patience(&self) -> bool {
        self.rule.patience.is_some_and(|p| self.stale >= p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: usize, val_accuracy: f64, val_loss: f64) -> EpochRecord {
        EpochRecord { epoch, val_accuracy, val_loss, ..EpochRecord::default() }
    }

    #[test]
    fn ties_and_gains_within_min_delta_keep_the_earlier_epoch() {
        let acc = [0.5, 0.6, 0.6, 0.605, f64::NAN, 0.61, 0.6201];
        let loss = [2.0, 1.0, 1.0, 0.995, f64::NAN, 0.99, 0.985];
        let records: Vec<_> =
            acc.iter().zip(loss).enumerate().map(|(i, (a, l))| rec(i + 1, *a, l)).collect();
        let table = [
            // (metric, min_delta, best epoch)
            (Metric::ValAccuracy, 0.0, 7),
            (Metric::ValAccuracy, 0.01, 7),
            (Metric::ValAccuracy, 0.025, 2),
            (Metric::ValLoss, 0.0, 7),
            (Metric::ValLoss, 0.03, 2),
            (Metric::ValLoss, 0.008, 6),
        ];
        for (metric, min_delta, want) in table {
            let rule = EarlyStopping { metric, min_delta, patience: None };
            let got = rule.best(&records).map(|r| r.epoch);
            assert_eq!(got, Some(want), "{metric:?} with min_delta {min_delta}");
            // Ties: of epochs 2 and 3 (equal), the first is kept.
            assert_eq!(rule.best(&records[..3]).map(|r| r.epoch), Some(2), "{metric:?}");
        }
    }

    #[test]
    fn a_non_finite_metric_never_selects_an_epoch_and_patience_counts_it() {
        let rule = EarlyStopping { patience: Some(2), ..EarlyStopping::default() };
        let mut b = BestEpoch::new(&rule);
        assert!(!b.observe(&rec(1, f64::NAN, 0.0)));
        assert_eq!(b.epoch(), None);
        assert!(b.observe(&rec(2, 0.3, 0.0)));
        assert!(!b.observe(&rec(3, 0.3, 0.0)));
        assert!(!b.out_of_patience());
        assert!(!b.observe(&rec(4, f64::INFINITY, 0.0)));
        assert!(b.out_of_patience());
        b.reset_patience();
        assert!(!b.out_of_patience());
        assert_eq!(b.epoch(), Some(2));
    }
}
