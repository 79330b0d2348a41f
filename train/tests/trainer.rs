//! The trainer end to end on tiny generated data: run directory contents, determinism on CPU,
//! resume after a kill, distillation stages, and errors a user can act on.

use std::path::Path;
use std::process::Command;

use fer_train::config::ExperimentConfig;
use fer_train::trainer::{self, RunOptions, Silent, rundir::EpochRecord};

#[path = "cli_support/mod.rs"]
mod cli_support;
use cli_support::synth;

/// cli_support's tiny config (MobileNetV3-Small at quarter width, 32 px, batch 16) with two
/// loader workers, written to `<dir>/<name>.toml` (the CLI tests run it) and loaded, validated.
fn config(dir: &Path, name: &str, extra: &str) -> ExperimentConfig {
    let cfg = ExperimentConfig::load(&cli_support::config_workers(dir, name, 2, extra)).unwrap();
    cfg.validate().unwrap();
    cfg
}

const CE_STAGE: &str = r#"
[[stages]]
name = "train"
epochs = 3
[[stages.loss]]
kind = "cross_entropy"
weight = 1.0
"#;

/// Records without their timing fields, which legitimately differ between identical runs.
fn untimed(records: &[EpochRecord]) -> Vec<EpochRecord> {
    records
        .iter()
        .map(|r| EpochRecord { img_per_s: 0.0, epoch_seconds: 0.0, val_seconds: 0.0, ..r.clone() })
        .collect()
}

fn read_records(dir: &Path) -> Vec<EpochRecord> {
    trainer::rundir::RunDir { path: dir.to_path_buf() }.read_metrics().unwrap()
}

#[test]
fn a_run_leaves_config_metrics_and_loadable_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = config(tmp.path(), "smoke", CE_STAGE);
    let out = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap();
    for f in [
        "config.resolved.toml",
        "env.json",
        "split.json",
        "metrics.jsonl",
        "best.safetensors",
        "last.safetensors",
        "state.safetensors",
    ] {
        assert!(out.dir.join(f).exists(), "{f} missing in the run directory");
    }
    assert_eq!(out.records.len(), 3);
    let ck = fer_checkpoint::Checkpoint::load(out.dir.join("best.safetensors")).unwrap();
    assert_eq!(ck.meta.labels.len(), 7);
    assert_eq!(ck.meta.preprocess.input_size, 32);
    assert_eq!(ck.extra["epoch"], out.best_epoch.to_string());
    // The resolved config is itself a valid config of the same experiment.
    let again = ExperimentConfig::load(&out.dir.join("config.resolved.toml")).unwrap();
    assert_eq!(again.config_hash().unwrap(), cfg.config_hash().unwrap());

    // A second run into the same directory is refused, not overwritten.
    let e = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap_err();
    assert!(e.to_string().contains("fer-train resume"), "{e}");
}

/// Training learns: a quarter-width ResNet-18 on 100 synthetic faces a class, six epochs, in
/// its own process (so the run is deterministic, whatever other tests do with libtorch's global
/// generator). Three epochs on 80 images, as in the smoke test above, are too few to tell
/// learning from noise; these settings reach about 0.6 validation accuracy (chance: 1/7).
#[test]
fn training_learns_the_synthetic_expressions() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg =
        fer_data::synth::SynthConfig { seed: 3, train_per_class: 100, val_per_class: 20, size: 48 };
    fer_data::synth::write_fer_folder(&tmp.path().join("data"), &cfg).unwrap();
    config(tmp.path(), "learn", CE_STAGE);
    let text = std::fs::read_to_string(tmp.path().join("learn.toml"))
        .unwrap()
        .replace("mobilenet_v3_small", "resnet18")
        .replace("input_size = 32", "input_size = 48")
        .replace("lr = 0.01", "lr = 0.003")
        .replace("epochs = 3", "epochs = 6");
    std::fs::write(tmp.path().join("learn.toml"), text).unwrap();
    let st = cli_run(tmp.path(), "learn", "runs").output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let r = read_records(&tmp.path().join("runs/learn"));
    let best = r.iter().map(|e| e.val_accuracy).fold(0.0, f64::max);
    assert!(best >= 3.0 / 7.0, "best validation accuracy {best} (chance 1/7): {r:?}");
    assert!(r[5].train_loss < 0.75 * r[0].train_loss, "training loss did not fall: {r:?}");
}

/// `fer-train run` of `<dir>/<name>.toml` into `<dir>/<out>/<name>/`, as a user runs it (one
/// process: libtorch's generator is process-global, so determinism is a per-process property).
fn cli_run(dir: &Path, name: &str, out: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fer-train"));
    c.args(["-q", "run", "--config"]).arg(dir.join(format!("{name}.toml")));
    c.arg("--set").arg(format!("output_dir={}", dir.join(out).display()));
    c
}

#[test]
fn the_same_config_and_seed_give_identical_metrics_and_weights_on_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    config(tmp.path(), "det", CE_STAGE);
    for out in ["a", "b"] {
        let st = cli_run(tmp.path(), "det", out).output().unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    }
    let (a, b) = (tmp.path().join("a/det"), tmp.path().join("b/det"));
    assert_eq!(untimed(&read_records(&a)), untimed(&read_records(&b)));
    let ca = fer_checkpoint::Checkpoint::load(a.join("last.safetensors")).unwrap();
    let cb = fer_checkpoint::Checkpoint::load(b.join("last.safetensors")).unwrap();
    assert_eq!(ca.tensors, cb.tensors);
}

#[test]
fn resume_after_a_kill_finishes_with_the_same_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = config(tmp.path(), "killed", CE_STAGE);
    let st = cli_run(tmp.path(), "killed", "reference").output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let reference = read_records(&tmp.path().join("reference/killed"));
    assert_eq!(reference.len(), 3);

    let exe = env!("CARGO_BIN_EXE_fer-train");
    let mut child = cli_run(tmp.path(), "killed", "runs").spawn().unwrap();
    let state = cfg.run_dir().join("state.safetensors");
    let t0 = std::time::Instant::now();
    while !state.exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let done = read_records(&cfg.run_dir()).len();
    assert!(done < 3, "the run finished before it could be killed");

    let st = Command::new(exe).args(["-q", "resume"]).arg(cfg.run_dir()).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    assert_eq!(untimed(&read_records(&cfg.run_dir())), untimed(&reference));
}

#[test]
fn distillation_stages_log_every_term_and_use_the_teacher() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let teacher_cfg = config(
        tmp.path(),
        "teacher",
        r#"
[[stages]]
name = "train"
epochs = 1
[[stages.loss]]
kind = "cross_entropy"
weight = 1.0
"#,
    );
    trainer::train(&teacher_cfg, &RunOptions::default(), &Silent).unwrap();
    // Two stages as exp2/exp5: response KD, then hybrid with both RKD terms; the teacher is a
    // quarter-width ResNet-18 fed at its own size (40 px) from the student's 32 px batch.
    let student = config(
        tmp.path(),
        "student",
        r#"
[[teachers]]
name = "t"
checkpoint = "runs/teacher/best.safetensors"
input_size = 40
[[stages]]
name = "response"
epochs = 1
[[stages.loss]]
kind = "cross_entropy"
weight = 0.5
[[stages.loss]]
kind = "kd"
weight = 0.5
temperature = 4.0
[[stages]]
name = "hybrid"
epochs = 1
[[stages.loss]]
kind = "kd"
weight = 1.0
temperature = 2.0
[[stages.loss]]
kind = "rkd_distance"
weight = 25.0
[[stages.loss]]
kind = "rkd_angle"
weight = 50.0
"#,
    );
    let out = trainer::train(&student, &RunOptions::default(), &Silent).unwrap();
    let r = &out.records;
    assert_eq!((r[0].stage.as_str(), r[1].stage.as_str()), ("response", "hybrid"));
    let keys0: Vec<_> = r[0].terms.keys().cloned().collect();
    let keys1: Vec<_> = r[1].terms.keys().cloned().collect();
    assert_eq!(keys0, ["cross_entropy", "kd"]);
    assert_eq!(keys1, ["kd", "rkd_angle", "rkd_distance"]);
    // Distillation from a (weak but trained) teacher gives non-zero, finite terms.
    for v in r.iter().flat_map(|x| x.terms.values()) {
        assert!(v.is_finite() && *v > 0.0, "{:?}", r);
    }
}

#[test]
fn mistakes_in_a_run_are_reported_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let mut cfg = config(tmp.path(), "wrong", CE_STAGE);
    cfg.model.net.num_classes = 8;
    let e = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap_err().to_string();
    assert!(e.contains("model.num_classes = 8") && e.contains("7 classes"), "{e}");

    let cfg = config(
        tmp.path(),
        "no_teacher",
        r#"
[[teachers]]
name = "t"
checkpoint = "runs/missing/best.safetensors"
[[stages]]
name = "kd"
epochs = 1
[[stages.loss]]
kind = "kd"
weight = 1.0
temperature = 4.0
"#,
    );
    let e = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap_err().to_string();
    assert!(e.contains("runs/missing/best.safetensors"), "{e}");
}

#[test]
fn a_bad_image_stops_the_run_by_name_or_is_skipped_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = synth(tmp.path());
    let bad = root.join("train/happy/broken.png");
    std::fs::write(&bad, b"this is not a PNG").unwrap();
    let one_epoch = CE_STAGE.replace("epochs = 3", "epochs = 1");
    let cfg = config(tmp.path(), "strict", &one_epoch);
    let e = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap_err().to_string();
    assert!(e.contains("broken.png"), "{e}");

    let mut cfg = config(tmp.path(), "lenient", &one_epoch);
    cfg.data.skip_bad = true;
    let out = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap();
    let listed = std::fs::read_to_string(out.dir.join("skipped.txt")).unwrap();
    assert!(listed.contains("broken.png"), "{listed}");
}

#[test]
fn seeds_write_a_summary_and_a_second_call_reads_finished_seeds_back() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let two_epochs = CE_STAGE.replace("epochs = 3", "epochs = 2");
    let cfg = config(tmp.path(), "multi", &format!("precise_bn_batches = 2\n{two_epochs}"));
    let s = trainer::seeds::train_seeds(&cfg, &[1, 2], &RunOptions::default(), &Silent).unwrap();
    assert_eq!(s.seeds.len(), 2);
    let root = tmp.path().join("runs/multi");
    for f in ["summary.json", "summary.md", "seed1/outcome.json", "seed2/best.safetensors"] {
        assert!(root.join(f).exists(), "{f} missing");
    }
    let accs: Vec<f64> = s.seeds.iter().map(|r| r.val_accuracy).collect();
    let mean = accs.iter().sum::<f64>() / 2.0;
    assert!((s.val_accuracy.mean - mean).abs() < 1e-12, "{:?} vs {accs:?}", s.val_accuracy);
    // Different seeds train differently.
    assert_ne!(read_records(&root.join("seed1")), read_records(&root.join("seed2")));

    // The same command again trains nothing: finished seeds are read back unchanged, and a new
    // seed is trained.
    let before = std::fs::read(root.join("seed1/metrics.jsonl")).unwrap();
    let again =
        trainer::seeds::train_seeds(&cfg, &[1, 2, 3], &RunOptions::default(), &Silent).unwrap();
    assert_eq!(again.seeds.len(), 3);
    assert_eq!(std::fs::read(root.join("seed1/metrics.jsonl")).unwrap(), before);
    assert_eq!(again.seeds[0].val_accuracy, s.seeds[0].val_accuracy);
    assert!(root.join("seed3/outcome.json").exists());
}

/// Counts the batches of each epoch.
struct Batches(std::sync::Mutex<Vec<usize>>);
impl trainer::Observer for Batches {
    fn epoch_start(&self, _epoch: usize, _total: usize, _stage: &str, batches: usize) {
        self.0.lock().unwrap().push(batches);
    }
}

#[test]
fn a_calibration_hold_out_is_kept_out_of_training_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let one_epoch = CE_STAGE.replace("epochs = 3", "epochs = 1");
    let mut cfg = config(tmp.path(), "held", &one_epoch);
    cfg.optim.batch_size = 4;
    cfg.data.calib_fraction = Some(0.25);
    cfg.data.split_seed = Some(11);
    cfg.validate().unwrap();
    let obs = Batches(Default::default());
    let out = trainer::train(&cfg, &RunOptions::default(), &obs).unwrap();
    let plan = fer_data::split::SplitPlan::load(&out.dir.join("split.json")).unwrap();
    let held = plan.calibration.clone().expect("split.json records the hold-out");
    // 12 training images per class, a quarter of each held out.
    assert_eq!(held.indices.len(), 7 * 3);
    let train = &plan.part(fer_data::SplitName::Train).unwrap().indices;
    assert_eq!(train.len(), 7 * 9);
    assert!(held.indices.iter().all(|i| !train.contains(i)));
    // The loader saw only the 63 remaining images: 15 full batches of 4.
    assert_eq!(*obs.0.lock().unwrap(), vec![63 / 4]);
    let resolved = std::fs::read_to_string(out.dir.join("config.resolved.toml")).unwrap();
    assert!(resolved.contains("calib_fraction = 0.25"), "{resolved}");

    cfg.data.calib_fraction = Some(1.0);
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("data.calib_fraction"), "{e}");
}

#[test]
fn a_test_split_is_scored_once_at_the_end_and_never_chooses_the_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    config(tmp.path(), "tested", CE_STAGE);
    let path = tmp.path().join("tested.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("val_split = \"val\"", "val_fraction = 0.25\ntest_split = \"val\"");
    std::fs::write(&path, text).unwrap();
    let cfg = ExperimentConfig::load(&path).unwrap();
    cfg.validate().unwrap();
    let out = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap();
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.dir.join("test.json")).unwrap()).unwrap();
    // The synthetic set has 4 validation images per class: 28 PublicTest-like images.
    assert_eq!(t["images"], 28);
    assert_eq!(t["split"], "val");
    assert_eq!(t["best"]["epoch"], out.best_epoch);
    assert_eq!(t["last"]["epoch"], out.records.last().unwrap().epoch);
    for k in ["best", "last"] {
        let acc = t[k]["accuracy"].as_f64().unwrap();
        // A whole number of the 28 images.
        assert!((acc * 28.0 - (acc * 28.0).round()).abs() < 1e-9, "{acc}");
    }
    // Validation came from train: 3 of each class's 12 training images, drawn from the
    // training pool (the plan is stratified, not official), and the last epoch's validation
    // was on those 21 images, not on the 28 of the test split.
    let plan = fer_data::split::SplitPlan::load(&out.dir.join("split.json")).unwrap();
    assert!(!matches!(plan.strategy, fer_data::split::Strategy::Official));
    let val = plan.part(fer_data::SplitName::Val).unwrap();
    assert_eq!(val.indices.len(), 21);
    let last = out.records.last().unwrap().val_accuracy;
    assert!((last * 21.0 - (last * 21.0).round()).abs() < 1e-9, "{last}");
}

/// One typed record of a run: `metrics.jsonl` has one flat column per loss term, and
/// `fer-infer report` reads the run back with the trainer's own best-epoch rule (here with
/// `min_delta`), so it names the epoch whose weights are `best.safetensors`.
#[test]
fn report_names_the_epoch_of_best_safetensors() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let stopping = format!("[early_stopping]\nmin_delta = 0.02\n{CE_STAGE}");
    let cfg = config(tmp.path(), "agree", &stopping);
    let out = trainer::train(&cfg, &RunOptions::default(), &Silent).unwrap();
    let ck = fer_checkpoint::Checkpoint::load(out.dir.join("best.safetensors")).unwrap();
    assert_eq!(ck.extra["epoch"], out.best_epoch.to_string());
    let entries = fer_infer::report::collect(std::slice::from_ref(&out.dir)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].best_epoch, Some(out.best_epoch));
    let best = out.records.iter().find(|r| r.epoch == out.best_epoch).unwrap();
    assert_eq!(entries[0].accuracy, Some(best.val_accuracy));

    let text = std::fs::read_to_string(out.dir.join("metrics.jsonl")).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object().unwrap();
        assert!(obj["loss_cross_entropy"].is_f64(), "{line}");
        assert!(obj.values().all(|x| !x.is_object() && !x.is_array()), "not flat: {line}");
    }
}
