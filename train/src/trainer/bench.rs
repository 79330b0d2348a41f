//! Training-step throughput on synthetic inputs (`fer-train bench`): the trainer's own step
//! (forward under autocast, losses, backward, optimizer) in a loop, timed after warm-up, for
//! comparison with PyTorch eager on the same GPU (`scripts/gpu/torch_eager_bench.py`).

use std::time::Instant;

use fer_models_spec::{Arch, ArchConfig, Preprocess};
use tch::{Device, Kind, Tensor};

use super::epoch::StepParts;
use super::graphed::StepRunner;
use super::optim::Optimizer;
use super::teacher::Teacher;
use crate::config::{OptimConfig, OptimizerKind, Precision};
use crate::error::Result;
use crate::losses::{LossTerm, Target};
use crate::lower::TchModel;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The student.
    pub arch: Arch,
    /// Input side in pixels.
    pub size: usize,
    /// Images per step.
    pub batch: usize,
    /// fp32, or bf16/fp16 autocast.
    pub precision: Precision,
    /// Channels-last weights and inputs.
    pub channels_last: bool,
    /// A frozen teacher (architecture, input side): the step becomes exp5's (CE + Hinton KD +
    /// RKD distance, the teacher fed at its own size).
    pub teacher: Option<(Arch, usize)>,
    /// Capture the step as a CUDA graph (after the runner's eager steps, within the warm-up),
    /// as training does with `optim.cuda_graphs`.
    pub cuda_graphs: bool,
    /// Untimed steps first (cuDNN autotuning, allocator warm-up).
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
    /// Where to run.
    pub device: Device,
}

/// What was measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// e.g. `mobilenet_v3_small@112`.
    pub model: String,
    /// `ce` or `kd(teacher@size)`.
    pub step: String,
    /// `fp32`, `bf16` or `fp16`.
    pub precision: String,
    /// Channels-last layout.
    pub channels_last: bool,
    /// Images per step.
    pub batch: usize,
    /// Timed steps that were CUDA graph replays (0 when eager).
    pub graph_replays: u64,
    /// Training images per second over the timed steps.
    pub img_per_s: f64,
    /// Mean milliseconds per step.
    pub ms_per_step: f64,
    /// Loss after the last step (finite when the step is sound).
    pub final_loss: f64,
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Runs the benchmark. The SGD settings are those of the FER-2013 configs (lr 0.1 would
/// diverge on random labels, so 0.01; the cost of a step does not depend on it).
pub fn train_throughput(o: &BenchOptions) -> Result<BenchResult> {
    tch::manual_seed(0);
    if o.device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let classes = 7;
    let cfg = ArchConfig::new(o.arch, classes).with_input_size(o.size);
    let student = TchModel::new(fer_models_spec::spec(&cfg)?, Some(o.arch), o.device, 0)?;
    let preprocess = Preprocess::imagenet(o.size, 3);
    let teacher = match o.teacher {
        None => None,
        Some((arch, size)) => {
            let tcfg = ArchConfig::new(arch, classes).with_input_size(size);
            let model = TchModel::new(fer_models_spec::spec(&tcfg)?, Some(arch), o.device, 1)?;
            for (_, _, t) in model.named_tensors() {
                let _ = t.shallow_clone().set_requires_grad(false);
            }
            Some(Teacher {
                name: "teacher".into(),
                model,
                preprocess: Preprocess::imagenet(size, 3),
                weights_sha256: String::new(),
            })
        }
    };
    if o.channels_last && o.device.is_cuda() {
        student.to_channels_last()?;
        if let Some(t) = &teacher {
            t.model.to_channels_last()?;
        }
    }
    let ce = LossTerm::CrossEntropy { weight: 1.0, label_smoothing: 0.1, focal_gamma: 0.0 };
    let loss: Vec<LossTerm> = match &teacher {
        None => vec![ce],
        Some(_) => vec![
            LossTerm::CrossEntropy { weight: 0.5, label_smoothing: 0.1, focal_gamma: 0.0 },
            LossTerm::Kd { weight: 0.5, temperature: 4.0, teacher: None, standardize: false },
            LossTerm::RkdDistance { weight: 25.0, teacher: None },
        ],
    };
    let optim: OptimConfig = toml::from_str(
        "optimizer = \"sgd\"\nlr = 0.01\nmomentum = 0.9\nnesterov = true\nweight_decay = 0.0005",
    )
    .expect("a valid [optim] table");
    debug_assert_eq!(optim.optimizer, OptimizerKind::Sgd);
    let mut opt = Optimizer::new(&student, &optim, o.precision);
    let teachers: Vec<&Teacher> = teacher.iter().collect();
    let parts = StepParts {
        student: &student,
        teachers: &teachers,
        preprocess: &preprocess,
        loss: &loss,
        class_weights: None,
        precision: o.precision,
        grad_clip_norm: None,
        micro_batches: 1,
        cached_weights: false,
    };
    let n = o.batch as i64;
    let s = o.size as i64;
    let x = Tensor::randn([n, 3, s, s], (Kind::Float, o.device));
    let y = Tensor::randint(classes as i64, [n], (Kind::Int64, o.device));
    let note = |m: &str| eprintln!("{m}");
    let mut runner = StepRunner::new(o.cuda_graphs, o.device, &opt, &note)?;
    let mut last = None;
    for _ in 0..o.warmup {
        last = Some(runner.step(&parts, &mut opt, &x, Target::Hard(&y), None, optim.lr, &note)?.1);
    }
    sync(o.device);
    let replays_before = runner.replays();
    let start = Instant::now();
    for _ in 0..o.steps {
        last = Some(runner.step(&parts, &mut opt, &x, Target::Hard(&y), None, optim.lr, &note)?.1);
    }
    sync(o.device);
    let secs = start.elapsed().as_secs_f64();
    let step = match o.teacher {
        None => "ce".to_string(),
        Some((a, sz)) => format!("kd({a}@{sz})"),
    };
    Ok(BenchResult {
        model: format!("{}@{}", o.arch, o.size),
        step,
        precision: format!("{:?}", o.precision).to_lowercase(),
        channels_last: o.channels_last,
        batch: o.batch,
        graph_replays: runner.replays() - replays_before,
        img_per_s: (o.steps * o.batch) as f64 / secs,
        ms_per_step: secs * 1e3 / o.steps.max(1) as f64,
        final_loss: last.map_or(f64::NAN, |l| l.double_value(&[])),
    })
}
