//! Mean ± sample standard deviation, the one summary of repetitions (seeds, folds) that
//! `fer-train run --seeds` (`summary.json`) and `fer-infer report` print.

use serde::{Deserialize, Serialize};

/// Mean and sample standard deviation (`n − 1` in the denominator; 0 for one value) of `n`
/// values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
    /// How many values were summarised (0 in summaries written before it was recorded).
    #[serde(default)]
    pub n: usize,
}

impl MeanStd {
    /// Of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<MeanStd> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(MeanStd { mean, std: var.sqrt(), n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_deviation_is_the_sample_one() {
        let s = MeanStd::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(MeanStd::of(&[5.0]).unwrap().std, 0.0);
        assert!(MeanStd::of(&[]).is_none());
    }
}
