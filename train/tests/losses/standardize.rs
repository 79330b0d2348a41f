//! `standardize = true` on a response term (logit standardisation, Sun et al. 2024).

use fer_train::losses::{LossInputs, LossTerm, Target, TeacherOutputs, total_loss};
use tch::{Kind, Tensor};

use super::randn;

/// The stage loss of `term` for student logits `s`, teachers `a` and `b`, labels `y`.
fn stage_loss(term: &LossTerm, s: &Tensor, a: &Tensor, b: &Tensor, y: &Tensor) -> f64 {
    let teachers = [
        TeacherOutputs { name: "a", logits: Some(a), embedding: None, weight: None },
        TeacherOutputs { name: "b", logits: Some(b), embedding: None, weight: None },
    ];
    let inputs = LossInputs {
        student_logits: s,
        student_embedding: None,
        target: Some(Target::Hard(y)),
        class_weights: None,
        teachers: &teachers,
    };
    total_loss(std::slice::from_ref(term), &inputs).unwrap().0.double_value(&[])
}

fn terms(standardize: bool) -> [LossTerm; 3] {
    let names = || vec!["a".to_string(), "b".to_string()];
    [
        LossTerm::Kd { weight: 1.0, temperature: 2.0, teacher: Some("a".into()), standardize },
        LossTerm::KdEnsemble { weight: 1.0, temperature: 2.0, teachers: names(), standardize },
        LossTerm::Dkd {
            weight: 1.0,
            temperature: 2.0,
            alpha: 1.0,
            beta: 8.0,
            teachers: names(),
            standardize,
        },
    ]
}

/// What the method is for: the term compares the shapes of the distributions, whatever the
/// scale and offset of each network's logits; without it, the scale matters.
#[test]
fn a_standardized_term_ignores_the_scale_and_offset_of_each_networks_logits() {
    let (n, k) = (6, 7);
    let s = randn(70, &[n, k]).to_kind(Kind::Double);
    let (a, b) =
        (randn(71, &[n, k]).to_kind(Kind::Double), randn(72, &[n, k]).to_kind(Kind::Double));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 6]);
    for (on, off) in terms(true).iter().zip(&terms(false)) {
        let base = stage_loss(on, &s, &a, &b, &y);
        let moved = stage_loss(on, &(&s * 5.0 + 3.0), &(&a * 0.25 - 2.0), &(&b * 3.0), &y);
        assert!((moved - base).abs() <= 1e-9 * base.abs(), "{}: {moved} vs {base}", on.kind_name());
        let plain = stage_loss(off, &s, &a, &b, &y);
        let plain_moved = stage_loss(off, &(&s * 5.0 + 3.0), &(&a * 0.25 - 2.0), &(&b * 3.0), &y);
        assert!((plain_moved - plain).abs() > 1e-3 * plain.abs(), "{}", off.kind_name());
    }
}

#[test]
fn standardize_is_written_only_when_set_and_gives_gradient_to_the_student_only() {
    let on = serde_json::json!({"kind": "kd", "weight": 1, "temperature": 2, "standardize": true});
    let term: LossTerm = serde_json::from_value(on).unwrap();
    assert!(matches!(term, LossTerm::Kd { standardize: true, .. }));
    assert!(serde_json::to_string(&term).unwrap().contains("\"standardize\":true"));
    let off = &terms(false)[0];
    assert!(!serde_json::to_string(off).unwrap().contains("standardize"));

    let (s, a) = (randn(73, &[4, 5]).set_requires_grad(true), randn(74, &[4, 5]));
    let a = a.set_requires_grad(true);
    let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
    let term = &terms(true)[0];
    let teachers = [TeacherOutputs { name: "a", logits: Some(&a), embedding: None, weight: None }];
    let inputs = LossInputs {
        student_logits: &s,
        student_embedding: None,
        target: Some(Target::Hard(&y)),
        class_weights: None,
        teachers: &teachers,
    };
    total_loss(std::slice::from_ref(term), &inputs).unwrap().0.backward();
    assert!(s.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    assert!(!a.grad().defined(), "gradient reached the teacher");
    // A constant row (standard deviation 0) gives finite values and gradients.
    let flat = Tensor::zeros([2, 5], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let t = randn(75, &[2, 5]);
    let teachers = [TeacherOutputs { name: "a", logits: Some(&t), embedding: None, weight: None }];
    let y = Tensor::from_slice(&[0i64, 1]);
    let inputs = LossInputs {
        student_logits: &flat,
        target: Some(Target::Hard(&y)),
        teachers: &teachers,
        ..inputs
    };
    let loss = total_loss(std::slice::from_ref(term), &inputs).unwrap().0;
    loss.backward();
    assert!(loss.double_value(&[]).is_finite());
    assert_eq!(flat.grad().isfinite().all().int64_value(&[]), 1);
}
