//! SGD and AdamW with PyTorch's update rules, and the learning-rate schedules.
//!
//! Written here (rather than tch's optimizers) so that the state (momentum buffers, Adam moments,
//! step count) can be saved and restored: `resume` must continue to the same result.

use fer_checkpoint::TensorMap;
use fer_models_spec::ParamKind;
use tch::Tensor;

use crate::amp::LossScaler;
use crate::config::{OptimConfig, OptimizerKind, Precision, Schedule};
use crate::error::{Error, Result};
use crate::extras::Lr;
use crate::lower::TchModel;
use crate::weights::{from_host, to_host};

/// Per-parameter optimizer state.
#[derive(Debug)]
enum State {
    Sgd { buf: Option<Tensor> },
    Adam { m: Tensor, v: Tensor },
}

/// An optimizer over the trainable parameters of one model.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimConfig,
    params: Vec<(String, Tensor)>,
    state: Vec<State>,
    step: u64,
    /// Dynamic loss scaling, for float16 only.
    scaler: Option<LossScaler>,
    /// SGD through libtorch's fused multi-tensor kernel (on CUDA).
    fused: bool,
    /// Gradient averaging over the ranks of a data-parallel run.
    sync: Option<crate::dist::GradSync>,
}

impl Optimizer {
    /// A fresh optimizer (no momentum yet) over `model`'s trainable parameters; `precision` is
    /// the one in effect (float16 brings a loss scaler).
    pub fn new(model: &TchModel, cfg: &OptimConfig, precision: Precision) -> Self {
        let params: Vec<(String, Tensor)> = model
            .named_tensors()
            .into_iter()
            .filter(|(_, kind, _)| *kind == ParamKind::Trainable)
            .map(|(n, _, t)| (n, t))
            .collect();
        let state = params
            .iter()
            .map(|(_, p)| match cfg.optimizer {
                OptimizerKind::Sgd => State::Sgd { buf: None },
                OptimizerKind::Adamw => State::Adam { m: p.zeros_like(), v: p.zeros_like() },
            })
            .collect();
        let scaler = (precision == Precision::Fp16).then(LossScaler::default);
        let fused = cfg.optimizer == OptimizerKind::Sgd && model.device().is_cuda();
        Optimizer { cfg: cfg.clone(), params, state, step: 0, scaler, fused, sync: None }
    }

    /// Averages the gradients over `group`'s ranks from now on, while backward runs (c10d's
    /// Reducer over this optimizer's parameters).
    pub fn sync_over(&mut self, group: &crate::dist::Group) -> Result<()> {
        let params: Vec<Tensor> = self.params.iter().map(|(_, p)| p.shallow_clone()).collect();
        self.sync = Some(crate::dist::GradSync::new(group, &params)?);
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Back-propagates `loss`; with a loss scaler, through `loss × scale`, then unscales the
    /// gradients. In a data-parallel run the gradients are then the mean over the ranks.
    /// Returns false when they overflowed (float16): the caller skips this update. Fails when
    /// libtorch does (for example a rank of a data-parallel run died).
    pub fn backward(&mut self, loss: &Tensor) -> Result<bool> {
        self.backward_part(loss, true)
    }

    /// As [`Optimizer::backward`], for one micro-batch of a batch: gradients add up over the
    /// micro-batches, and only the `last` one's backward averages them over the ranks of a
    /// data-parallel run. fp32 or bf16 only (no loss scaler).
    pub fn backward_part(&mut self, loss: &Tensor, last: bool) -> Result<bool> {
        if let (Some(sync), true) = (&self.sync, last) {
            sync.prepare()?;
        }
        let run = |t: &Tensor| {
            t.f_backward().map_err(|source| match &self.sync {
                Some(_) => Error::Distributed(format!(
                    "the gradient all-reduce failed (did another rank stop?): {}",
                    source.to_string().lines().next().unwrap_or("")
                )),
                None => Error::Torch { context: "back-propagating the loss".into(), source },
            })
        };
        match &mut self.scaler {
            None => {
                run(loss)?;
                Ok(true)
            }
            Some(s) => {
                let scaled = s.scale_loss(loss);
                run(&scaled)?;
                let grads: Vec<Tensor> = self.params.iter().map(|(_, p)| p.grad()).collect();
                Ok(s.unscale(&grads))
            }
        }
    }

    /// The float16 loss scale, when there is a scaler.
    pub fn loss_scale(&self) -> Option<f64> {
        self.scaler.as_ref().map(|s| s.scale)
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// Scales gradients so their global L2 norm is at most `max` (as
    /// `torch.nn.utils.clip_grad_norm_`, without a host synchronisation); returns the norm
    /// before clipping, on the device.
    pub fn clip_grad_norm(&self, max: f64) -> Tensor {
        tch::no_grad(|| {
            let grads: Vec<Tensor> =
                self.params.iter().map(|(_, p)| p.grad()).filter(Tensor::defined).collect();
            let norms: Vec<Tensor> =
                grads.iter().map(|g| g.square().sum(tch::Kind::Float)).collect();
            let total = Tensor::stack(&norms, 0).sum(tch::Kind::Float).sqrt();
            let coef = (total.reciprocal() * max).clamp_max(1.0);
            for mut g in grads {
                let _ = g.g_mul_(&coef);
            }
            total
        })
    }

    /// SGD through the fused kernel: the same update as [`Optimizer::step`]'s, in one launch.
    fn fused_sgd_step(&mut self, lr: Lr) -> Result<()> {
        let c = &self.cfg;
        let first = self.step == 1;
        let (mut ps, mut gs, mut bs) = (Vec::new(), Vec::new(), Vec::new());
        for ((_, p), st) in self.params.iter().zip(self.state.iter_mut()) {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            if let State::Sgd { buf } = st {
                if c.momentum != 0.0 {
                    bs.push(buf.get_or_insert_with(|| p.zeros_like()).shallow_clone());
                }
                ps.push(p.shallow_clone());
                gs.push(g);
            }
        }
        crate::extras::fused_sgd(&ps, &gs, &bs, c.weight_decay, c.momentum, lr, c.nesterov, first)
    }

    /// Why a CUDA graph cannot capture this optimizer's step (`None` when it can): only the
    /// fused SGD kernel takes its learning rate from the device, and float16's loss scaler
    /// reads the overflow flag back to the host.
    pub fn graph_obstacle(&self) -> Option<&'static str> {
        if self.sync.is_some() {
            Some("the gradient all-reduce of data-parallel training runs outside the graph")
        } else if self.cfg.micro_batches > 1 {
            Some("micro-batches (optim.micro_batches > 1) are stepped eagerly")
        } else if !self.fused {
            Some("only SGD on CUDA (the fused kernel) can be captured")
        } else if self.scaler.is_some() {
            Some("float16's loss scaling reads back to the host every step")
        } else {
            None
        }
    }

    /// Sets the step count (capture records a step without taking it).
    pub(crate) fn set_steps(&mut self, steps: u64) {
        self.step = steps;
    }

    /// Counts an update made by replaying a captured step (the count is saved with the state).
    pub(crate) fn count_replayed_step(&mut self) {
        self.step += 1;
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) -> Result<()> {
        self.step_lr(Lr::Value(lr))
    }

    /// One update with a host learning rate or, for the fused SGD kernel only, one read from a
    /// device tensor.
    pub(crate) fn step_lr(&mut self, lr: Lr) -> Result<()> {
        self.step += 1;
        if self.fused {
            return self.fused_sgd_step(lr);
        }
        let Lr::Value(lr) = lr else {
            return Err(crate::Error::Input(
                "a learning rate on the device needs the fused SGD step".into(),
            ));
        };
        let c = &self.cfg;
        let t = self.step as i32;
        tch::no_grad(|| {
            for ((_, p), st) in self.params.iter().zip(self.state.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut p = p.shallow_clone();
                match st {
                    State::Sgd { buf } => {
                        let mut d =
                            if c.weight_decay != 0.0 { &g + &p * c.weight_decay } else { g };
                        if c.momentum != 0.0 {
                            let b = match buf {
                                Some(b) => {
                                    let _ = b.g_mul_scalar_(c.momentum).g_add_(&d);
                                    b.shallow_clone()
                                }
                                None => {
                                    let b = d.detach().copy();
                                    *buf = Some(b.shallow_clone());
                                    b
                                }
                            };
                            d = if c.nesterov { d + &b * c.momentum } else { b };
                        }
                        let _ = p.g_sub_(&(d * lr));
                    }
                    State::Adam { m, v } => {
                        let (b1, b2) = (c.betas[0], c.betas[1]);
                        if c.weight_decay != 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                        }
                        let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                        let _ = v.g_mul_scalar_(b2).g_add_(&(g.square() * (1.0 - b2)));
                        let bc1 = 1.0 - b1.powi(t);
                        let bc2 = 1.0 - b2.powi(t);
                        let denom = v.sqrt() / bc2.sqrt() + c.eps;
                        let _ = p.g_sub_(&(&*m / denom * (lr / bc1)));
                    }
                }
            }
        });
        Ok(())
    }

    /// The state as host tensors (`<param>.momentum_buffer`, `<param>.exp_avg`,
    /// `<param>.exp_avg_sq`) and the step count.
    pub fn state_dict(&self) -> Result<(TensorMap, u64)> {
        let mut out = TensorMap::new();
        for ((name, _), st) in self.params.iter().zip(&self.state) {
            match st {
                State::Sgd { buf: Some(b) } => {
                    out.insert(format!("{name}.momentum_buffer"), to_host(b, ParamKind::Buffer)?);
                }
                State::Sgd { buf: None } => {}
                State::Adam { m, v } => {
                    out.insert(format!("{name}.exp_avg"), to_host(m, ParamKind::Buffer)?);
                    out.insert(format!("{name}.exp_avg_sq"), to_host(v, ParamKind::Buffer)?);
                }
            }
        }
        Ok((out, self.step))
    }

    /// Restores what [`Optimizer::state_dict`] saved.
    pub fn load_state_dict(&mut self, map: &TensorMap, step: u64) -> Result<()> {
        self.step = step;
        for ((name, p), st) in self.params.iter().zip(self.state.iter_mut()) {
            // Laid out as the parameter is (channels-last convolutions included): the fused
            // SGD and Adam kernels refuse buffers whose strides differ from their parameter's.
            let get = |suffix: &str| {
                map.get(&format!("{name}.{suffix}")).map(|h| {
                    let mut buf = p.zeros_like();
                    tch::no_grad(|| buf.copy_(&from_host(h).to_device(p.device())));
                    buf
                })
            };
            match st {
                State::Sgd { buf } => *buf = get("momentum_buffer"),
                State::Adam { m, v } => {
                    let missing = || {
                        crate::Error::Input(format!("optimizer state lacks the moments of {name}"))
                    };
                    *m = get("exp_avg").ok_or_else(missing)?;
                    *v = get("exp_avg_sq").ok_or_else(missing)?;
                }
            }
        }
        Ok(())
    }
}

/// Where in a stage an update happens.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Epoch within the stage, from 0.
    pub epoch: usize,
    /// Batch within the epoch, from 0.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Epochs of the stage.
    pub epochs: usize,
}

/// The learning rate of an update: linear warm-up over `warmup_epochs` (per step), then the
/// schedule: cosine from `lr` to `min_lr` over the remaining steps, step decay by `gamma` at each
/// milestone epoch, or constant.
pub fn lr_at(cfg: &OptimConfig, lr: f64, warmup_epochs: usize, at: Progress) -> f64 {
    let step = (at.epoch * at.batches + at.batch) as f64;
    let warm = (warmup_epochs.min(at.epochs) * at.batches) as f64;
    if step < warm {
        return lr * (step + 1.0) / warm;
    }
    match cfg.schedule {
        Schedule::Constant => lr,
        Schedule::Step => {
            let passed = cfg.milestones.iter().filter(|m| at.epoch >= **m).count();
            lr * cfg.gamma.powi(passed as i32)
        }
        Schedule::Cosine => {
            let total = (at.epochs * at.batches) as f64 - warm;
            let t = if total > 0.0 { (step - warm) / total } else { 1.0 };
            cfg.min_lr + (lr - cfg.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use fer_models_spec::{Arch, ArchConfig};

    use super::*;

    /// Resuming a channels-last run restored its momentum as contiguous tensors, which the
    /// fused CUDA SGD kernel refuses ("check_fast_path_restrictions"): every restored buffer
    /// must have its parameter's strides.
    #[test]
    fn restored_buffers_are_laid_out_as_their_parameters() {
        let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(32);
        let graph = fer_models_spec::spec(&cfg).unwrap();
        let model =
            TchModel::new(graph, Some(Arch::MobilenetV3Small), tch::Device::Cpu, 0).unwrap();
        model.to_channels_last().unwrap();
        let optim: OptimConfig = toml::from_str("optimizer = \"sgd\"\nlr = 0.1").unwrap();
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adamw] {
            let optim = OptimConfig { optimizer: kind, ..optim.clone() };
            let mut saved = Optimizer::new(&model, &optim, Precision::Fp32);
            for (_, st) in saved.params.iter().zip(saved.state.iter_mut()) {
                if let State::Sgd { buf } = st {
                    *buf = None;
                }
            }
            let mut map = TensorMap::new();
            for (name, p) in &saved.params {
                let host = to_host(&p.detach().contiguous(), ParamKind::Buffer).unwrap();
                for suffix in ["momentum_buffer", "exp_avg", "exp_avg_sq"] {
                    map.insert(format!("{name}.{suffix}"), host.clone());
                }
            }
            saved.load_state_dict(&map, 3).unwrap();
            let mut four_d = 0;
            for ((name, p), st) in saved.params.iter().zip(&saved.state) {
                let bufs = match st {
                    State::Sgd { buf } => vec![buf.as_ref().unwrap()],
                    State::Adam { m, v } => vec![m, v],
                };
                for b in bufs {
                    assert_eq!(b.stride(), p.stride(), "{name} ({kind:?})");
                    assert!(b.allclose(p, 0.0, 0.0, false), "{name}: the values survive");
                }
                four_d += usize::from(p.dim() == 4 && !p.is_contiguous());
            }
            assert!(four_d >= 1, "the test needs a convolution whose layout channels-last changes");
        }
    }
}
