//! Properties of decoupled KD (Zhao et al. 2022) beyond the reference parity of `losses.rs`.

use fer_train::losses::{
    DkdParams, LossInputs, LossTerm, Target, TeacherOutputs, dkd_loss, kd_ensemble_loss, total_loss,
};
use tch::{Kind, Tensor};

use super::randn;

fn params(temperature: f64, alpha: f64, beta: f64) -> DkdParams {
    DkdParams { temperature, alpha, beta }
}

/// The paper's Eq. 4: per sample, KD = TCKD + (1 − p_t[y]) · NCKD. So DKD with α = 1 and that
/// β, one sample at a time, is Hinton KD, for one teacher and for the mean of several.
#[test]
fn with_beta_one_minus_the_teachers_true_class_probability_it_is_hinton_kd() {
    let (n, k, temp) = (6, 7, 4.0);
    let s = randn(50, &[n, k]).to_kind(Kind::Double) * 3.0;
    let teachers =
        [randn(51, &[n, k]) * 4.0, randn(52, &[n, k]) * 2.0].map(|t| t.to_kind(Kind::Double));
    let labels = Tensor::from_slice(&[0i64, 6, 2, 3, 3, 5]);
    for m in [1, 2] {
        let ts: Vec<&Tensor> = teachers.iter().take(m).collect();
        let p_mean = Tensor::stack(
            &ts.iter().map(|t| (*t / temp).softmax(-1, Kind::Double)).collect::<Vec<_>>(),
            0,
        )
        .mean_dim(0, false, Kind::Double);
        for i in 0..n {
            let row = |t: &Tensor| t.narrow(0, i, 1);
            let y = labels.get(i).int64_value(&[]);
            let beta = 1.0 - p_mean.double_value(&[i, y]);
            let t_rows: Vec<Tensor> = ts.iter().map(|t| row(t)).collect();
            let t_refs: Vec<&Tensor> = t_rows.iter().collect();
            let dkd = dkd_loss(&row(&s), &t_refs, &row(&labels), params(temp, 1.0, beta))
                .unwrap()
                .double_value(&[]);
            let kd = kd_ensemble_loss(&row(&s), &t_refs, temp).unwrap().double_value(&[]);
            assert!(
                (dkd - kd).abs() <= 1e-12 * kd.abs().max(1.0),
                "{m} teachers, sample {i}: {dkd} vs {kd}"
            );
        }
    }
}

#[test]
fn is_zero_with_zero_gradient_when_the_student_is_the_teacher() {
    let s = randn(53, &[5, 4]) * 3.0;
    let labels = Tensor::from_slice(&[0i64, 1, 2, 3, 0]);
    let x = s.detach().set_requires_grad(true);
    let loss = dkd_loss(&x, &[&s], &labels, params(2.0, 1.0, 8.0)).unwrap();
    loss.backward();
    assert!(loss.double_value(&[]).abs() <= 1e-6, "{loss}");
    assert!(x.grad().abs().max().double_value(&[]) <= 1e-6, "{}", x.grad());
}

#[test]
fn stays_finite_for_logits_far_beyond_what_a_softmax_represents() {
    let labels = Tensor::from_slice(&[0i64, 1, 2, 3]);
    let x = (randn(54, &[4, 4]) * 1e3).set_requires_grad(true);
    let sharp = randn(55, &[4, 4]) * 1e4;
    let loss = dkd_loss(&x, &[&sharp, &(&sharp * -1.0)], &labels, params(1.0, 1.0, 8.0)).unwrap();
    loss.backward();
    assert!(loss.double_value(&[]).is_finite(), "{loss}");
    assert_eq!(x.grad().isfinite().all().int64_value(&[]), 1, "{}", x.grad());
    // Two classes: nothing is left to NCKD, and TCKD is all of KD.
    let (s2, t2) = (randn(56, &[3, 2]), randn(57, &[3, 2]) * 2.0);
    let y2 = Tensor::from_slice(&[1i64, 0, 1]);
    let only_nckd = dkd_loss(&s2, &[&t2], &y2, params(2.0, 0.0, 5.0)).unwrap();
    assert_eq!(only_nckd.double_value(&[]), 0.0);
}

#[test]
fn reads_hard_labels_in_total_loss_and_refuses_distributions() {
    let (logits, t_logits) = (randn(58, &[4, 3]), randn(59, &[4, 3]));
    let labels = Tensor::from_slice(&[0i64, 1, 2, 1]);
    let soft = randn(60, &[4, 3]).softmax(-1, Kind::Float);
    let teachers = [
        TeacherOutputs { name: "a", logits: Some(&t_logits), embedding: None, weight: None },
        TeacherOutputs { name: "b", logits: Some(&logits), embedding: None, weight: None },
    ];
    let term = |names: &[&str]| LossTerm::Dkd {
        weight: 2.0,
        temperature: 4.0,
        alpha: 1.0,
        beta: 8.0,
        teachers: names.iter().map(|n| n.to_string()).collect(),
        standardize: false,
    };
    let inputs = |target| LossInputs {
        student_logits: &logits,
        student_embedding: None,
        target,
        class_weights: None,
        teachers: &teachers,
    };
    let (total, logs) =
        total_loss(&[term(&["a", "b"])], &inputs(Some(Target::Hard(&labels)))).unwrap();
    let direct = dkd_loss(&logits, &[&t_logits, &logits], &labels, params(4.0, 1.0, 8.0)).unwrap();
    assert!((total.double_value(&[]) - 2.0 * direct.double_value(&[])).abs() <= 1e-6);
    assert_eq!(logs[0].0, "dkd[a+b]");
    let err =
        |terms: &[LossTerm], target| total_loss(terms, &inputs(target)).unwrap_err().to_string();
    let msg = err(&[term(&["a"])], Some(Target::Soft(&soft)));
    assert!(msg.contains("loss[0] (dkd) needs hard labels"), "{msg}");
    let msg = err(&[term(&["a"])], None);
    assert!(msg.contains("loss[0] (dkd) needs labels"), "{msg}");
    let msg = err(&[term(&[])], Some(Target::Hard(&labels)));
    assert!(msg.contains("the stage has several teachers (`a`, `b`); name one"), "{msg}");
}

#[test]
fn invalid_parameters_and_shapes_are_errors() {
    let x = randn(61, &[4, 5]);
    let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
    let p = params(4.0, 1.0, 8.0);
    let checks = [
        (dkd_loss(&x, &[&x], &y.narrow(0, 0, 3), p), "labels must be integer [4]"),
        (dkd_loss(&x, &[&x], &y.to_kind(Kind::Float), p), "labels must be integer"),
        (dkd_loss(&x, &[&randn(62, &[4, 6])], &y, p), "differ in shape"),
        (dkd_loss(&x, &[], &y, p), "no teacher logits"),
        (dkd_loss(&x.narrow(1, 0, 1), &[&x.narrow(1, 0, 1)], &y, p), "two classes"),
        (dkd_loss(&x, &[&x], &y, params(0.0, 1.0, 8.0)), "temperature must be > 0"),
        (dkd_loss(&x, &[&x], &y, params(4.0, f64::NAN, 8.0)), "alpha must be"),
    ];
    for (i, (result, want)) in checks.into_iter().enumerate() {
        let msg = result.map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains(want), "check {i}: {msg:?} does not mention {want:?}");
    }
    let bad = LossTerm::Dkd {
        weight: 1.0,
        temperature: 4.0,
        alpha: -1.0,
        beta: f64::INFINITY,
        teachers: vec!["a".into(), "a".into()],
        standardize: false,
    };
    let fields: Vec<String> =
        bad.validate().iter().map(|p| p.split(':').next().unwrap().to_owned()).collect();
    assert_eq!(fields, ["alpha", "beta", "teachers[1]"]);
}

/// Out-of-fold teachers (`[[teachers]] out_of_fold`): with 0/1 weights per sample, the
/// weighted KD and DKD equal, sample by sample, the unweighted losses against only the
/// teachers of weight 1 on that sample; equal weights give the plain mean; `total_loss` reads
/// `TeacherOutputs::weight`, and a single-teacher term refuses a weighted teacher.
#[test]
fn per_sample_weights_average_only_the_teachers_allowed_on_each_sample() {
    use fer_train::losses::{dkd_loss_weighted, kd_ensemble_loss_weighted};
    let (n, k, temp) = (5, 7, 4.0);
    let s = randn(60, &[n, k]).to_kind(Kind::Double) * 3.0;
    let teachers = [randn(61, &[n, k]) * 4.0, randn(62, &[n, k]) * 2.0, randn(63, &[n, k]) * 3.0]
        .map(|t| t.to_kind(Kind::Double));
    let ts: Vec<&Tensor> = teachers.iter().collect();
    let labels = Tensor::from_slice(&[0i64, 6, 2, 3, 5]);
    let mask: [[f64; 3]; 5] =
        [[1., 0., 1.], [0., 1., 0.], [1., 1., 1.], [0., 0., 1.], [1., 1., 0.]];
    let w = Tensor::from_slice(mask.as_flattened()).view([n, 3]);
    let p = params(temp, 1.0, 8.0);
    let row = |t: &Tensor, i: i64| t.narrow(0, i, 1);
    let (mut kd_sum, mut dkd_sum) = (0.0, 0.0);
    for i in 0..n {
        let rows: Vec<Tensor> =
            (0..3).filter(|&m| mask[i as usize][m] == 1.0).map(|m| row(&teachers[m], i)).collect();
        let refs: Vec<&Tensor> = rows.iter().collect();
        kd_sum += kd_ensemble_loss(&row(&s, i), &refs, temp).unwrap().double_value(&[]);
        dkd_sum += dkd_loss(&row(&s, i), &refs, &row(&labels, i), p).unwrap().double_value(&[]);
    }
    let kd_w = kd_ensemble_loss_weighted(&s, &ts, Some(&w), temp).unwrap().double_value(&[]);
    let dkd_w = dkd_loss_weighted(&s, &ts, Some(&w), &labels, p).unwrap().double_value(&[]);
    assert!((kd_w - kd_sum / n as f64).abs() <= 1e-10, "{kd_w} vs {}", kd_sum / n as f64);
    assert!((dkd_w - dkd_sum / n as f64).abs() <= 1e-10, "{dkd_w} vs {}", dkd_sum / n as f64);

    let ones = Tensor::ones([n, 3], (Kind::Double, tch::Device::Cpu)) * 2.0;
    let plain = dkd_loss(&s, &ts, &labels, p).unwrap().double_value(&[]);
    let equal = dkd_loss_weighted(&s, &ts, Some(&ones), &labels, p).unwrap().double_value(&[]);
    assert!((plain - equal).abs() <= 1e-10, "{plain} vs {equal}");
    let bad = Tensor::ones([n, 2], (Kind::Double, tch::Device::Cpu));
    let err = dkd_loss_weighted(&s, &ts, Some(&bad), &labels, p).unwrap_err().to_string();
    assert!(err.contains("teacher weights must be floating-point [5, 3]"), "{err}");

    // Through the stage's loss: the weights travel with the teachers' outputs.
    let cols: Vec<Tensor> = (0..3).map(|m| w.select(1, m)).collect();
    let outs: Vec<TeacherOutputs> = ["a", "b", "c"]
        .iter()
        .zip(&teachers)
        .zip(&cols)
        .map(|((name, l), c)| TeacherOutputs {
            name,
            logits: Some(l),
            embedding: None,
            weight: Some(c),
        })
        .collect();
    let term = LossTerm::Dkd {
        weight: 1.0,
        temperature: temp,
        alpha: 1.0,
        beta: 8.0,
        teachers: vec!["a".into(), "b".into(), "c".into()],
        standardize: false,
    };
    let inputs = LossInputs {
        student_logits: &s,
        student_embedding: None,
        target: Some(Target::Hard(&labels)),
        class_weights: None,
        teachers: &outs,
    };
    let (total, _) = total_loss(&[term], &inputs).unwrap();
    assert!((total.double_value(&[]) - dkd_w).abs() <= 1e-10);
    let kd = LossTerm::Kd {
        weight: 1.0,
        temperature: temp,
        teacher: Some("a".into()),
        standardize: false,
    };
    let err = total_loss(&[kd], &inputs).unwrap_err().to_string();
    assert!(err.contains("out-of-fold only"), "{err}");
}
