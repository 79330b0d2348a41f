//! Our metrics against torchmetrics and scikit-learn, computed by those libraries in the venv on
//! the same saved probabilities and labels.

use std::process::Command;

use rand::{Rng, SeedableRng};

fn case(n: usize, k: usize, seed: u64, sharpness: f64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut logits = Vec::with_capacity(n * k);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let label = rng.gen_range(0..k);
        for j in 0..k {
            let bump = if j == label { rng.gen_range(0.0..2.0) } else { 0.0 };
            logits.push(((rng.gen_range(-1.0..1.0) + bump) * sharpness) as f32);
        }
        labels.push(label);
    }
    (fer_metrics::softmax(&logits, k, 1.0), labels)
}

fn reference(probs: &[f32], labels: &[usize], k: usize) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let pb: Vec<u8> = probs.iter().flat_map(|x| x.to_le_bytes()).collect();
    let lb: Vec<u8> = labels.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect();
    std::fs::write(dir.path().join("probs.f32"), pb).unwrap();
    std::fs::write(dir.path().join("labels.i64"), lb).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/reference_metrics.py");
    let out = Command::new(concat!(env!("FER_REPO_ROOT"), "/.venv/bin/python"))
        .args([script, dir.path().to_str().unwrap(), &labels.len().to_string(), &k.to_string()])
        .output()
        .expect("venv python (run scripts/setup.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn metrics_equal_torchmetrics_and_scikit_learn() {
    // Over-confident, moderate and under-confident models, 7 and 8 classes.
    for (seed, k, sharp) in [(1, 7, 4.0), (2, 7, 1.0), (3, 8, 0.3), (4, 7, 10.0)] {
        let (p, l) = case(2000, k, seed, sharp);
        let r = reference(&p, &l, k);
        let close = |name: &str, ours: f64| {
            let want = r[name].as_f64().unwrap();
            assert!(
                (ours - want).abs() <= 1e-6,
                "{name} (seed {seed}): ours {ours}, reference {want}"
            );
        };
        close("ece", fer_metrics::ece(&p, &l, k, 15).unwrap());
        close("mce", fer_metrics::mce(&p, &l, k, 15).unwrap());
        close("macro_f1", fer_metrics::macro_f1(&p, &l, k).unwrap());
        close("accuracy", fer_metrics::accuracy(&p, &l, k).unwrap());
        close("balanced_accuracy", fer_metrics::balanced_accuracy(&p, &l, k).unwrap());
        close("nll", fer_metrics::nll(&p, &l, k).unwrap());
        close("brier", fer_metrics::brier(&p, &l, k).unwrap());
    }
}

#[test]
fn a_class_never_predicted_counts_as_zero_f1() {
    // Three classes, class 2 never predicted: sklearn's macro-F1 with labels=range(3).
    let p = [0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1];
    let l = [0, 1, 2, 1];
    let r = reference(&p, &l, 3);
    let ours = fer_metrics::macro_f1(&p, &l, 3).unwrap();
    assert!((ours - r["macro_f1"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn bad_inputs_are_errors() {
    assert_eq!(fer_metrics::accuracy(&[], &[], 3), Err(fer_metrics::Error::Empty));
    assert!(matches!(
        fer_metrics::ece(&[0.5, 0.5], &[2], 2, 15),
        Err(fer_metrics::Error::Label { .. })
    ));
    assert!(matches!(
        fer_metrics::nll(&[0.5, 0.5, 1.0], &[0], 2),
        Err(fer_metrics::Error::Size { .. })
    ));
}

#[test]
fn bootstrap_interval_brackets_the_point_estimate() {
    let (p, l) = case(500, 7, 9, 2.0);
    let acc = fer_metrics::accuracy(&p, &l, 7).unwrap();
    let (lo, hi) = fer_metrics::bootstrap_ci(&p, &l, 7, 200, 0, fer_metrics::accuracy).unwrap();
    assert!(lo < acc && acc < hi && hi - lo < 0.15, "{lo} {acc} {hi}");
}

#[test]
fn adaptive_ece_is_zero_for_a_perfectly_calibrated_bin() {
    // Two samples at confidence 0.5, one right and one wrong: calibrated.
    let p = [0.5, 0.5, 0.5, 0.5];
    assert!(fer_metrics::adaptive_ece(&p, &[0, 1], 2, 1).unwrap().abs() < 1e-12);
}
