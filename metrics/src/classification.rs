//! Accuracy, balanced accuracy, per-class precision/recall/F1 and the confusion matrix.

use serde::{Deserialize, Serialize};

use crate::{Result, argmax, check};

/// `matrix[true][predicted]` counts.
pub fn confusion_matrix(probs: &[f32], labels: &[usize], k: usize) -> Result<Vec<Vec<u64>>> {
    check(probs, labels, k)?;
    let mut m = vec![vec![0u64; k]; k];
    for (row, &l) in probs.chunks(k).zip(labels) {
        m[l][argmax(row)] += 1;
    }
    Ok(m)
}

/// Fraction of samples whose top-1 prediction is the label.
pub fn accuracy(probs: &[f32], labels: &[usize], k: usize) -> Result<f64> {
    let m = confusion_matrix(probs, labels, k)?;
    let right: u64 = (0..k).map(|i| m[i][i]).sum();
    Ok(right as f64 / labels.len() as f64)
}

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// TP / (TP + FP); 0 when nothing was predicted as this class.
    pub precision: f64,
    /// TP / (TP + FN); 0 when the class has no samples.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// Number of samples whose label is this class.
    pub support: u64,
}

/// Per-class scores, scikit-learn's `precision_recall_fscore_support(zero_division=0)`.
pub fn per_class(probs: &[f32], labels: &[usize], k: usize) -> Result<Vec<ClassScores>> {
    let m = confusion_matrix(probs, labels, k)?;
    Ok((0..k)
        .map(|c| {
            let tp = m[c][c] as f64;
            let support: u64 = m[c].iter().sum();
            let predicted: u64 = (0..k).map(|r| m[r][c]).sum();
            let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
            let precision = div(tp, predicted as f64);
            let recall = div(tp, support as f64);
            let f1 = div(2.0 * precision * recall, precision + recall);
            ClassScores { precision, recall, f1, support }
        })
        .collect())
}

/// Unweighted mean of the per-class F1 over all `k` classes (`f1_score(average="macro")`
/// with `labels=range(k)`).
pub fn macro_f1(probs: &[f32], labels: &[usize], k: usize) -> Result<f64> {
    let s = per_class(probs, labels, k)?;
    Ok(s.iter().map(|c| c.f1).sum::<f64>() / k as f64)
}

/// Mean recall over the classes that have samples (`balanced_accuracy_score`).
pub fn balanced_accuracy(probs: &[f32], labels: &[usize], k: usize) -> Result<f64> {
    let s = per_class(probs, labels, k)?;
    let present: Vec<_> = s.iter().filter(|c| c.support > 0).collect();
    Ok(present.iter().map(|c| c.recall).sum::<f64>() / present.len() as f64)
}
