//! Focal loss (`cross_entropy` with `focal_gamma`): against the formula written out per sample
//! in f64, and cross-entropy at γ = 0.

use fer_train::losses::{LossInputs, LossTerm, Target, cross_entropy, focal_loss, total_loss};
use tch::{Kind, Tensor};

use super::randn;

/// `Σ_k q_k (1 − p_k)^γ (−log p_k)` for one row, from plain f64 arithmetic.
fn by_hand(logits: &[f64], q: &[f64], gamma: f64) -> f64 {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
    logits
        .iter()
        .zip(q)
        .map(|(l, q)| {
            let p = (l - m).exp() / z;
            q * (1.0 - p).powf(gamma) * -p.ln()
        })
        .sum()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let n = t.size()[0];
    (0..n).map(|i| Vec::<f64>::try_from(t.get(i)).unwrap()).collect()
}

#[test]
fn focal_loss_is_the_formula_and_cross_entropy_at_gamma_zero() {
    let (n, k) = (6, 7);
    let x = (randn(70, &[n, k]) * 3.0).to_kind(Kind::Double);
    let labels = Tensor::from_slice(&[0i64, 6, 2, 3, 3, 5]);
    let soft = (randn(71, &[n, k]) * 2.0).softmax(-1, Kind::Double);
    let eps = 0.1;
    for gamma in [1.0, 2.0, 3.0] {
        // Hard labels with smoothing: q = (1 − ε)·onehot + ε/K.
        let mut expected = 0.0;
        for (i, row) in rows(&x).iter().enumerate() {
            let y = labels.int64_value(&[i as i64]) as usize;
            let q: Vec<f64> =
                (0..k as usize).map(|c| (1.0 - eps) * f64::from(c == y) + eps / k as f64).collect();
            expected += by_hand(row, &q, gamma);
        }
        let got = focal_loss(&x, Target::Hard(&labels), gamma, eps).unwrap().double_value(&[]);
        assert!(
            (got - expected / n as f64).abs() < 1e-12,
            "γ {gamma}: {got} vs {}",
            expected / n as f64
        );
        // Soft targets, no smoothing.
        let expected: f64 =
            rows(&x).iter().zip(rows(&soft)).map(|(r, q)| by_hand(r, &q, gamma)).sum::<f64>()
                / n as f64;
        let got = focal_loss(&x, Target::Soft(&soft), gamma, 0.0).unwrap().double_value(&[]);
        assert!((got - expected).abs() < 1e-12, "γ {gamma} soft: {got} vs {expected}");
    }
    for (target, eps) in [(Target::Hard(&labels), 0.1), (Target::Soft(&soft), 0.0)] {
        let f = focal_loss(&x, target, 0.0, eps).unwrap().double_value(&[]);
        let c = cross_entropy(&x, target, eps, None).unwrap().double_value(&[]);
        assert!((f - c).abs() < 1e-12, "{f} vs {c}");
    }
    // γ > 0 weighs confident rows less than cross-entropy does, never more.
    let f = focal_loss(&x, Target::Hard(&labels), 3.0, 0.0).unwrap().double_value(&[]);
    let c = cross_entropy(&x, Target::Hard(&labels), 0.0, None).unwrap().double_value(&[]);
    assert!(f < c, "{f} vs {c}");
}

#[test]
fn focal_loss_has_a_finite_gradient_at_certainty_and_refuses_bad_gamma() {
    // One sample the model is sure of (p_y → 1), one it gets wrong.
    let x = Tensor::from_slice(&[60.0f32, 0.0, 0.0, 0.0, 0.0, 30.0])
        .view([2, 3])
        .set_requires_grad(true);
    let y = Tensor::from_slice(&[0i64, 0]);
    let loss = focal_loss(&x, Target::Hard(&y), 3.0, 0.0).unwrap();
    loss.backward();
    let g = x.grad();
    assert!(bool::try_from(g.isfinite().all()).unwrap(), "{g}");
    assert!(g.get(0).abs().max().double_value(&[]) < 1e-6, "nothing left to learn on the sure one");
    assert!(g.get(1).abs().max().double_value(&[]) > 0.1, "the wrong one still teaches");
    for gamma in [0.5, -1.0, f64::NAN] {
        let err = focal_loss(&x, Target::Hard(&y), gamma, 0.0).unwrap_err().to_string();
        assert!(err.contains("gamma must be 0 or a finite number >= 1"), "{err}");
    }
    // Through a stage's loss: the term's focal_gamma, and class weights refused with it.
    let x = x.detach();
    let term = |g| LossTerm::CrossEntropy { weight: 1.0, label_smoothing: 0.0, focal_gamma: g };
    assert!(term(0.5).validate().iter().any(|p| p.starts_with("focal_gamma:")));
    let w = Tensor::ones([3], (Kind::Float, tch::Device::Cpu));
    let inputs = |cw| LossInputs {
        student_logits: &x,
        student_embedding: None,
        target: Some(Target::Hard(&y)),
        class_weights: cw,
        teachers: &[],
    };
    let (total, _) = total_loss(&[term(3.0)], &inputs(None)).unwrap();
    let direct = focal_loss(&x, Target::Hard(&y), 3.0, 0.0).unwrap();
    assert_eq!(total.double_value(&[]), direct.double_value(&[]));
    let err = total_loss(&[term(3.0)], &inputs(Some(&w))).unwrap_err().to_string();
    assert!(err.contains("focal_gamma cannot be combined with class weights"), "{err}");
}
