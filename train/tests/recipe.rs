//! The regularisation options of a training recipe: the weight average (`optim.ema_decay`),
//! mixup and CutMix (`augment.mixup_alpha`, `augment.cutmix_alpha`) and KD towards a teacher
//! ensemble (`kind = "kd_ensemble"`), end to end through `fer-train` on tiny generated data,
//! and the mixer's draws against their definitions.

mod cli_support;

use std::path::Path;

use cli_support::{assert_fails, ce_stage, config, fer_train, s, synth};
use fer_train::config::AugmentConfig;
use fer_train::trainer::mix::{MixDraw, Mixer};
use fer_train::trainer::rundir::{EpochRecord, RunDir};
use tch::{Kind, Tensor};

fn records(dir: &Path) -> Vec<EpochRecord> {
    RunDir { path: dir.to_path_buf() }.read_metrics().unwrap()
}

fn untimed(records: &[EpochRecord]) -> Vec<EpochRecord> {
    records
        .iter()
        .map(|r| EpochRecord { img_per_s: 0.0, epoch_seconds: 0.0, val_seconds: 0.0, ..r.clone() })
        .collect()
}

fn weights(path: &Path) -> fer_checkpoint::TensorMap {
    fer_checkpoint::Checkpoint::load(path).unwrap().tensors
}

/// Largest absolute difference between two checkpoints' floating tensors.
fn max_diff(a: &fer_checkpoint::TensorMap, b: &fer_checkpoint::TensorMap) -> f64 {
    use fer_checkpoint::TensorData;
    let mut worst = 0.0f64;
    for (name, ta) in a {
        if let (TensorData::F32(x), TensorData::F32(y)) = (&ta.data, &b[name].data) {
            for (u, v) in x.iter().zip(y) {
                worst = worst.max((u - v).abs() as f64);
            }
        }
    }
    worst
}

fn run(dir: &Path, name: &str, sets: &[&str]) {
    let cfg = dir.join(format!("{name}.toml"));
    let mut args = vec!["run", "--config", s(&cfg)];
    for set in sets {
        args.extend(["--set", set]);
    }
    let out = fer_train(&args);
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_weight_average_is_what_is_validated_and_checkpointed() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let stage = ce_stage(2);
    for name in ["raw", "tiny", "ema"] {
        config(tmp.path(), name, &stage);
    }
    run(tmp.path(), "raw", &[]);
    // A decay of 1e-12 makes the average the trained weights at every step: the same
    // validation and checkpoints as without it. 0.9 gives other weights.
    run(tmp.path(), "tiny", &["optim.ema_decay=1e-12"]);
    run(tmp.path(), "ema", &["optim.ema_decay=0.9"]);
    let dir = |n: &str| tmp.path().join("runs").join(n);
    let (raw, tiny, ema) = (dir("raw"), dir("tiny"), dir("ema"));
    let (rw, tw, ew) = (
        weights(&raw.join("last.safetensors")),
        weights(&tiny.join("last.safetensors")),
        weights(&ema.join("last.safetensors")),
    );
    assert!(max_diff(&rw, &tw) < 1e-5, "tiny decay: {}", max_diff(&rw, &tw));
    assert!(
        max_diff(&rw, &ew) > 1e-3,
        "decay 0.9 left the trained weights: {}",
        max_diff(&rw, &ew)
    );
    let (r, t) = (records(&raw), records(&tiny));
    for (a, b) in r.iter().zip(&t) {
        assert!((a.val_loss - b.val_loss).abs() < 1e-5, "{a:?} vs {b:?}");
        assert_eq!(a.train_loss, b.train_loss, "the average must not change training");
    }
    // The averaged weights reach the checkpoint's metadata and the training state.
    let ck = fer_checkpoint::Checkpoint::load(ema.join("last.safetensors")).unwrap();
    assert_eq!(ck.extra.get("ema_decay").map(String::as_str), Some("0.9"));
    let (state, extra) = fer_checkpoint::read_safetensors(ema.join("state.safetensors")).unwrap();
    assert!(state.keys().any(|k| k.starts_with("ema.")));
    assert_eq!(
        extra.get("ema_updates").map(String::as_str),
        Some("10"),
        "5 full batches of 16 of the 84 images × 2 epochs"
    );
}

#[test]
fn a_run_with_average_and_mixing_resumed_after_a_kill_matches_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let extra = format!(
        "[augment]\nmixup_alpha = 0.4\ncutmix_alpha = 1.0\nmix_prob = 0.8\n{}",
        ce_stage(3)
    );
    let cfg = config(tmp.path(), "mixed", &extra);
    let ema = "optim.ema_decay=0.8";
    run(tmp.path(), "mixed", &[ema, &format!("output_dir={}", s(&tmp.path().join("reference")))]);
    let reference = tmp.path().join("reference/mixed");

    let mut child = std::process::Command::new(cli_support::BIN)
        .args(["-q", "run", "--config", s(&cfg), "--set", ema])
        .spawn()
        .unwrap();
    let dir = tmp.path().join("runs/mixed");
    let t0 = std::time::Instant::now();
    while !dir.join("state.safetensors").exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(records(&dir).len() < 3, "the run finished before it could be killed");
    let out = fer_train(&["resume", s(&dir)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(untimed(&records(&dir)), untimed(&records(&reference)));
    for f in ["last.safetensors", "best.safetensors"] {
        assert_eq!(weights(&dir.join(f)), weights(&reference.join(f)), "{f}");
    }
}

/// The mixer of `aug` for 7 classes, seed 9.
fn mixer(aug: AugmentConfig) -> Mixer {
    Mixer::new(&aug, 9, 7).unwrap().expect("mixing on")
}

#[test]
fn mixing_is_off_unless_asked_for() {
    assert!(Mixer::new(&AugmentConfig::default(), 1, 7).unwrap().is_none());
    let off = AugmentConfig { mixup_alpha: 1.0, ..AugmentConfig::off() };
    assert!(Mixer::new(&off, 1, 7).unwrap().is_none(), "augment.enabled = false mixes nothing");
}

#[test]
fn mixup_blends_images_and_targets_by_the_drawn_lambda() {
    let m = mixer(AugmentConfig { mixup_alpha: 0.4, ..AugmentConfig::default() });
    let x = Tensor::randn([8, 3, 6, 6], (Kind::Float, tch::Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 0]);
    let (mx, t) = m.mix(2, 5, &x, &y, None).unwrap();
    let MixDraw::Mixup { lambda, perm } = m.draw(2, 5, 8, 6, 6) else { panic!("mixup expected") };
    assert_eq!(m.draw(2, 5, 8, 6, 6), MixDraw::Mixup { lambda, perm: perm.clone() }, "seeded");
    let p = Tensor::from_slice(&perm);
    let expect = &x * lambda + x.index_select(0, &p) * (1.0 - lambda);
    assert!((&mx - expect).abs().max().double_value(&[]) < 1e-6);
    let one_hot = y.one_hot(7).to_kind(Kind::Float);
    let expect_t = &one_hot * lambda + one_hot.index_select(0, &p) * (1.0 - lambda);
    assert!((&t - expect_t).abs().max().double_value(&[]) < 1e-6);
    let sums = t.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-6);
}

#[test]
fn cutmix_pastes_one_rectangle_and_weights_targets_by_its_area() {
    let m = mixer(AugmentConfig { cutmix_alpha: 1.0, ..AugmentConfig::default() });
    let (n, h, w) = (6usize, 20i64, 16i64);
    let x = Tensor::randn([n as i64, 1, h, w], (Kind::Float, tch::Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
    let mut pasted_some = false;
    for b in 0..20 {
        let (mx, t) = m.mix(0, b, &x, &y, None).unwrap();
        let MixDraw::CutMix { lambda, perm, rows, cols } = m.draw(0, b, n, h, w) else {
            panic!("CutMix expected")
        };
        let area = ((rows.1 - rows.0) * (cols.1 - cols.0)) as f64;
        assert!((lambda - (1.0 - area / (h * w) as f64)).abs() < 1e-12);
        let src = x.index_select(0, &Tensor::from_slice(&perm));
        for (i, j) in [(0, 0), (h / 2, w / 2), (h - 1, w - 1), (rows.0, cols.0)] {
            let inside = i >= rows.0 && i < rows.1 && j >= cols.0 && j < cols.1;
            let from = if inside { &src } else { &x };
            let (a, e) = (mx.get(0).get(0).get(i).get(j), from.get(0).get(0).get(i).get(j));
            assert_eq!(a.double_value(&[]), e.double_value(&[]), "({i}, {j}) inside={inside}");
        }
        pasted_some |= area > 0.0;
        let one_hot = y.one_hot(7).to_kind(Kind::Float);
        let p = Tensor::from_slice(&perm);
        let expect_t = &one_hot * lambda + one_hot.index_select(0, &p) * (1.0 - lambda);
        assert!((&t - expect_t).abs().max().double_value(&[]) < 1e-6);
    }
    assert!(pasted_some);
}

#[test]
fn the_drawn_mixing_follows_the_configured_rates() {
    let m = mixer(AugmentConfig {
        mixup_alpha: 1.0,
        cutmix_alpha: 1.0,
        mix_prob: 0.6,
        mix_switch_prob: 0.25,
        ..AugmentConfig::default()
    });
    let draws: Vec<MixDraw> = (0..4000).map(|b| m.draw(b / 100, b % 100, 32, 32, 32)).collect();
    let mixed = draws.iter().filter(|d| !matches!(d, MixDraw::None)).count() as f64;
    let cut = draws.iter().filter(|d| matches!(d, MixDraw::CutMix { .. })).count() as f64;
    let lambdas: Vec<f64> = draws
        .iter()
        .filter_map(|d| match d {
            MixDraw::Mixup { lambda, .. } => Some(*lambda),
            _ => None,
        })
        .collect();
    // Binomial standard errors: 0.008 and 0.011; Beta(1, 1) is uniform (mean 1/2, sd 0.29).
    assert!((mixed / 4000.0 - 0.6).abs() < 0.04, "mixed {mixed}");
    assert!((cut / mixed - 0.25).abs() < 0.05, "CutMix share {}", cut / mixed);
    let mean = lambdas.iter().sum::<f64>() / lambdas.len() as f64;
    assert!((mean - 0.5).abs() < 0.03, "mean lambda {mean}");
    let below = lambdas.iter().filter(|l| **l < 0.25).count() as f64 / lambdas.len() as f64;
    assert!((below - 0.25).abs() < 0.04, "P(lambda < 0.25) = {below}");
}

#[test]
fn kd_towards_two_teachers_trains_and_names_both() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    for t in ["ta", "tb"] {
        config(tmp.path(), t, &ce_stage(1));
        run(tmp.path(), t, &[&format!("seed={}", if t == "ta" { 1 } else { 2 })]);
    }
    let teachers = r#"
[[teachers]]
name = "a"
checkpoint = "runs/ta/best.safetensors"
[[teachers]]
name = "b"
checkpoint = "runs/tb/best.safetensors"
[[stages]]
name = "train"
epochs = 1
[[stages.loss]]
kind = "cross_entropy"
weight = 0.5
[[stages.loss]]
kind = "kd_ensemble"
weight = 0.5
temperature = 4.0
teachers = ["a", "b"]
[[stages.loss]]
kind = "rkd_distance"
weight = 25.0
teacher = "a"
"#;
    config(tmp.path(), "student", teachers);
    run(tmp.path(), "student", &[]);
    let r = records(&tmp.path().join("runs/student"));
    let keys: Vec<_> = r[0].terms.keys().cloned().collect();
    assert_eq!(keys, ["cross_entropy", "kd_ensemble[a+b]", "rkd_distance[a]"]);
    assert!(r[0].terms.values().all(|v| v.is_finite() && *v > 0.0), "{r:?}");

    // Mistakes name the field.
    let one = teachers.replace("teachers = [\"a\", \"b\"]", "teachers = [\"a\", \"c\"]");
    let cfg = config(tmp.path(), "bad", &one);
    let out = fer_train(&["check", s(&cfg)]);
    assert_fails(&out, 2, &["stages[0].loss[1].teachers[1]", "\"c\" is not a teacher"]);
    let single = teachers.replace("teachers = [\"a\", \"b\"]", "teachers = [\"a\"]");
    let cfg = config(tmp.path(), "single", &single);
    let out = fer_train(&["check", s(&cfg)]);
    assert_fails(&out, 2, &["stages[0].loss[1].teachers", "at least two teachers"]);
}
