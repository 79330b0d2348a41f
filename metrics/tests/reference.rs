//! Our metrics against torchmetrics and scikit-learn. Their answers on these exact
//! probabilities and labels are committed in `tests/golden/metrics.json`, computed by
//! `tests/py/reference_metrics.py` (torchmetrics' calibration error, scikit-learn's F1 and
//! accuracies, torch's NLL) through `scripts/golden/make_golden.sh`, so these tests need no
//! Python. The golden keeps the SHA-256 of each case's inputs, so a change to the generator
//! below fails until the goldens are regenerated.

use fer_test_support::{assert_golden_inputs, dump_golden_input, golden_json};
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

/// The generated cases (seed, classes, sharpness): over-confident, moderate and
/// under-confident models, 7 and 8 classes; 2000 samples each.
const CASES: [(u64, usize, f64); 4] = [(1, 7, 4.0), (2, 7, 1.0), (3, 8, 0.3), (4, 7, 10.0)];

/// Three classes, class 2 never predicted.
const NEVER_PREDICTED: ([f32; 12], [usize; 4]) =
    ([0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1], [0, 1, 2, 1]);

/// `probs.f32` (`[N, K]`) and `labels.i64` (`[N]`), little-endian, as
/// `tests/py/reference_metrics.py` reads them.
fn input_files(probs: &[f32], labels: &[usize]) -> [Vec<u8>; 2] {
    [
        probs.iter().flat_map(|x| x.to_le_bytes()).collect(),
        labels.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect(),
    ]
}

/// The reference's answers for the case `name`, after checking that the golden was computed
/// on these inputs.
fn reference(name: &str, probs: &[f32], labels: &[usize]) -> serde_json::Value {
    let golden = golden_json(env!("CARGO_MANIFEST_DIR"), "metrics.json")[name].clone();
    assert!(
        golden.is_object(),
        "metrics.json has no case `{name}` (scripts/golden/make_golden.sh)"
    );
    let [pb, lb] = input_files(probs, labels);
    assert_golden_inputs(name, &golden, &[&pb, &lb]);
    golden
}

/// The first step of `scripts/golden/make_golden.sh`: with `FER_GOLDEN_INPUTS` set, every
/// case's inputs are written there for the reference script. Otherwise it does nothing.
#[test]
fn golden_inputs_are_written_when_asked() {
    let mut all: Vec<(String, usize, Vec<f32>, Vec<usize>)> = CASES
        .iter()
        .map(|&(seed, k, sharp)| {
            let (p, l) = case(2000, k, seed, sharp);
            (format!("seed{seed}"), k, p, l)
        })
        .collect();
    let (p, l) = NEVER_PREDICTED;
    all.push(("never_predicted".into(), 3, p.to_vec(), l.to_vec()));
    for (name, k, p, l) in all {
        let [pb, lb] = input_files(&p, &l);
        dump_golden_input(&format!("metrics/{name}/probs.f32"), &pb);
        dump_golden_input(&format!("metrics/{name}/labels.i64"), &lb);
        dump_golden_input(&format!("metrics/{name}/shape"), format!("{} {k}", l.len()).as_bytes());
    }
}

#[test]
fn metrics_equal_torchmetrics_and_scikit_learn() {
    for (seed, k, sharp) in CASES {
        let (p, l) = case(2000, k, seed, sharp);
        let r = reference(&format!("seed{seed}"), &p, &l);
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
    // sklearn's macro-F1 with labels=range(3).
    let (p, l) = NEVER_PREDICTED;
    let r = reference("never_predicted", &p, &l);
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

#[test]
fn calibration_per_predicted_class_counts_confidence_and_accuracy_by_top_1() {
    // Worked by hand: class 0 is predicted twice (0.7 right, 0.6 wrong), class 1 once
    // (0.8 right), class 2 once (0.6 wrong).
    let p = [0.7, 0.2, 0.1, 0.6, 0.3, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6];
    let c = fer_metrics::predicted_class_calibration(&p, &[0, 1, 1, 0], 3).unwrap();
    let want = [(2, 0.65, 0.5), (1, 0.8, 1.0), (1, 0.6, 0.0)];
    for (j, (got, (n, conf, acc))) in c.iter().zip(want).enumerate() {
        assert_eq!(got.count, n, "class {j}");
        assert!((got.confidence - conf).abs() < 1e-6, "class {j}: {}", got.confidence);
        assert!((got.accuracy - acc).abs() < 1e-12, "class {j}: {}", got.accuracy);
    }
    // On a larger case the accuracy when predicted is scikit-learn's precision, the counts
    // are the confusion matrix's column sums, and a class never predicted reports zeros.
    let (p, l) = case(400, 5, 4, 1.5);
    let c = fer_metrics::predicted_class_calibration(&p, &l, 5).unwrap();
    let per = fer_metrics::per_class(&p, &l, 5).unwrap();
    let cm = fer_metrics::confusion_matrix(&p, &l, 5).unwrap();
    for j in 0..5 {
        assert!((c[j].accuracy - per[j].precision).abs() < 1e-12, "class {j}");
        assert_eq!(c[j].count, (0..5).map(|r| cm[r][j]).sum::<u64>(), "class {j}");
    }
    let (p, l) = NEVER_PREDICTED;
    let c = fer_metrics::predicted_class_calibration(&p, &l, 3).unwrap();
    assert!(c.iter().any(|x| x.count == 0 && x.confidence == 0.0 && x.accuracy == 0.0));
}
