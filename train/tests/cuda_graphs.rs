//! CUDA graph capture of the training step (`optim.cuda_graphs`): the same run with and without
//! it must train the same model. Needs a CUDA device, so the tests are ignored by default; on the
//! GPU machine: `cargo test --release -p fer-train --test cuda_graphs -- --ignored`.

use std::cell::RefCell;
use std::path::Path;

use fer_train::config::ExperimentConfig;
use fer_train::trainer::{self, Observer, RunOptions, RunOutcome};

/// Collects the trainer's messages.
#[derive(Default)]
struct Notes(RefCell<Vec<String>>);

impl Observer for Notes {
    fn message(&self, msg: &str) {
        self.0.borrow_mut().push(msg.to_string());
    }
}

/// 280 training images: with batch 32, eight full batches and a partial one per epoch, so both
/// the replayed step and the eager fallback for another shape run every epoch.
fn synth(dir: &Path) {
    let cfg =
        fer_data::synth::SynthConfig { seed: 3, train_per_class: 40, val_per_class: 6, size: 48 };
    fer_data::synth::write_fer_folder(&dir.join("data"), &cfg).unwrap();
}

/// MobileNetV3-Small at half width, 48 px, SGD with a per-step warm-up and cosine schedule (a
/// graph that baked the learning rate in would train differently).
fn config(dir: &Path, name: &str, graphs: bool, precision: &str, extra: &str) -> ExperimentConfig {
    config_on(dir, name, graphs, precision, extra, "auto")
}

/// [`config`] with `data.device_data` set.
fn config_on(
    dir: &Path,
    name: &str,
    graphs: bool,
    precision: &str,
    extra: &str,
    device_data: &str,
) -> ExperimentConfig {
    let text = format!(
        r#"
version = 1
name = "{name}"
seed = 7
device = "cuda"
output_dir = "runs"
[data]
format = "fer2013-folder"
root = "data"
train_split = "train"
val_split = "val"
workers = 2
device_data = "{device_data}"
[model]
arch = "mobilenet_v3_small"
num_classes = 7
width_mult = 0.5
input_size = 48
[optim]
optimizer = "sgd"
lr = 0.05
momentum = 0.9
nesterov = true
weight_decay = 0.0005
warmup_epochs = 1
batch_size = 32
precision = "{precision}"
channels_last = true
cuda_graphs = {graphs}
{extra}
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, &text).unwrap();
    ExperimentConfig::load(&path).unwrap()
}

const CE_STAGE: &str = r#"
[[stages]]
name = "train"
epochs = 2
[[stages.loss]]
kind = "cross_entropy"
weight = 1.0
label_smoothing = 0.1
"#;

fn run(cfg: &ExperimentConfig) -> (RunOutcome, Vec<String>) {
    let notes = Notes::default();
    let out = trainer::train(cfg, &RunOptions::default(), &notes).unwrap();
    (out, notes.0.into_inner())
}

/// Largest |a − b| / max(1, max |b|) over every float tensor of two checkpoints.
fn weight_diff(a: &Path, b: &Path) -> f64 {
    let (ta, _) = fer_checkpoint::read_safetensors(a).unwrap();
    let (tb, _) = fer_checkpoint::read_safetensors(b).unwrap();
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    let mut worst = 0f64;
    for (name, x) in &ta {
        let (x, y) = (x.to_f32(), tb[name].to_f32());
        let scale = y.iter().fold(1f32, |m, v| m.max(v.abs())) as f64;
        let d = x.iter().zip(y.iter()).fold(0f32, |m, (p, q)| m.max((p - q).abs())) as f64;
        worst = worst.max(d / scale);
    }
    worst
}

fn compare(eager: &RunOutcome, graphed: &RunOutcome, notes: &[String], tol: f64) {
    assert!(
        notes.iter().any(|n| n.contains("captured as a CUDA graph")),
        "the graphed run never captured its step: {notes:?}"
    );
    assert!(!notes.iter().any(|n| n.contains("CUDA graphs off")), "{notes:?}");
    for (e, g) in eager.records.iter().zip(&graphed.records) {
        let rel = (e.train_loss - g.train_loss).abs() / e.train_loss;
        assert!(
            rel <= tol,
            "epoch {}: train loss {} eager vs {} graphed",
            e.epoch,
            e.train_loss,
            g.train_loss
        );
        assert!(
            (e.val_loss - g.val_loss).abs() / e.val_loss <= tol,
            "epoch {}: val loss {} eager vs {} graphed",
            e.epoch,
            e.val_loss,
            g.val_loss
        );
    }
    let d = weight_diff(&eager.dir.join("last.safetensors"), &graphed.dir.join("last.safetensors"));
    eprintln!("eager vs graphed: weights differ by {d:e} (relative)");
    assert!(d <= tol, "weights differ by {d:e} (relative) after training");
}

/// `cfg` with `optim.deterministic` (deterministic cuDNN algorithms, no autotuning) and, when
/// `dropout` is false, no dropout.
fn repeatable(mut cfg: ExperimentConfig, dropout: bool) -> ExperimentConfig {
    let mut sets = vec!["optim.deterministic=true".to_string()];
    if !dropout {
        sets.push("model.dropout=0.0".to_string());
    }
    cfg.apply_overrides(&sets).unwrap();
    cfg
}

/// Two eager runs of one seed on the device data path, with deterministic cuDNN: the same
/// model bit for bit (the data path draws nothing at random that a seed does not fix).
#[test]
#[ignore = "needs a CUDA device"]
fn two_eager_runs_on_the_device_path_train_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = |name| repeatable(config_on(tmp.path(), name, false, "fp32", CE_STAGE, "on"), true);
    let (a, _) = run(&cfg("a"));
    let (b, _) = run(&cfg("b"));
    let d = weight_diff(&a.dir.join("last.safetensors"), &b.dir.join("last.safetensors"));
    eprintln!("two eager runs, deterministic cuDNN: {d:e}");
    assert_eq!(d, 0.0, "weights differ by {d:e} (relative) between two eager runs");
}

/// Graphed and eager, deterministic cuDNN, no dropout: the same kernels on the same data, so
/// the same model bit for bit (replay changes how kernels are launched, not what they compute;
/// the learning rate read from a device scalar is the same float).
#[test]
#[ignore = "needs a CUDA device"]
fn a_graphed_run_trains_the_same_model_as_an_eager_one() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = |name, graphs| repeatable(config(tmp.path(), name, graphs, "fp32", CE_STAGE), false);
    let (eager, _) = run(&cfg("eager", false));
    let (graphed, notes) = run(&cfg("graphed", true));
    compare(&eager, &graphed, &notes, 0.0);
}

/// The same with batches from the CPU loader (`data.device_data = "off"`).
#[test]
#[ignore = "needs a CUDA device"]
fn a_graphed_run_on_the_cpu_loader_trains_the_same_model_as_an_eager_one() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = |name, graphs| {
        repeatable(config_on(tmp.path(), name, graphs, "fp32", CE_STAGE, "off"), false)
    };
    let (eager, _) = run(&cfg("eager", false));
    let (graphed, notes) = run(&cfg("graphed", true));
    compare(&eager, &graphed, &notes, 0.0);
}

/// With dropout (MobileNetV3's classifier, 0.2): the replayed graph draws the masks eager
/// steps draw (the generator's offsets advance alike), so the same model again.
#[test]
#[ignore = "needs a CUDA device"]
fn with_dropout_a_graphed_run_trains_the_same_model_as_an_eager_one() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = |name, graphs| repeatable(config(tmp.path(), name, graphs, "fp32", CE_STAGE), true);
    let (eager, _) = run(&cfg("eager", false));
    let (graphed, notes) = run(&cfg("graphed", true));
    compare(&eager, &graphed, &notes, 0.0);
}

#[test]
#[ignore = "needs a CUDA device"]
fn a_graphed_distillation_run_with_bf16_and_a_resized_teacher_matches_eager() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let (teacher, _) = run(&config(tmp.path(), "teacher", false, "fp32", CE_STAGE));
    // exp5's loss; the teacher sees the batch resized to 64 px (adapted inside the graph).
    let kd = format!(
        r#"
[[teachers]]
name = "t"
checkpoint = "{}"
input_size = 64
[[stages]]
name = "hybrid"
epochs = 2
[[stages.loss]]
kind = "cross_entropy"
weight = 0.5
[[stages.loss]]
kind = "kd"
weight = 0.5
temperature = 4.0
[[stages.loss]]
kind = "rkd_distance"
weight = 25.0
"#,
        teacher.dir.join("best.safetensors").display()
    );
    let (eager, _) = run(&config(tmp.path(), "kd_eager", false, "bf16", &kd));
    let (graphed, notes) = run(&config(tmp.path(), "kd_graphed", true, "bf16", &kd));
    // bf16 rounds at 3 significant digits, so algorithm choices show more.
    compare(&eager, &graphed, &notes, 2e-2);
}

/// A distillation stage (CE, KD and decoupled KD, which reads the labels) reading cached
/// teacher logits (`teacher_cache`, `augment.views`) on the device path: graphed = eager bit for bit (the cached rows are a graph input copied in
/// like the batch), and both train what the stage trains with the teacher in the step (close,
/// not equal: cuDNN may pick other algorithms for the fill's batches).
#[test]
#[ignore = "needs a CUDA device"]
fn a_graphed_stage_with_cached_teacher_logits_matches_eager_and_the_uncached_stage() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let (teacher, _) = run(&config(tmp.path(), "teacher", false, "fp32", CE_STAGE));
    let kd = |cache: bool| {
        format!(
            r#"
[augment]
views = 3
[[teachers]]
name = "t"
checkpoint = "{}"
input_size = 64
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
temperature = 2.0
[[stages.loss]]
kind = "dkd"
weight = 0.25
temperature = 2.0
beta = 2.0
"#,
            teacher.dir.join("best.safetensors").display()
        )
    };
    let cfg = |name, graphs, cache| {
        repeatable(config_on(tmp.path(), name, graphs, "fp32", &kd(cache), "on"), false)
    };
    let (eager, notes) = run(&cfg("cached_eager", false, true));
    assert!(notes.iter().any(|n| n.contains("teacher outputs cached")), "{notes:?}");
    let (graphed, notes) = run(&cfg("cached_graphed", true, true));
    compare(&eager, &graphed, &notes, 0.0);
    let (in_step, _) = run(&cfg("in_step", false, false));
    let d = weight_diff(&in_step.dir.join("last.safetensors"), &eager.dir.join("last.safetensors"));
    eprintln!("teacher in the step vs cached: weights differ by {d:e} (relative)");
    assert!(d <= 1e-3, "weights differ by {d:e} (relative)");
}
