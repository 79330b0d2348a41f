//! The `[optim]` and `[early_stopping]` sections.

use serde::{Deserialize, Serialize};

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// SGD with momentum (optionally Nesterov) and coupled (L2) weight decay, as `torch.optim.SGD`.
    Sgd,
    /// AdamW (Loshchilov & Hutter 2019), decoupled weight decay, as `torch.optim.AdamW`.
    Adamw,
}

/// Numeric precision of the forward and backward passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in float32.
    #[default]
    Fp32,
    /// CUDA autocast to bfloat16 (weights, optimiser state and losses stay float32).
    Bf16,
    /// CUDA autocast to float16 with dynamic loss scaling.
    Fp16,
}

/// Learning-rate schedule of each stage (it restarts at every stage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Cosine decay, per step, from the stage's lr to `min_lr` at the stage's last step.
    #[default]
    Cosine,
    /// The lr is multiplied by `gamma` at each epoch of `milestones`.
    Step,
    /// The stage's lr throughout.
    Constant,
}

fn default_momentum() -> f64 {
    0.9
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_batch_size() -> usize {
    64
}
fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
}
fn is_one(n: &usize) -> bool {
    *n == 1
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn default_gamma() -> f64 {
    0.1
}

/// The `[optim]` section: optimiser, batch, precision and learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// `sgd` or `adamw` (required).
    pub optimizer: OptimizerKind,
    /// Peak learning rate, `> 0` (required); a stage may override it.
    pub lr: f64,
    /// SGD momentum in `[0, 1)`. Default 0.9. Ignored by AdamW.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Nesterov momentum (SGD only; needs `momentum > 0`). Default false.
    #[serde(default)]
    pub nesterov: bool,
    /// AdamW's `(β1, β2)`, each in `[0, 1)`. Default `[0.9, 0.999]`. Ignored by SGD.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// AdamW's ε, `> 0`. Default 1e-8. Ignored by SGD.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Weight decay, `≥ 0` (L2 for SGD, decoupled for AdamW), on every trainable parameter, as
    /// `torch.optim` with one parameter group. Default 0.
    #[serde(default)]
    pub weight_decay: f64,
    /// Training batch size in images, `≥ 1`. Default 64.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Gradient accumulation: every batch is forwarded and back-propagated as this many equal
    /// micro-batches (contiguous parts of it), and the optimizer steps once after the last, on
    /// the gradient of the whole batch. For batches larger than the device holds at once.
    /// BatchNorm normalises each micro-batch with its own statistics, as each rank of a
    /// data-parallel run does with its share: `batch_size = 16, micro_batches = 2` in one
    /// process trains what two ranks with `batch_size = 8` train. `batch_size` must be a
    /// multiple; fp32 or bf16 only. Default 1.
    #[serde(default = "default_one", skip_serializing_if = "is_one")]
    pub micro_batches: usize,
    /// Clip the global gradient L2 norm to this value (`> 0`). Default: no clipping.
    #[serde(default)]
    pub grad_clip_norm: Option<f64>,
    /// `fp32`, `bf16` or `fp16`. Mixed precision is CUDA autocast: on the CPU the trainer
    /// computes in fp32 (and logs it). Default `fp32`.
    #[serde(default)]
    pub precision: Precision,
    /// `cosine`, `step` or `constant`. Default `cosine`.
    #[serde(default)]
    pub schedule: Schedule,
    /// Epochs of linear warm-up (per step, from near 0 to the stage's lr) at the start of every
    /// stage, before the schedule; must be less than each stage's `epochs`. Default 0.
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Cosine only: the lr reached at the stage's end, `0 ≤ min_lr < lr`. Default 0.
    #[serde(default)]
    pub min_lr: f64,
    /// Step only: epochs (counted from the stage's start, strictly increasing, `≥ 1`) at which
    /// the lr is multiplied by `gamma`. Default: none.
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Step only: the factor applied at each milestone, in `(0, 1]`. Default 0.1.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Precise BatchNorm: before each validation, recompute every BatchNorm's running mean and
    /// variance as the plain average over this many training batches (forward only, no
    /// gradient), instead of the exponential average kept during training. Needed when the
    /// weights move faster than BN's momentum follows: MobileNetV3 (momentum 0.01) on a short
    /// schedule otherwise validates at chance. 0 turns it off. Default 0.
    #[serde(default)]
    pub precise_bn_batches: usize,
    /// Channels-last (NHWC) weights and inputs on CUDA, as PyTorch's
    /// `model.to(memory_format=torch.channels_last)`; faster convolutions with bf16/fp16.
    /// Ignored on the CPU. Default false.
    #[serde(default)]
    pub channels_last: bool,
    /// Capture the training step as a CUDA graph after a few eager steps and replay it for
    /// every batch of the same shape: one launch per step instead of hundreds, which is what
    /// bounds small students on a fast GPU. Needs SGD (the fused kernel) and fp32 or bf16;
    /// otherwise, and on the CPU, training runs eagerly with a note. Default true.
    #[serde(default = "default_true")]
    pub cuda_graphs: bool,
    /// Let cuDNN time its algorithms for every new convolution shape and keep the fastest
    /// (`torch.backends.cudnn.benchmark`). Off, cuDNN's heuristics choose at once. Measured on
    /// an H200 (docs/benchmarks.md): for MobileNetV3-Large at 112 px the timing costs 20 s in
    /// the first epoch and saves 3 % of each later one, so it pays only after hundreds of
    /// epochs. CUDA only. Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cudnn_benchmark: bool,
    /// CUDA: deterministic cuDNN algorithms and no autotuning (`cudnn.deterministic = True`,
    /// `benchmark = False`), so that a seed gives the same weights run after run on one GPU
    /// (slower steps; docs/reproducibility.md). The CPU is deterministic anyway. Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deterministic: bool,
    /// Keep an exponential moving average of the weights (and BatchNorm statistics), moved
    /// towards the trained weights by `1 − decay` after every step, and validate, checkpoint and
    /// test the average instead of the raw weights (timm's model EMA). In `(0, 1)`; with `S`
    /// steps per epoch the average spans about `1 / ((1 − decay)·S)` epochs (0.999 at 100
    /// steps per epoch: 10). Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_decay: Option<f64>,
}

/// A validation metric that selects the best epoch (owned by [`fer_metrics::run`], which also
/// holds the rule that `fer-infer report` replays).
pub use fer_metrics::run::Metric;

/// The `[early_stopping]` section: the metric that selects `best.safetensors`, and when a
/// stage stops early (the type and its rule live in [`fer_metrics::run`]).
pub use fer_metrics::run::EarlyStopping as EarlyStoppingConfig;
