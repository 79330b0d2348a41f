//! Classification and calibration metrics on plain slices, shared by the trainer (per-epoch
//! validation) and `fer-infer eval`, so both report the same numbers.
//!
//! Inputs are row-major probabilities `[N, K]` (each row sums to 1) and labels in `0..K`.
//! Definitions follow scikit-learn (macro-F1: unweighted mean over classes, a class with no
//! predictions and no labels counts as F1 0) and torchmetrics' `MulticlassCalibrationError`
//! (top-label confidence, equal-width bins over `[0, 1]`).
//!
//! [`run`] is the typed record of a training run (`metrics.jsonl`, the best-epoch rule, mean ±
//! std over repetitions), written by the trainer and read by `fer-infer report`.

mod calibration;
mod classification;
pub mod plot;
pub mod run;

pub use calibration::{
    Bin, PredictedClass, adaptive_ece, brier, ece, ece_floor, mce, nll,
    predicted_class_calibration, reliability_bins,
};
pub use classification::{
    ClassScores, accuracy, balanced_accuracy, confusion_matrix, macro_f1, per_class,
};
pub use run::{EarlyStopping, EpochRecord, MeanStd};

/// Inputs that cannot be scored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// Probabilities and labels disagree in count, or rows are not `K` wide.
    #[error("{probs} probabilities for {labels} labels with {classes} classes: sizes do not match")]
    Size {
        /// Length of the probability slice.
        probs: usize,
        /// Number of labels.
        labels: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A label outside `0..K`.
    #[error("label {label} at index {index} is outside 0..{classes}")]
    Label {
        /// The label.
        label: usize,
        /// Its position.
        index: usize,
        /// Number of classes.
        classes: usize,
    },
    /// No samples.
    #[error("no samples to score")]
    Empty,
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks shapes and labels; returns the number of samples.
pub(crate) fn check(probs: &[f32], labels: &[usize], k: usize) -> Result<usize> {
    let n = labels.len();
    if n == 0 {
        return Err(Error::Empty);
    }
    if k == 0 || probs.len() != n * k {
        return Err(Error::Size { probs: probs.len(), labels: n, classes: k });
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= k) {
        return Err(Error::Label { label, index, classes: k });
    }
    Ok(n)
}

/// Index of the largest value of a row (the first on ties, as `argmax`).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Row-wise softmax of `logits / temperature`, in f64 for stability, returned as f32.
pub fn softmax(logits: &[f32], k: usize, temperature: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(k) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b)) as f64;
        let e: Vec<f64> = row.iter().map(|x| ((*x as f64 - m) / temperature).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|x| (x / s) as f32));
    }
    out
}

/// 95% bootstrap confidence interval (2.5th and 97.5th percentiles) of `metric` over `rounds`
/// resamples of the samples with replacement, seeded.
pub fn bootstrap_ci(
    probs: &[f32],
    labels: &[usize],
    k: usize,
    rounds: usize,
    seed: u64,
    metric: impl Fn(&[f32], &[usize], usize) -> Result<f64>,
) -> Result<(f64, f64)> {
    use rand::{Rng, SeedableRng};
    let n = check(probs, labels, k)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(rounds);
    let (mut p, mut l) = (Vec::with_capacity(n * k), Vec::with_capacity(n));
    for _ in 0..rounds.max(1) {
        p.clear();
        l.clear();
        for _ in 0..n {
            let i = rng.gen_range(0..n);
            p.extend_from_slice(&probs[i * k..(i + 1) * k]);
            l.push(labels[i]);
        }
        values.push(metric(&p, &l, k)?);
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.025), at(0.975)))
}
