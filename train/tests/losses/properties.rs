//! Properties of the losses (no reference implementation needed) and of `total_loss`.

use fer_train::losses::{
    LossInputs, LossTerm, Target, TeacherOutputs, cross_entropy, kd_ensemble_loss, kd_loss,
    rkd_angle, rkd_distance, total_loss,
};
use tch::{Kind, Tensor};

use super::{randn, rel_diff};

/// Value and gradient with respect to `x` of `f(x)`.
fn value_grad(x: &Tensor, f: impl FnOnce(&Tensor) -> Tensor) -> (f64, Tensor) {
    let x = x.detach().set_requires_grad(true);
    let loss = f(&x);
    loss.backward();
    (loss.double_value(&[]), x.grad())
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn an_ensemble_of_one_teacher_or_of_copies_is_plain_kd() {
    let (s, t) = (randn(40, &[6, 7]) * 3.0, randn(41, &[6, 7]) * 5.0);
    let plain = kd_loss(&s, &t, 4.0).unwrap().double_value(&[]);
    for copies in [1, 3] {
        let ts: Vec<&Tensor> = std::iter::repeat_n(&t, copies).collect();
        let ens = kd_ensemble_loss(&s, &ts, 4.0).unwrap().double_value(&[]);
        assert!(rel(ens, plain) < 1e-5, "{copies} copies: {ens} vs {plain}");
    }
    // A teacher far more confident than float32's softmax can represent stays finite.
    let sharp = randn(42, &[6, 7]) * 1e4;
    let v = kd_ensemble_loss(&s, &[&sharp, &t], 1.0).unwrap().double_value(&[]);
    assert!(v.is_finite() && v > 0.0, "{v}");
}

#[test]
fn kd_loss_is_zero_when_student_equals_teacher() {
    let s = randn(1, &[6, 7]) * 3.0;
    for t in [1.0, 4.0] {
        let (value, grad) = value_grad(&s, |x| kd_loss(x, &s, t).unwrap());
        assert!(value.abs() <= 1e-7, "T={t}: {value}");
        assert!(grad.abs().max().double_value(&[]) <= 1e-7, "T={t}: gradient {grad}");
    }
}

#[test]
fn kd_loss_is_t_squared_times_kl_of_tempered_softmaxes() {
    let (s, t) = (randn(2, &[6, 7]) * 3.0, randn(3, &[6, 7]) * 3.0);
    for temp in [0.5, 2.0, 4.0, 8.0] {
        let scaled = kd_loss(&s, &t, temp).unwrap().double_value(&[]);
        let kl = kd_loss(&(&s / temp), &(&t / temp), 1.0).unwrap().double_value(&[]);
        assert!(
            rel(scaled, temp * temp * kl) <= 1e-5,
            "T={temp}: {scaled} vs {}",
            temp * temp * kl
        );
    }
}

#[test]
fn kd_gradient_tends_to_logit_difference_over_nk_at_high_temperature() {
    // Hinton et al. §2.1: with zero-mean logits, dC/dz_i → (z_i − v_i) / (N·K) as T grows.
    let (n, k) = (6, 7);
    let centre = |x: Tensor| &x - x.mean_dim(-1, true, Kind::Double);
    let s = centre(randn(4, &[n, k]).to_kind(Kind::Double) * 3.0);
    let t = centre(randn(5, &[n, k]).to_kind(Kind::Double) * 3.0);
    let (_, grad) = value_grad(&s, |x| kd_loss(x, &t, 1e4).unwrap());
    let expected = (&s - &t) / (n * k) as f64;
    let err = rel_diff(&grad, &expected);
    assert!(err <= 1e-3, "gradient differs from (z - v)/(N K) by {err:e}");
}

#[test]
fn rkd_losses_are_invariant_to_scaling_the_teacher_embedding() {
    let (s, t) = (randn(6, &[10, 4]), randn(7, &[10, 9]));
    let t_scaled = &t * 37.5;
    type Rkd = fn(&Tensor, &Tensor) -> fer_train::Result<Tensor>;
    for (name, f) in [("rkd_distance", rkd_distance as Rkd), ("rkd_angle", rkd_angle as Rkd)] {
        let (v, g) = value_grad(&s, |x| f(x, &t).unwrap());
        let (v_scaled, g_scaled) = value_grad(&s, |x| f(x, &t_scaled).unwrap());
        assert!(v > 0.0 && rel(v_scaled, v) <= 1e-5, "{name}: {v_scaled} vs {v}");
        assert!(rel_diff(&g_scaled, &g) <= 1e-5, "{name}: gradients differ");
    }
}

#[test]
fn total_loss_is_weighted_sum_of_terms_and_leaves_teachers_without_gradient() {
    let (n, k) = (6, 5);
    let logits = (randn(8, &[n, k]) * 2.0).set_requires_grad(true);
    let emb = randn(9, &[n, 8]).set_requires_grad(true);
    let labels = Tensor::from_slice(&[0i64, 4, 2, 2, 1, 3]);
    let weights = randn(10, &[k]).abs() + 0.5;
    let a_logits = (randn(11, &[n, k]) * 3.0).set_requires_grad(true);
    let a_emb = randn(12, &[n, 12]).set_requires_grad(true);
    let b_logits = randn(13, &[n, k]) * 3.0;
    let b_emb = randn(14, &[n, 3]) * 5.0;
    let teachers = [
        TeacherOutputs {
            name: "a",
            logits: Some(&a_logits),
            embedding: Some(&a_emb),
            weight: None,
        },
        TeacherOutputs {
            name: "b",
            logits: Some(&b_logits),
            embedding: Some(&b_emb),
            weight: None,
        },
    ];
    let inputs = LossInputs {
        student_logits: &logits,
        student_embedding: Some(&emb),
        target: Some(Target::Hard(&labels)),
        class_weights: Some(&weights),
        teachers: &teachers,
    };
    let a = Some("a".to_string());
    let b = Some("b".to_string());
    let terms = [
        LossTerm::CrossEntropy { weight: 0.5, label_smoothing: 0.1, focal_gamma: 0.0 },
        LossTerm::Kd { weight: 2.0, temperature: 4.0, teacher: a.clone(), standardize: false },
        LossTerm::Kd { weight: 0.3, temperature: 1.0, teacher: b.clone(), standardize: false },
        LossTerm::RkdDistance { weight: 1.5, teacher: b },
        LossTerm::RkdAngle { weight: 0.25, teacher: a },
    ];
    let parts = [
        cross_entropy(&logits, Target::Hard(&labels), 0.1, Some(&weights)).unwrap(),
        kd_loss(&logits, &a_logits, 4.0).unwrap(),
        kd_loss(&logits, &b_logits, 1.0).unwrap(),
        rkd_distance(&emb, &b_emb).unwrap(),
        rkd_angle(&emb, &a_emb).unwrap(),
    ];
    let (total, logged) = total_loss(&terms, &inputs).unwrap();
    let labels: Vec<&str> = logged.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["cross_entropy", "kd[a]", "kd[b]", "rkd_distance[b]", "rkd_angle[a]"]);
    let mut expected = 0.0;
    for ((term, part), (label, value)) in terms.iter().zip(&parts).zip(&logged) {
        assert!(!value.requires_grad(), "{label} is logged with its graph");
        assert_eq!(value.double_value(&[]), part.double_value(&[]), "{label}");
        expected += term.weight() * part.double_value(&[]);
    }
    assert!(rel(total.double_value(&[]), expected) <= 1e-6);

    // Gradients of the total equal the weighted sum of the terms' gradients.
    let grads = Tensor::run_backward(&[&total], &[&logits, &emb], true, false);
    let manual =
        parts.iter().zip(&terms).map(|(p, t)| p * t.weight()).reduce(|x, y| x + y).unwrap();
    let manual_grads = Tensor::run_backward(&[&manual], &[&logits, &emb], false, false);
    for (g, m) in grads.iter().zip(&manual_grads) {
        assert!(rel_diff(g, m) <= 1e-6);
    }
    total.backward();
    assert!(!a_logits.grad().defined() && !a_emb.grad().defined(), "a teacher got a gradient");
}

#[test]
fn total_loss_reports_missing_inputs_as_errors() {
    let logits = randn(15, &[4, 3]);
    let emb = randn(16, &[4, 5]);
    let t_logits = randn(17, &[4, 3]);
    let one =
        [TeacherOutputs { name: "a", logits: Some(&t_logits), embedding: None, weight: None }];
    let two = [
        one[0],
        TeacherOutputs { name: "b", logits: Some(&t_logits), embedding: None, weight: None },
    ];
    let inputs = |teachers| LossInputs {
        student_logits: &logits,
        student_embedding: Some(&emb),
        target: None,
        class_weights: None,
        teachers,
    };
    let kd = |teacher: Option<&str>| LossTerm::Kd {
        weight: 1.0,
        temperature: 2.0,
        teacher: teacher.map(str::to_owned),
        standardize: false,
    };
    let err = |terms: &[LossTerm], teachers| match total_loss(terms, &inputs(teachers)) {
        Ok(_) => panic!("{terms:?} was accepted"),
        Err(e) => e.to_string(),
    };
    let cases: [(&[LossTerm], &[TeacherOutputs], &str); 7] = [
        (&[kd(None)], &two, "loss[0] (kd).teacher: the stage has several teachers (`a`, `b`)"),
        (&[kd(Some("c"))], &two, "`c` is not a teacher of the stage (available: `a`, `b`)"),
        (&[kd(None)], &[], "loss[0] (kd) needs a teacher but the stage has none"),
        (
            &[
                LossTerm::CrossEntropy { weight: 1.0, label_smoothing: 0.0, focal_gamma: 0.0 },
                kd(None),
            ],
            &one,
            "loss[0] (cross_entropy) needs labels",
        ),
        (
            &[kd(None), LossTerm::RkdAngle { weight: 1.0, teacher: None }],
            &one,
            "loss[1] (rkd_angle): teacher `a` gives no embedding",
        ),
        (
            &[
                kd(None),
                LossTerm::Kd { weight: -1.0, temperature: 1.0, teacher: None, standardize: false },
            ],
            &one,
            "loss[1].weight",
        ),
        (&[], &one, "no loss terms"),
    ];
    for (terms, teachers, expected) in cases {
        let msg = err(terms, teachers);
        assert!(msg.contains(expected), "{msg:?} does not mention {expected:?}");
    }
    // A single unnamed teacher is used by terms that name none.
    assert!(total_loss(&[kd(None)], &inputs(&one)).is_ok());
}

#[test]
fn validate_names_each_invalid_field() {
    let bad = LossTerm::Kd {
        weight: -1.0,
        temperature: 0.0,
        teacher: Some(" ".into()),
        standardize: false,
    };
    let problems = bad.validate();
    let fields: Vec<&str> = problems.iter().map(|p| p.split(':').next().unwrap()).collect();
    assert_eq!(fields, ["weight", "temperature", "teacher"], "{problems:?}");
    for smoothing in [1.0, -0.1, f64::NAN] {
        let ce =
            LossTerm::CrossEntropy { weight: 1.0, label_smoothing: smoothing, focal_gamma: 0.0 };
        assert!(ce.validate()[0].starts_with("label_smoothing:"), "{smoothing}");
    }
    let nan_weight = LossTerm::RkdDistance { weight: f64::NAN, teacher: None };
    assert!(nan_weight.validate()[0].starts_with("weight:"));
    let good = LossTerm::CrossEntropy { weight: 0.0, label_smoothing: 0.1, focal_gamma: 0.0 };
    assert!(good.validate().is_empty());
    assert!(LossTerm::RkdAngle { weight: 50.0, teacher: Some("r50".into()) }.validate().is_empty());
}

#[test]
fn loss_terms_deserialize_with_defaults_and_reject_unknown_fields() {
    let json = r#"[
        {"kind": "cross_entropy", "weight": 1.0},
        {"kind": "kd", "weight": 0.5, "temperature": 4, "teacher": "resnet50"},
        {"kind": "rkd_distance", "weight": 25},
        {"kind": "rkd_angle", "weight": 50, "teacher": "resnet50"}
    ]"#;
    let terms: Vec<LossTerm> = serde_json::from_str(json).unwrap();
    let r50 = Some("resnet50".to_string());
    let expected = vec![
        LossTerm::CrossEntropy { weight: 1.0, label_smoothing: 0.0, focal_gamma: 0.0 },
        LossTerm::Kd { weight: 0.5, temperature: 4.0, teacher: r50.clone(), standardize: false },
        LossTerm::RkdDistance { weight: 25.0, teacher: None },
        LossTerm::RkdAngle { weight: 50.0, teacher: r50 },
    ];
    assert_eq!(terms, expected);
    let written = serde_json::to_string(&terms).unwrap();
    assert!(!written.contains("null"), "an absent teacher is written as null: {written}");
    let round_trip: Vec<LossTerm> = serde_json::from_str(&written).unwrap();
    assert_eq!(round_trip, expected);
    let typo = serde_json::from_str::<LossTerm>(r#"{"kind": "kd", "weight": 1, "temprature": 4}"#);
    assert!(typo.unwrap_err().to_string().contains("unknown field `temprature`"));
    let kind = serde_json::from_str::<LossTerm>(r#"{"kind": "kdd", "weight": 1}"#);
    assert!(kind.unwrap_err().to_string().contains("unknown variant `kdd`"));
}

#[test]
fn losses_compute_in_f32_for_bf16_inputs() {
    let logits = (randn(18, &[6, 5]) * 3.0).to_kind(Kind::BFloat16);
    let teacher = (randn(19, &[6, 5]) * 3.0).to_kind(Kind::BFloat16);
    let labels = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 0]);
    let emb = randn(20, &[6, 4]).to_kind(Kind::BFloat16);
    let t_emb = randn(21, &[6, 9]).to_kind(Kind::BFloat16);
    type Loss = Box<dyn Fn(&Tensor, &Tensor) -> Tensor>;
    let cases: [(&str, &Tensor, &Tensor, Loss); 4] = [
        (
            "ce",
            &logits,
            &labels,
            Box::new(|x, y| cross_entropy(x, Target::Hard(y), 0.1, None).unwrap()),
        ),
        ("kd", &logits, &teacher, Box::new(|x, y| kd_loss(x, y, 4.0).unwrap())),
        ("rkd_distance", &emb, &t_emb, Box::new(|x, y| rkd_distance(x, y).unwrap())),
        ("rkd_angle", &emb, &t_emb, Box::new(|x, y| rkd_angle(x, y).unwrap())),
    ];
    for (name, x, other, f) in cases {
        let x = x.detach().set_requires_grad(true);
        let loss = f(&x, other);
        assert_eq!(loss.kind(), Kind::Float, "{name}");
        loss.backward();
        assert_eq!(x.grad().kind(), Kind::BFloat16, "{name}");
        // Same numbers as the f32 computation on the bf16 values.
        let other32 = if other.is_floating_point() {
            other.to_kind(Kind::Float)
        } else {
            other.shallow_clone()
        };
        let (v32, g32) = value_grad(&x.to_kind(Kind::Float), |x| f(x, &other32));
        assert!(rel(loss.double_value(&[]), v32) <= 1e-6, "{name}");
        assert!(rel_diff(&x.grad().to_kind(Kind::Float), &g32) <= 1e-2, "{name}: bf16 gradient");
    }
}

#[test]
fn invalid_shapes_and_parameters_are_errors_not_panics() {
    let x = randn(22, &[4, 5]);
    let e = randn(23, &[4, 3]);
    let checks: Vec<(&str, fer_train::Result<Tensor>, &str)> = vec![
        ("kd shapes", kd_loss(&x, &randn(24, &[4, 6]), 2.0), "differ in shape"),
        ("kd temperature", kd_loss(&x, &x, 0.0), "temperature must be > 0"),
        ("kd rank", kd_loss(&x.flatten(0, -1), &x.flatten(0, -1), 1.0), "rank 2"),
        ("rkd batch", rkd_distance(&e, &randn(25, &[5, 3])), "different batch sizes"),
        ("rkd too small", rkd_angle(&e.narrow(0, 0, 2), &e.narrow(0, 0, 2)), "at least 3"),
        ("rkd ints", rkd_distance(&e.to_kind(Kind::Int64), &e), "floating-point"),
        (
            "ce labels",
            cross_entropy(&x, Target::Hard(&Tensor::from_slice(&[0i64, 1])), 0.0, None),
            "hard target must be integer [4]",
        ),
        ("ce float labels", cross_entropy(&x, Target::Hard(&e.get(0)), 0.0, None), "hard target"),
        ("ce soft", cross_entropy(&x, Target::Soft(&e), 0.0, None), "differs from logits"),
        (
            "ce weights",
            cross_entropy(&x, Target::Soft(&x), 0.0, Some(&randn(26, &[4]))),
            "expected [5]",
        ),
        ("ce smoothing", cross_entropy(&x, Target::Soft(&x), 1.5, None), "label_smoothing"),
    ];
    for (name, result, expected) in checks {
        match result {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(e.to_string().contains(expected), "{name}: {e}"),
        }
    }
}
