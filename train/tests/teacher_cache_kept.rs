//! The teacher cache is kept in the run directory: a run of the same config with the same
//! teachers (`resume`, or the run again with `--overwrite`) reads the logits back instead of
//! running the teachers, and trains the same student; another config runs them again. One
//! test per file: it counts the process's teacher forward passes.

use fer_train::config::ExperimentConfig;
use fer_train::trainer::{self, RunOptions, RunOutcome, Silent, teacher};

mod trainer_support;

use trainer_support::{Messages, cli_support, device_config as config};

const STUDENT: &str = r#"
[augment]
views = 2
[[teachers]]
name = "t"
checkpoint = "runs/teacher/best.safetensors"
[[stages]]
name = "kd"
epochs = 3
teacher_cache = true
[[stages.loss]]
kind = "cross_entropy"
weight = 0.5
[[stages.loss]]
kind = "kd"
weight = 0.5
temperature = 2.0
"#;

/// Trains `cfg` (replacing an earlier run); returns the outcome, the teacher batches run and
/// the messages.
fn run(cfg: &ExperimentConfig) -> (RunOutcome, u64, Vec<String>) {
    let obs = Messages::default();
    let before = teacher::forward_batches();
    let opts = RunOptions { overwrite: true, ..RunOptions::default() };
    let out = trainer::train(cfg, &opts, &obs).unwrap();
    (out, teacher::forward_batches() - before, obs.0.into_inner().unwrap())
}

#[test]
fn a_kept_cache_is_read_back_for_the_same_config_and_teachers_only() {
    let tmp = tempfile::tempdir().unwrap();
    cli_support::synth(tmp.path());
    let t = config(
        tmp.path(),
        "teacher",
        "[[stages]]\nname = \"train\"\nepochs = 2\n[[stages.loss]]\nkind = \"cross_entropy\"\nweight = 1.0\n",
    );
    trainer::train(&t, &RunOptions::default(), &Silent).unwrap();
    let student = config(tmp.path(), "student", STUDENT);
    // 84 training images, batches of 16: 6 batches fill one view, 2 views.
    let (first, ran, _) = run(&student);
    assert_eq!(ran, 12, "the first run fills the cache");
    let kept = tmp.path().join("runs/student/teacher_cache-kd.safetensors");
    assert!(kept.exists());

    let (again, ran, msgs) = run(&student);
    assert_eq!(ran, 0, "the second run reads the kept logits: {msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("teacher outputs read from")), "{msgs:?}");
    for (a, b) in first.records.iter().zip(&again.records) {
        assert_eq!((a.train_loss, &a.terms), (b.train_loss, &b.terms), "epoch {}", a.epoch);
    }

    // Another seed draws other views: the kept logits are not read.
    let mut other = student.clone();
    other.apply_overrides(&["seed=6"]).unwrap();
    let (_, ran, msgs) = run(&other);
    assert_eq!(ran, 12, "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("kept for another config")), "{msgs:?}");
    // A retrained teacher (other weights, same name and path): not read either.
    let mut t2 = t.clone();
    t2.apply_overrides(&["seed=9"]).unwrap();
    trainer::train(&t2, &RunOptions { overwrite: true, ..RunOptions::default() }, &Silent).unwrap();
    let (_, ran, _) = run(&other);
    assert_eq!(ran, 12);
    // A damaged file is reported and replaced.
    std::fs::write(&kept, b"not safetensors").unwrap();
    let (_, ran, msgs) = run(&other);
    assert_eq!(ran, 12);
    assert!(msgs.iter().any(|m| m.contains("unreadable")), "{msgs:?}");
    let (_, ran, _) = run(&other);
    assert_eq!(ran, 0, "rewritten after the damaged one");
}
