//! The loss terms against a second implementation written from the papers in Python torch
//! (run at test time in the project venv), plus properties of the losses and of `total_loss`.
//!
//! Every parity case is computed three ways on the same inputs: Rust in `f32` (the production
//! path), Rust in `f64`, and Python in `f64`. Values and gradients with respect to the student's
//! input must agree within 1e-5 relative (`f32`) and 1e-10 relative (`f64`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use fer_train::losses::{
    DkdParams, Target, cross_entropy, dkd_loss, kd_ensemble_loss, kd_loss, rkd_angle, rkd_distance,
    standardize_logits,
};
use tch::{Kind, Tensor};

/// The second implementation, written from the papers' definitions.
const PY_REFERENCE: &str = include_str!("losses/reference.py");

/// Deterministic normal samples (splitmix64 + Box–Muller), independent of tch's global RNG.
fn randn(seed: u64, shape: &[i64]) -> Tensor {
    let mut state = seed;
    let mut uniform = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let n: i64 = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| {
            let (u1, u2) = (uniform().max(1e-300), uniform());
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect();
    Tensor::from_slice(&data).reshape(shape)
}

/// One loss evaluated on fixed inputs; `x` is the student input the gradient is taken for.
struct Case {
    name: &'static str,
    loss: &'static str,
    x: Tensor,
    other: Vec<(&'static str, Tensor)>,
    params: serde_json::Value,
}

fn cases() -> Vec<Case> {
    let (n, k) = (8, 5);
    let labels = Tensor::from_slice(&[0i64, 3, 1, 4, 4, 2, 0, 1]);
    let weights = randn(11, &[k]).abs() + 0.25;
    let soft = (randn(12, &[n, k]) * 2.0).softmax(-1, Kind::Float);
    let dup_s = randn(31, &[7, 6]);
    dup_s.get(5).copy_(&dup_s.get(2));
    dup_s.get(6).copy_(&dup_s.get(2));
    let dup_t = randn(32, &[7, 11]);
    dup_t.get(1).copy_(&dup_t.get(0));
    let ce = |name, target: Tensor, ls: f64, w: Option<&Tensor>| {
        let mut other = vec![("target", target)];
        if let Some(w) = w {
            other.push(("weight", w.shallow_clone()));
        }
        Case {
            name,
            loss: "ce",
            x: randn(10, &[n, k]) * 3.0,
            other,
            params: serde_json::json!({ "label_smoothing": ls }),
        }
    };
    let kd = |name, t: f64| Case {
        name,
        loss: "kd",
        x: randn(20, &[n, k]) * 3.0,
        other: vec![("teacher", randn(21, &[n, k]) * 4.0)],
        params: serde_json::json!({ "temperature": t }),
    };
    let dkd = |name, teachers: &[Tensor], t: f64, alpha: f64, beta: f64| {
        let mut other = vec![("target", labels.shallow_clone())];
        let names = ["teacher0", "teacher1", "teacher2"];
        other.extend(names.iter().zip(teachers).map(|(n, t)| (*n, t.shallow_clone())));
        Case {
            name,
            loss: "dkd",
            x: randn(40, &[n, k]) * 3.0,
            other,
            params: serde_json::json!({ "temperature": t, "alpha": alpha, "beta": beta }),
        }
    };
    let rkd = |name, loss, s: Tensor, t: Tensor| Case {
        name,
        loss,
        x: s,
        other: vec![("teacher", t)],
        params: serde_json::json!({}),
    };
    vec![
        ce("ce_hard", labels.shallow_clone(), 0.0, None),
        ce("ce_hard_smoothing_weights", labels.shallow_clone(), 0.1, Some(&weights)),
        ce("ce_soft", soft.shallow_clone(), 0.0, None),
        ce("ce_soft_smoothing_weights", soft, 0.2, Some(&weights)),
        kd("kd_t1", 1.0),
        kd("kd_t4", 4.0),
        Case {
            name: "kd_ensemble_t4",
            loss: "kd_ensemble",
            x: randn(22, &[n, k]) * 3.0,
            other: vec![
                ("teacher0", randn(23, &[n, k]) * 4.0),
                ("teacher1", randn(24, &[n, k]) * 2.0),
                ("teacher2", randn(25, &[n, k]) * 6.0),
            ],
            params: serde_json::json!({ "temperature": 4.0 }),
        },
        dkd("dkd_t4_beta8", &[randn(41, &[n, k]) * 4.0], 4.0, 1.0, 8.0),
        dkd("dkd_t1_alpha_beta", &[randn(42, &[n, k]) * 2.0], 1.0, 0.5, 2.0),
        dkd(
            "dkd_ensemble_t4",
            &[randn(43, &[n, k]) * 4.0, randn(44, &[n, k]) * 2.0, randn(45, &[n, k]) * 6.0],
            4.0,
            1.0,
            8.0,
        ),
        Case {
            name: "kd_standardized_t2",
            loss: "kd",
            x: randn(46, &[n, k]) * 3.0 + 2.0,
            other: vec![("teacher", randn(47, &[n, k]) * 8.0 - 1.0)],
            params: serde_json::json!({ "temperature": 2.0, "standardize": true }),
        },
        Case {
            name: "dkd_ensemble_standardized_t2",
            loss: "dkd",
            x: randn(48, &[n, k]) * 3.0,
            other: vec![
                ("target", labels.shallow_clone()),
                ("teacher0", randn(49, &[n, k]) * 4.0),
                ("teacher1", randn(50, &[n, k]) * 9.0 + 3.0),
            ],
            params: serde_json::json!({
                "temperature": 2.0, "alpha": 1.0, "beta": 8.0, "standardize": true
            }),
        },
        rkd("rkd_distance", "rkd_distance", randn(30, &[9, 6]), randn(33, &[9, 13]) * 3.0),
        rkd("rkd_angle", "rkd_angle", randn(34, &[9, 6]), randn(35, &[9, 13]) * 3.0),
        rkd("rkd_distance_duplicates", "rkd_distance", dup_s.copy(), dup_t.copy()),
        rkd("rkd_angle_duplicates", "rkd_angle", dup_s, dup_t),
    ]
}

/// The Rust loss of a case on `x` converted to `kind` (integer targets stay integer).
fn rust_loss(case: &Case, x: &Tensor, kind: Kind) -> Tensor {
    // `"standardize": true`: the student's and the teachers' logits go through
    // `standardize_logits` first, as a term with `standardize = true` does.
    let standardize = case.params.get("standardize").is_some_and(|v| v == true);
    let other = |name: &str| {
        let t = &case.other.iter().find(|(n, _)| *n == name).expect(name).1;
        let t = if t.is_floating_point() { t.to_kind(kind) } else { t.shallow_clone() };
        if standardize && name.starts_with("teacher") { standardize_logits(&t).unwrap() } else { t }
    };
    let standardized;
    let x = if standardize {
        standardized = standardize_logits(x).unwrap();
        &standardized
    } else {
        x
    };
    let param = |name: &str| case.params[name].as_f64().expect(name);
    let result = match case.loss {
        "ce" => {
            let target = other("target");
            let target = if target.is_floating_point() {
                Target::Soft(&target)
            } else {
                Target::Hard(&target)
            };
            let weight = case.other.iter().any(|(n, _)| *n == "weight").then(|| other("weight"));
            cross_entropy(x, target, param("label_smoothing"), weight.as_ref())
        }
        "kd" => kd_loss(x, &other("teacher"), param("temperature")),
        "kd_ensemble" => {
            let ts = ["teacher0", "teacher1", "teacher2"].map(other);
            kd_ensemble_loss(x, &ts.iter().collect::<Vec<_>>(), param("temperature"))
        }
        "dkd" => {
            let ts: Vec<Tensor> = ["teacher0", "teacher1", "teacher2"]
                .into_iter()
                .filter(|n| case.other.iter().any(|(m, _)| m == n))
                .map(other)
                .collect();
            let params = DkdParams {
                temperature: param("temperature"),
                alpha: param("alpha"),
                beta: param("beta"),
            };
            dkd_loss(x, &ts.iter().collect::<Vec<_>>(), &other("target"), params)
        }
        "rkd_distance" => rkd_distance(x, &other("teacher")),
        "rkd_angle" => rkd_angle(x, &other("teacher")),
        other => panic!("unknown loss {other}"),
    };
    result.unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// Value and gradient (as f64) of the Rust loss computed in `kind`.
fn rust_value_grad(case: &Case, kind: Kind) -> (f64, Tensor) {
    let x = case.x.to_kind(kind).detach().set_requires_grad(true);
    let loss = rust_loss(case, &x, kind);
    assert_eq!(loss.kind(), kind, "{}: loss kind", case.name);
    loss.backward();
    (loss.double_value(&[]), x.grad().to_kind(Kind::Double))
}

/// Python's value and flat gradient per case, computed once per test binary.
fn python_results() -> &'static HashMap<String, (f64, Vec<f64>)> {
    static RESULTS: OnceLock<HashMap<String, (f64, Vec<f64>)>> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut manifest = Vec::new();
        for case in cases() {
            let mut tensors = serde_json::Map::new();
            for (name, t) in
                std::iter::once(("x", &case.x)).chain(case.other.iter().map(|(n, t)| (*n, t)))
            {
                let file = format!("{}.{name}.bin", case.name);
                write_raw(&dir.path().join(&file), t);
                let dtype = if t.is_floating_point() { "f64" } else { "i64" };
                tensors.insert(
                    name.into(),
                    serde_json::json!({ "file": file, "shape": t.size(), "dtype": dtype }),
                );
            }
            manifest.push(serde_json::json!({
                "name": case.name, "loss": case.loss, "params": case.params, "tensors": tensors,
            }));
        }
        std::fs::write(dir.path().join("manifest.json"), serde_json::to_vec(&manifest).unwrap())
            .unwrap();
        let script = dir.path().join("reference.py");
        std::fs::write(&script, PY_REFERENCE).unwrap();
        let out = fer_test_support::run_python(&[script.as_os_str(), dir.path().as_os_str()]);
        serde_json::from_str(&out).expect("reference.py output")
    })
}

/// Writes `t` as raw little-endian f64 (floating) or i64 (integer).
fn write_raw(path: &Path, t: &Tensor) {
    let bytes: Vec<u8> = if t.is_floating_point() {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1))
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    } else {
        Vec::<i64>::try_from(t.flatten(0, -1))
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    };
    std::fs::write(path, bytes).unwrap();
}

/// max |a − b| / max |b|.
fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(f64::MIN_POSITIVE);
    (a - b).abs().max().double_value(&[]) / scale
}

/// Checks one case in f32 and f64 against Python's f64 result.
fn check_case(name: &str) {
    let case = cases().into_iter().find(|c| c.name == name).expect(name);
    let (py_value, py_grad) = &python_results()[name];
    let py_grad = Tensor::from_slice(py_grad).reshape(case.x.size());
    assert!(py_value.is_finite() && py_grad.isfinite().all().int64_value(&[]) == 1);
    for (kind, tol) in [(Kind::Float, 1e-5), (Kind::Double, 1e-10)] {
        let (value, grad) = rust_value_grad(&case, kind);
        let value_err = (value - py_value).abs() / py_value.abs();
        assert!(
            value_err <= tol,
            "{name} {kind:?}: value {value} vs python {py_value} ({value_err:e})"
        );
        assert_eq!(grad.isfinite().all().int64_value(&[]), 1, "{name} {kind:?}: non-finite grad");
        let grad_err = rel_diff(&grad, &py_grad);
        assert!(grad_err <= tol, "{name} {kind:?}: gradient differs from python by {grad_err:e}");
    }
}

#[test]
fn cross_entropy_hard_labels_matches_torch() {
    check_case("ce_hard");
}

#[test]
fn cross_entropy_with_label_smoothing_and_class_weights_matches_torch() {
    check_case("ce_hard_smoothing_weights");
}

#[test]
fn cross_entropy_soft_targets_matches_torch() {
    check_case("ce_soft");
    check_case("ce_soft_smoothing_weights");
}

#[test]
fn kd_loss_matches_hinton_formula_at_t1_and_t4() {
    check_case("kd_t1");
    check_case("kd_t4");
}

#[test]
fn kd_towards_a_teacher_ensemble_matches_the_mean_of_their_distributions() {
    check_case("kd_ensemble_t4");
}

#[test]
fn decoupled_kd_matches_the_papers_tckd_and_nckd() {
    check_case("dkd_t4_beta8");
    check_case("dkd_t1_alpha_beta");
}

#[test]
fn decoupled_kd_towards_an_ensemble_decouples_the_mean_distribution() {
    check_case("dkd_ensemble_t4");
}

#[test]
fn kd_and_dkd_on_standardized_logits_match_the_z_score_of_the_paper() {
    check_case("kd_standardized_t2");
    check_case("dkd_ensemble_standardized_t2");
}

#[test]
fn rkd_distance_matches_paper_with_different_dims() {
    check_case("rkd_distance");
}

#[test]
fn rkd_angle_matches_paper_with_different_dims() {
    check_case("rkd_angle");
}

#[test]
fn rkd_losses_on_duplicate_embeddings_are_finite_and_match_reference() {
    check_case("rkd_distance_duplicates");
    check_case("rkd_angle_duplicates");
}

#[path = "losses/properties.rs"]
mod properties;

#[path = "losses/dkd.rs"]
mod dkd;

#[path = "losses/standardize.rs"]
mod standardize;

#[path = "losses/focal.rs"]
mod focal;
