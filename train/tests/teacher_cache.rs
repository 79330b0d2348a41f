//! `stages.teacher_cache`: a distillation stage that reads its teachers' logits from a cache
//! filled once per augmentation view trains the model that running the teachers in every step
//! trains, and runs the teachers only to fill the cache. One test per file: it counts the
//! process's teacher forward passes.

use std::path::Path;

use fer_train::config::ExperimentConfig;
use fer_train::trainer::{self, RunOptions, Silent, teacher};

mod trainer_support;

use trainer_support::{cli_support, device_config as config};

fn student(dir: &Path, name: &str, cache: bool) -> ExperimentConfig {
    let cfg = config(
        dir,
        name,
        &format!(
            r#"
[augment]
views = 2
[[teachers]]
name = "t"
checkpoint = "runs/teacher/best.safetensors"
input_size = 40
[[stages]]
name = "kd"
epochs = 4
teacher_cache = {cache}
[[stages.loss]]
kind = "cross_entropy"
weight = 0.5
[[stages.loss]]
kind = "kd"
weight = 0.5
temperature = 1.0
[[stages.loss]]
kind = "dkd"
weight = 0.25
temperature = 2.0
beta = 2.0
"#
        ),
    );
    cfg.validate().unwrap();
    cfg
}

#[test]
fn a_cached_teacher_trains_the_same_student_and_runs_only_to_fill_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    cli_support::synth(tmp.path());
    let t = config(
        tmp.path(),
        "teacher",
        "[[stages]]\nname = \"train\"\nepochs = 3\n[[stages.loss]]\nkind = \"cross_entropy\"\nweight = 1.0\n",
    );
    trainer::train(&t, &RunOptions::default(), &Silent).unwrap();
    // 84 training images in batches of 16: 5 batches a training epoch (the loader drops the
    // partial one), 6 to fill each view (every image, the partial batch included).
    let (batches, fill) = (5, 6);

    let before = teacher::forward_batches();
    let plain =
        trainer::train(&student(tmp.path(), "plain", false), &RunOptions::default(), &Silent)
            .unwrap();
    let in_step = teacher::forward_batches() - before;
    assert_eq!(in_step, 4 * batches, "the teacher runs in every step of 4 epochs");

    let before = teacher::forward_batches();
    let cached =
        trainer::train(&student(tmp.path(), "cached", true), &RunOptions::default(), &Silent)
            .unwrap();
    let filled = teacher::forward_batches() - before;
    assert_eq!(filled, 2 * fill, "the teacher runs once per view (2) over the split");

    // Same data, same draws (views = 2 on both), same teacher outputs: the same training. On
    // the CPU an image's logits do not depend on the other images of its batch, so the
    // cached logits are the very values the step would compute: equal, not just close.
    for (a, b) in plain.records.iter().zip(&cached.records) {
        assert_eq!((a.train_loss, &a.terms), (b.train_loss, &b.terms), "epoch {}", a.epoch);
    }
    let load = |run: &str| {
        fer_checkpoint::Checkpoint::load(tmp.path().join(format!("runs/{run}/last.safetensors")))
            .unwrap()
            .tensors
    };
    let (a, b) = (load("plain"), load("cached"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert_eq!(a, b, "the weights of the two students");
}

#[test]
fn a_cache_the_stage_could_not_use_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = |augment: &str, terms: &str| {
        format!(
            "[augment]\n{augment}\n[[teachers]]\nname = \"t\"\ncheckpoint = \"t.safetensors\"\n\
             [[stages]]\nname = \"kd\"\nepochs = 2\nteacher_cache = true\n{terms}"
        )
    };
    let kd = "[[stages.loss]]\nkind = \"kd\"\nweight = 1.0\ntemperature = 4.0\n";
    let rkd = "[[stages.loss]]\nkind = \"rkd_distance\"\nweight = 25.0\n";
    for (augment, terms, expected) in [
        ("", kd, "needs augment.views >= 1"),
        ("views = 4\nmixup_alpha = 0.4", kd, "cannot be used with mixup or CutMix"),
        ("views = 4", &format!("{kd}{rkd}"), "cannot be used with a rkd_distance term"),
    ] {
        let cfg = config(tmp.path(), "bad", &stage(augment, terms));
        let errs = cfg.validate().unwrap_err().to_string();
        assert!(errs.contains("stages[0].teacher_cache") && errs.contains(expected), "{errs}");
    }
    let ok = config(tmp.path(), "ok", &stage("views = 4", kd));
    ok.validate().unwrap();
}
