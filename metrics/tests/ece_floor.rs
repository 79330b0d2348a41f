//! `ece_floor`: the ECE a perfectly calibrated model would measure, against the exact binomial
//! expectation for one bin, and its limits.

use fer_metrics::ece_floor;

/// `E|X/n − 1/2|` and its standard deviation for `X ~ Binomial(n, 1/2)`, summed over the pmf.
fn exact_half(n: usize) -> (f64, f64) {
    let mut log_pmf = vec![0f64; n + 1];
    let mut log_c = 0f64; // log C(n, 0)
    for (x, slot) in log_pmf.iter_mut().enumerate() {
        if x > 0 {
            log_c += ((n - x + 1) as f64).ln() - (x as f64).ln();
        }
        *slot = log_c - n as f64 * 2f64.ln();
    }
    let (mut m1, mut m2) = (0.0, 0.0);
    for (x, lp) in log_pmf.iter().enumerate() {
        let d = (x as f64 / n as f64 - 0.5).abs();
        m1 += lp.exp() * d;
        m2 += lp.exp() * d * d;
    }
    (m1, (m2 - m1 * m1).sqrt())
}

#[test]
fn one_bin_at_one_half_matches_the_binomial_expectation() {
    let n = 400;
    // Two classes at 0.5 each: the top-label confidence of every sample is 0.5 (one bin).
    let probs = vec![0.5f32; 2 * n];
    let (mean, sd) = ece_floor(&probs, 2, 15, 4000, 7).unwrap();
    let (em, esd) = exact_half(n);
    // 4,000 draws: the simulated mean is within about 0.0005 of the exact one.
    assert!((mean - em).abs() < 0.0015, "{mean} vs exact {em}");
    assert!((sd - esd).abs() < 0.0015, "{sd} vs exact {esd}");
    assert!((em - 0.0199).abs() < 0.0005, "the exact value itself: {em}");
}

#[test]
fn certain_predictions_have_no_floor_and_more_samples_lower_it() {
    // Confidence 1: every simulated outcome is correct, the ECE is 0 every time.
    let sure: Vec<f32> = (0..300).flat_map(|_| [1.0f32, 0.0, 0.0]).collect();
    assert_eq!(ece_floor(&sure, 3, 15, 50, 1).unwrap(), (0.0, 0.0));
    // Spread confidences; four copies of the set: the floor roughly halves (1/sqrt(4)).
    let one: Vec<f32> = (0..500)
        .flat_map(|i| {
            let c = 0.4 + 0.55 * (i as f32 / 500.0);
            [c, 1.0 - c]
        })
        .collect();
    let four: Vec<f32> = one.iter().cycle().take(one.len() * 4).copied().collect();
    let (a, _) = ece_floor(&one, 2, 15, 1000, 3).unwrap();
    let (b, _) = ece_floor(&four, 2, 15, 1000, 3).unwrap();
    assert!((b / a - 0.5).abs() < 0.1, "{a} then {b}");
    // Seeded: the same seed repeats, another differs.
    assert_eq!(ece_floor(&one, 2, 15, 20, 9).unwrap(), ece_floor(&one, 2, 15, 20, 9).unwrap());
    assert_ne!(ece_floor(&one, 2, 15, 20, 9).unwrap(), ece_floor(&one, 2, 15, 20, 10).unwrap());
    assert!(ece_floor(&[], 2, 15, 20, 9).is_err());
    assert!(ece_floor(&[0.5, 0.5, 0.1], 2, 15, 20, 9).is_err());
}
