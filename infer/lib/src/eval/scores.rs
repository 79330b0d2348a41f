//! Every number `eval` reports for one set of probabilities, computed with `fer_metrics`
//! (the same code the trainer's validation uses).

use fer_metrics::Bin;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Equal-width bins of the ECE, MCE and the reliability diagram.
pub const ECE_BINS: usize = 15;

/// Simulated outcomes behind [`MetricSet::ece_floor`].
pub const ECE_FLOOR_DRAWS: usize = 500;

/// Precision, recall, F1 and support of one class, and how sure the model was when it
/// predicted the class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    /// The class (the model's label).
    pub class: String,
    /// TP / (TP + FP), 0 when nothing was predicted as the class.
    pub precision: f64,
    /// TP / (TP + FN), 0 when the class has no samples.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Samples of the class.
    pub support: u64,
    /// Samples predicted as the class (top-1).
    #[serde(default)]
    pub predicted: u64,
    /// Their mean top-label confidence (0 when none): against `precision`, the calibration of
    /// the predictions of this class ([`fer_metrics::predicted_class_calibration`]).
    #[serde(default)]
    pub confidence: f64,
}

/// 95% bootstrap confidence intervals (percentile method, samples resampled with replacement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    /// Resamples drawn.
    pub rounds: usize,
    /// Seed of the resampling.
    pub seed: u64,
    /// `[2.5th, 97.5th]` percentiles of the accuracy.
    pub accuracy: [f64; 2],
    /// Same for the macro-F1.
    pub macro_f1: [f64; 2],
    /// Same for the ECE.
    pub ece: [f64; 2],
}

/// Classification and calibration metrics at one temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSet {
    /// The softmax temperature the probabilities were computed with.
    pub temperature: f64,
    /// Samples scored.
    pub samples: usize,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Mean recall over classes with samples (scikit-learn `balanced_accuracy_score`).
    pub balanced_accuracy: f64,
    /// Unweighted mean F1 over the evaluated classes.
    pub macro_f1: f64,
    /// Per-class precision, recall, F1, support.
    pub per_class: Vec<ClassRow>,
    /// `confusion_matrix[true][predicted]` counts.
    pub confusion_matrix: Vec<Vec<u64>>,
    /// Expected calibration error: top-label, [`ECE_BINS`] equal-width bins, L1.
    pub ece: f64,
    /// ECE with [`ECE_BINS`] equal-mass bins.
    pub adaptive_ece: f64,
    /// Largest per-bin gap of the equal-width bins.
    pub mce: f64,
    /// Mean and standard deviation of the ECE a perfectly calibrated model with these
    /// confidences would measure on these samples ([`fer_metrics::ece_floor`],
    /// [`ECE_FLOOR_DRAWS`] draws): an ECE within about two standard deviations of the mean
    /// cannot be told from perfect calibration here. `[0, 0]` in reports written before it.
    #[serde(default)]
    pub ece_floor: [f64; 2],
    /// Mean negative log-likelihood (natural log).
    pub nll: f64,
    /// Multiclass Brier score `mean Σ_k (p_k − y_k)²`, on the scale `[0, 2]`.
    pub brier: f64,
    /// The equal-width bins (reliability diagram).
    pub reliability: Vec<Bin>,
    /// Bootstrap intervals, when asked for.
    pub ci: Option<Intervals>,
}

impl MetricSet {
    /// Scores `probs` (`[N, K]`, rows summing to 1) against `labels` for the `classes`
    /// (`K` names); `bootstrap` resamples (0: no intervals) seeded by `seed`.
    pub fn compute(
        probs: &[f32],
        labels: &[usize],
        classes: &[String],
        temperature: f64,
        bootstrap: usize,
        seed: u64,
    ) -> Result<Self> {
        let k = classes.len();
        let m = |what: &str| {
            let what = what.to_string();
            move |source| Error::Metrics { what, source }
        };
        let per = fer_metrics::per_class(probs, labels, k).map_err(m("per-class scores"))?;
        let when_predicted = fer_metrics::predicted_class_calibration(probs, labels, k)
            .map_err(m("calibration per predicted class"))?;
        let per_class = per
            .into_iter()
            .zip(when_predicted)
            .zip(classes)
            .map(|((s, w), c)| ClassRow {
                class: c.clone(),
                precision: s.precision,
                recall: s.recall,
                f1: s.f1,
                support: s.support,
                predicted: w.count,
                confidence: w.confidence,
            })
            .collect();
        let ci = if bootstrap == 0 {
            None
        } else {
            let ci = |f: fn(&[f32], &[usize], usize) -> fer_metrics::Result<f64>, name: &str| {
                fer_metrics::bootstrap_ci(probs, labels, k, bootstrap, seed, f)
                    .map(|(a, b)| [a, b])
                    .map_err(m(name))
            };
            Some(Intervals {
                rounds: bootstrap,
                seed,
                accuracy: ci(fer_metrics::accuracy, "bootstrap accuracy")?,
                macro_f1: ci(fer_metrics::macro_f1, "bootstrap macro-F1")?,
                ece: ci(|p, l, k| fer_metrics::ece(p, l, k, ECE_BINS), "bootstrap ECE")?,
            })
        };
        Ok(MetricSet {
            temperature,
            samples: labels.len(),
            accuracy: fer_metrics::accuracy(probs, labels, k).map_err(m("accuracy"))?,
            balanced_accuracy: fer_metrics::balanced_accuracy(probs, labels, k)
                .map_err(m("balanced accuracy"))?,
            macro_f1: fer_metrics::macro_f1(probs, labels, k).map_err(m("macro-F1"))?,
            per_class,
            confusion_matrix: fer_metrics::confusion_matrix(probs, labels, k)
                .map_err(m("confusion matrix"))?,
            ece: fer_metrics::ece(probs, labels, k, ECE_BINS).map_err(m("ECE"))?,
            adaptive_ece: fer_metrics::adaptive_ece(probs, labels, k, ECE_BINS)
                .map_err(m("adaptive ECE"))?,
            mce: fer_metrics::mce(probs, labels, k, ECE_BINS).map_err(m("MCE"))?,
            ece_floor: fer_metrics::ece_floor(probs, k, ECE_BINS, ECE_FLOOR_DRAWS, seed)
                .map(|(mean, sd)| [mean, sd])
                .map_err(m("ECE floor"))?,
            nll: fer_metrics::nll(probs, labels, k).map_err(m("NLL"))?,
            brier: fer_metrics::brier(probs, labels, k).map_err(m("Brier score"))?,
            reliability: fer_metrics::reliability_bins(probs, labels, k, ECE_BINS)
                .map_err(m("reliability bins"))?,
            ci,
        })
    }
}
