//! Cross-fitted teachers: `data.cross_fit_folds` / `cross_fit_fold` leave one fold of the
//! training part out of a teacher's training, and a student's `[[teachers]] out_of_fold`
//! reads each teacher only on the images it left out (through the teacher cache). Also the
//! validation of the other calibration-minded option of round 20, `focal_gamma`.

use std::collections::HashSet;
use std::path::Path;

use fer_data::SplitName;
use fer_data::split::SplitPlan;
use fer_train::config::ExperimentConfig;
use fer_train::trainer::{self, RunOptions, Silent};

mod trainer_support;

use trainer_support::{Messages, cli_support, device_config as config};

const CE: &str = "[[stages]]\nname = \"train\"\nepochs = 2\n[[stages.loss]]\nkind = \"cross_entropy\"\nweight = 1.0\n";

/// A teacher trained without fold `fold` of 3 (`None`: on the whole training part).
fn teacher(dir: &Path, name: &str, fold: Option<usize>) -> SplitPlan {
    let mut cfg = config(dir, name, CE);
    if let Some(f) = fold {
        let sets = ["data.cross_fit_folds=3".to_string(), format!("data.cross_fit_fold={f}")];
        cfg.apply_overrides(&sets).unwrap();
    }
    cfg.validate().unwrap();
    trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap();
    SplitPlan::load(&dir.join("runs").join(name).join("split.json")).unwrap()
}

/// A DKD student towards `teachers` (name, out_of_fold), from the cache.
fn student(dir: &Path, name: &str, teachers: &[(&str, bool)]) -> ExperimentConfig {
    let mut extra = String::from("[augment]\nviews = 2\n");
    for (t, oof) in teachers {
        extra += &format!(
            "[[teachers]]\nname = \"{t}\"\ncheckpoint = \"runs/{t}/best.safetensors\"\nout_of_fold = {oof}\n"
        );
    }
    let names: Vec<String> = teachers.iter().map(|(t, _)| format!("\"{t}\"")).collect();
    extra += &format!(
        "[[stages]]\nname = \"kd\"\nepochs = 2\nteacher_cache = true\n[[stages.loss]]\n\
         kind = \"cross_entropy\"\nweight = 1.0\n[[stages.loss]]\nkind = \"dkd\"\nweight = 1.0\n\
         temperature = 4.0\nbeta = 8.0\nteachers = [{}]\n",
        names.join(", ")
    );
    let cfg = config(dir, name, &extra);
    cfg.validate().unwrap();
    cfg
}

fn train_messages(cfg: &ExperimentConfig) -> Result<Vec<String>, String> {
    let obs = Messages::default();
    trainer::train(cfg, &RunOptions::default(), &obs).map_err(|e| e.to_string())?;
    Ok(obs.0.into_inner().unwrap())
}

#[test]
fn each_training_image_is_distilled_from_the_teachers_that_left_it_out() {
    let tmp = tempfile::tempdir().unwrap();
    cli_support::synth(tmp.path());
    let dir = tmp.path();
    let plans =
        [teacher(dir, "t0", Some(0)), teacher(dir, "t1", Some(1)), teacher(dir, "t2", Some(2))];
    teacher(dir, "full", None);

    // The three teachers' left-out folds are disjoint, cover the 84 training images (28
    // each: 12 per class dealt into 3), and are exactly what each did not train on.
    let left: Vec<HashSet<usize>> = plans
        .iter()
        .map(|p| p.left_out.as_ref().unwrap().indices.iter().copied().collect())
        .collect();
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        assert!(left[a].is_disjoint(&left[b]));
    }
    assert_eq!(left.iter().map(HashSet::len).collect::<Vec<_>>(), [28, 28, 28]);
    for (p, l) in plans.iter().zip(&left) {
        let trained: HashSet<usize> =
            p.part(SplitName::Train).unwrap().indices.iter().copied().collect();
        assert!(trained.is_disjoint(l));
        assert_eq!(trained.len() + l.len(), 84);
    }

    // Three cross-fitted teachers: every image has exactly one usable teacher (were each read
    // where it trained, two).
    let all = [("t0", true), ("t1", true), ("t2", true)];
    let msgs = train_messages(&student(dir, "oof", &all)).unwrap();
    assert!(
        msgs.iter().any(|m| m.contains("1.00 of 3 teachers read per training image")),
        "{msgs:?}"
    );
    // Beside a teacher read everywhere, one read on its third: 1 + 1/3 on average.
    let msgs = train_messages(&student(dir, "mixed", &[("t0", true), ("full", false)])).unwrap();
    assert!(msgs.iter().any(|m| m.contains("1.33 of 2 teachers read")), "{msgs:?}");
    // Two of the three leave the third fold's 28 images without a target; a teacher that
    // trained on everything leaves every image without one.
    let err = train_messages(&student(dir, "two", &[("t0", true), ("t1", true)])).unwrap_err();
    assert!(err.contains("28 of 84 training images have no teacher"), "{err}");
    let err = train_messages(&student(dir, "none", &[("full", true)])).unwrap_err();
    assert!(err.contains("84 of 84 training images have no teacher"), "{err}");
}

#[test]
fn out_of_fold_teachers_are_refused_where_they_cannot_be_read() {
    let tmp = tempfile::tempdir().unwrap();
    let t = "[[teachers]]\nname = \"t\"\ncheckpoint = \"t.safetensors\"\nout_of_fold = true\n\
             [[teachers]]\nname = \"u\"\ncheckpoint = \"u.safetensors\"\n";
    let stage = |cache: bool, terms: &str| {
        format!(
            "[augment]\nviews = 2\n{t}[[stages]]\nname = \"kd\"\nepochs = 2\nteacher_cache = {cache}\n{terms}"
        )
    };
    let dkd = "[[stages.loss]]\nkind = \"dkd\"\nweight = 1.0\ntemperature = 4.0\nbeta = 8.0\nteachers = [\"t\", \"u\"]\n";
    let kd = "[[stages.loss]]\nkind = \"kd\"\nweight = 1.0\ntemperature = 4.0\nteacher = \"t\"\n";
    for (cache, terms, expected) in [
        (false, dkd, "without teacher_cache = true"),
        (true, &format!("{dkd}{kd}") as &str, "a kd term cannot read an out-of-fold teacher"),
    ] {
        let errs =
            config(tmp.path(), "bad", &stage(cache, terms)).validate().unwrap_err().to_string();
        assert!(errs.contains("teachers[0].out_of_fold") && errs.contains(expected), "{errs}");
    }
    config(tmp.path(), "ok", &stage(true, dkd)).validate().unwrap();
    for (sets, expected) in [
        (&["data.cross_fit_folds=1", "data.cross_fit_fold=0"][..], "must be >= 2"),
        (&["data.cross_fit_folds=3", "data.cross_fit_fold=3"][..], "3 is not a fold of 3"),
        (&["data.cross_fit_folds=3"][..], "required when data.cross_fit_folds is set"),
        (&["data.cross_fit_fold=1"][..], "needs data.cross_fit_folds"),
    ] {
        let mut cfg = config(tmp.path(), "folds", CE);
        cfg.apply_overrides(sets).unwrap();
        let errs = cfg.validate().unwrap_err().to_string();
        assert!(errs.contains("data.cross_fit_fold") && errs.contains(expected), "{errs}");
    }
}

/// Focal loss (`focal_gamma`) is validated in the config, with the field's path.
#[test]
fn focal_gamma_is_validated_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let ce = |g: f64| {
        format!(
            "[[stages]]\nname = \"train\"\nepochs = 2\n[[stages.loss]]\nkind = \"cross_entropy\"\nweight = 1.0\nfocal_gamma = {g:?}\n"
        )
    };
    config(tmp.path(), "ok", &ce(3.0)).validate().unwrap();
    let errs = config(tmp.path(), "half", &ce(0.5)).validate().unwrap_err().to_string();
    assert!(
        errs.contains("stages[0].loss[0].focal_gamma")
            && errs.contains("0 or a finite number >= 1"),
        "{errs}"
    );
    let mut cfg = config(tmp.path(), "weighted", &ce(3.0));
    cfg.apply_overrides(&["data.balance=\"inverse_frequency_weights\""]).unwrap();
    let errs = cfg.validate().unwrap_err().to_string();
    assert!(
        errs.contains("stages[0].loss[0].focal_gamma")
            && errs.contains("inverse_frequency_weights"),
        "{errs}"
    );
}
