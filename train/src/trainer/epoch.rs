//! One training epoch and one validation pass.

use std::collections::BTreeMap;
use std::time::Instant;

use fer_data::loader::Loader;
use fer_models_spec::{EMBEDDING_TAP, Preprocess};
use tch::{Device, Kind, Tensor};

use super::Observer;
use super::ema::Ema;
use super::finite::NonFiniteWatch;
use super::graphed::StepRunner;
use super::mix::Mixer;
use super::optim::{Optimizer, Progress, lr_at};
use super::resident::{DeviceBatch, ResidentTrain, ResidentVal};
use super::teacher::Teacher;
use super::teacher_cache::TeacherCache;
use crate::amp::autocast;
use crate::config::{OptimConfig, Precision, StageConfig};
use crate::error::{Error, Result};
use crate::extras::Lr;
use crate::losses::{LossInputs, LossTerm, Target, TeacherOutputs, total_loss};
use crate::lower::{Forward, TchModel};

/// Everything one epoch needs.
pub(super) struct EpochCtx<'a> {
    pub student: &'a TchModel,
    pub teachers: Vec<&'a Teacher>,
    pub loader: &'a Loader,
    /// The training split on the device (`data.device_data`), used instead of `loader`.
    pub resident: Option<&'a ResidentTrain>,
    pub preprocess: &'a Preprocess,
    pub stage: &'a StageConfig,
    pub optim: &'a OptimConfig,
    pub class_weights: Option<&'a Tensor>,
    pub device: Device,
    pub epoch_in_stage: usize,
    pub run_epoch: usize,
    /// The precision in effect (fp32 on the CPU whatever the config says).
    pub precision: Precision,
    /// Mixup/CutMix of whole batches, when the config asks for it.
    pub mixer: Option<&'a Mixer>,
    /// The teachers' logits per image and view (`stages.teacher_cache`), read instead of
    /// running the teachers; needs `resident`.
    pub teacher_cache: Option<&'a TeacherCache>,
}

/// What a training epoch measured (host values, read once at the end of the epoch).
pub(super) struct TrainStats {
    pub loss: f64,
    pub accuracy: f64,
    pub terms: BTreeMap<String, f64>,
    pub images: usize,
    pub lr: f64,
    pub seconds: f64,
}

impl TrainStats {
    /// The statistics of the whole data-parallel epoch: every rank's sums added up (the
    /// images, the loss, the accuracy and each term, weighted by the rank's images).
    pub(super) fn summed_over(
        self,
        p: &super::parallel::Parallel,
        device: Device,
    ) -> Result<TrainStats> {
        let n = self.images as f64;
        let mut v = vec![n, self.loss * n, self.accuracy * n];
        v.extend(self.terms.values().map(|t| t * n));
        let s = p.sum(&v, device)?;
        let total = s[0].max(1.0);
        let terms = self.terms.keys().zip(&s[3..]).map(|(k, t)| (k.clone(), t / total)).collect();
        Ok(TrainStats {
            loss: s[1] / total,
            accuracy: s[2] / total,
            terms,
            images: s[0] as usize,
            ..self
        })
    }
}

/// A batch on the device: model input, labels and soft targets.
fn batch_tensor(
    b: &fer_data::loader::Batch,
    loader: &Loader,
    device: Device,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    use crate::extras::upload;
    let n = b.len() as i64;
    let x = super::pixels::input(b, loader.preprocess(), device)?;
    let y = upload(&b.labels, &[n], device);
    let soft = b.soft.as_ref().map(|s| upload(s, &[n, s.len() as i64 / n.max(1)], device));
    Ok((x, y, soft))
}

fn data_err(source: fer_data::Error) -> Error {
    Error::Data { context: "loading a batch".into(), source }
}

/// The training batches of epoch `order` on the device: made there from the resident split
/// (with the batch's dataset indices, on the device), or built by the loader and uploaded
/// (skipped items are reported to `obs`).
fn device_batches<'a>(
    ctx: &'a EpochCtx,
    order: u64,
    obs: &'a dyn Observer,
) -> Box<dyn Iterator<Item = Result<(DeviceBatch, Option<Tensor>)>> + 'a> {
    if let Some(r) = ctx.resident {
        let ep = r.epoch(order);
        return Box::new(
            (0..ep.len()).map(move |b| Ok((r.batch(&ep, b)?, Some(r.batch_indices(&ep, b))))),
        );
    }
    Box::new(ctx.loader.epoch(order).map(move |batch| {
        let batch = batch.map_err(data_err)?;
        for s in &batch.skipped {
            obs.message(&format!("skipped {}: {}", s.source, s.reason));
        }
        let t = batch_tensor(&batch, ctx.loader, ctx.device)?;
        // The tensors hold copies: the host buffer goes back to the loader.
        ctx.loader.recycle(batch);
        Ok((t, None))
    }))
}

/// What one training step needs besides the batch.
pub(crate) struct StepParts<'a> {
    pub student: &'a TchModel,
    pub teachers: &'a [&'a Teacher],
    /// The student's preprocessing (teachers adapt the batch from it).
    pub preprocess: &'a Preprocess,
    pub loss: &'a [LossTerm],
    pub class_weights: Option<&'a Tensor>,
    pub precision: Precision,
    pub grad_clip_norm: Option<f64>,
    /// Micro-batches per batch (`optim.micro_batches`, gradient accumulation).
    pub micro_batches: usize,
    /// Whether cached teacher rows end with each teacher's weight on the sample
    /// ([`TeacherCache::batch`](super::teacher_cache::TeacherCache::batch)).
    pub cached_weights: bool,
}

/// The student's outputs, the loss and its weighted terms (named), all on the device.
pub(crate) type StepOutput = (Forward, Tensor, Vec<(String, Tensor)>);

/// One optimisation step: forward passes and losses under autocast (bf16/fp16), backward
/// outside it as PyTorch's AMP recipe does, optional clipping, the update. Nothing is read back
/// to the host (except float16's overflow check). Returns the student's outputs, the loss and
/// its weighted terms. With `micro_batches > 1` the batch is forwarded and back-propagated in
/// contiguous parts, each loss weighted by its share of the batch, and the update follows the
/// last (in a data-parallel run only the last backward all-reduces, as DDP's `no_sync`).
///
/// `teacher_logits` (`[B, T, C]`, the teachers in `p.teachers`' order), when given, stand for
/// the teachers' forward passes (`stages.teacher_cache`).
pub(crate) fn train_step(
    p: &StepParts,
    opt: &mut Optimizer,
    x: &Tensor,
    target: Target,
    teacher_logits: Option<&Tensor>,
    lr: Lr,
) -> Result<StepOutput> {
    if p.student.device().is_cuda() && p.student.is_channels_last() {
        crate::extras::channels_last_(x)?;
    }
    opt.zero_grad();
    let parts = p.micro_batches.max(1) as i64;
    let n = x.size()[0];
    if parts == 1 || n < parts {
        let (out, loss, terms) = forward_loss(p, x, target, teacher_logits)?;
        if opt.backward(&loss)? {
            update(p, opt, lr)?;
        }
        return Ok((out, loss, terms));
    }
    let xs = x.chunk(parts, 0);
    let targets: Vec<Tensor> = match target {
        Target::Hard(y) | Target::Soft(y) => y.chunk(parts, 0),
    };
    let soft = matches!(target, Target::Soft(_));
    let cached: Vec<Option<Tensor>> = match teacher_logits {
        Some(c) => c.chunk(parts, 0).into_iter().map(Some).collect(),
        None => xs.iter().map(|_| None).collect(),
    };
    let (mut logits, mut total, mut named) = (Vec::new(), None::<Tensor>, Vec::new());
    let mut finite = true;
    for (i, ((xi, ti), ci)) in xs.iter().zip(&targets).zip(&cached).enumerate() {
        let t = if soft { Target::Soft(ti) } else { Target::Hard(ti) };
        let (out, loss, terms) = forward_loss(p, xi, t, ci.as_ref())?;
        let share = xi.size()[0] as f64 / n as f64;
        let last = i + 1 == xs.len();
        finite &= opt.backward_part(&(&loss * share), last)?;
        logits.push(out.logits.detach());
        let loss = loss.detach() * share;
        total = Some(match total {
            Some(s) => s + loss,
            None => loss,
        });
        for (k, (name, v)) in terms.into_iter().enumerate() {
            let v = v.detach() * share;
            match named.get_mut(k) {
                Some((_, s)) => *s = &*s + v,
                None => named.push((name, v)),
            }
        }
    }
    if finite {
        update(p, opt, lr)?;
    }
    let out = Forward { logits: Tensor::cat(&logits, 0), taps: vec![] };
    Ok((out, total.expect("at least one micro-batch"), named))
}

/// Clipping (when configured) and the update, after backward.
fn update(p: &StepParts, opt: &mut Optimizer, lr: Lr) -> Result<()> {
    if let Some(max) = p.grad_clip_norm {
        let _ = opt.clip_grad_norm(max);
    }
    opt.step_lr(lr)
}

/// The student's (and teachers') forward passes and the loss, under autocast; the teachers'
/// logits come from `cached` (`[B, T, C]`) when given.
fn forward_loss(
    p: &StepParts,
    x: &Tensor,
    target: Target,
    cached: Option<&Tensor>,
) -> Result<StepOutput> {
    let needs_emb = p.loss.iter().any(LossTerm::needs_embedding);
    let taps: &[&str] = if needs_emb { &[EMBEDDING_TAP] } else { &[] };
    let (out, loss, terms) = autocast(p.precision, || -> Result<_> {
        let out = p.student.forward_taps(x, true, taps)?;
        let teacher_out = match cached {
            Some(c) => {
                let classes = c.size()[2] - i64::from(p.cached_weights);
                p.teachers
                    .iter()
                    .enumerate()
                    .map(|(k, t)| {
                        let row = c.select(1, k as i64);
                        let w = p.cached_weights.then(|| row.select(1, classes));
                        (t.name.as_str(), row.narrow(1, 0, classes), None, w)
                    })
                    .collect()
            }
            None => p
                .teachers
                .iter()
                .map(|t| {
                    t.forward(x, p.preprocess).map(|(l, e)| (t.name.as_str(), l, Some(e), None))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let touts: Vec<TeacherOutputs> = teacher_out
            .iter()
            .map(|(name, l, e, w)| TeacherOutputs {
                name,
                logits: Some(l),
                embedding: e.as_ref(),
                weight: w.as_ref(),
            })
            .collect();
        let inputs = LossInputs {
            student_logits: &out.logits,
            student_embedding: out.taps.first(),
            target: Some(target),
            class_weights: p.class_weights,
            teachers: &touts,
        };
        let (loss, terms) = total_loss(p.loss, &inputs)?;
        Ok((out, loss, terms))
    })??;
    Ok((out, loss, terms))
}

/// Trains one epoch; loss values are read back every 20 batches for the progress display.
/// Stops with [`Error::Diverged`] at a non-finite loss (see [`super::finite`]): on the CPU
/// at that step, on CUDA at the next sampled loss or at the end of the epoch.
/// With `ema`, the weight average is updated after every step.
pub(super) fn train_epoch(
    ctx: &EpochCtx,
    opt: &mut Optimizer,
    runner: &mut StepRunner,
    mut ema: Option<&mut Ema>,
    obs: &dyn Observer,
) -> Result<TrainStats> {
    let start = Instant::now();
    let batches = ctx.resident.map_or(ctx.loader.len(), ResidentTrain::batches);
    let base_lr = ctx.stage.lr.unwrap_or(ctx.optim.lr);
    let warmup = ctx.stage.warmup_epochs.unwrap_or(ctx.optim.warmup_epochs);
    let zero = || Tensor::zeros([], (Kind::Float, ctx.device));
    let (mut loss_sum, mut correct) = (zero(), zero());
    let mut term_sums: BTreeMap<String, Tensor> = BTreeMap::new();
    let (mut images, mut lr) = (0usize, base_lr);
    let note = |m: &str| obs.message(m);
    let mut watch = NonFiniteWatch::new();
    for (i, batch) in device_batches(ctx, ctx.run_epoch as u64, obs).enumerate() {
        let ((x, y, soft), indices) = batch?;
        let n = x.size()[0] as usize;
        let at =
            Progress { epoch: ctx.epoch_in_stage, batch: i, batches, epochs: ctx.stage.epochs };
        lr = lr_at(ctx.optim, base_lr, warmup, at);
        let parts = StepParts {
            student: ctx.student,
            teachers: &ctx.teachers,
            preprocess: ctx.preprocess,
            loss: &ctx.stage.loss,
            class_weights: ctx.class_weights,
            precision: ctx.precision,
            grad_clip_norm: ctx.optim.grad_clip_norm,
            micro_batches: ctx.optim.micro_batches,
            cached_weights: ctx.teacher_cache.is_some_and(TeacherCache::weighted),
        };
        let mixed = match ctx.mixer {
            Some(m) => Some(m.mix(ctx.run_epoch, i, &x, &y, soft.as_ref())?),
            None => None,
        };
        let (x, target) = match (&mixed, &soft) {
            (Some((mx, t)), _) => (mx, Target::Soft(t)),
            (None, Some(s)) => (&x, Target::Soft(s)),
            (None, None) => (&x, Target::Hard(&y)),
        };
        let cached = match (ctx.teacher_cache, &indices) {
            (Some(c), Some(idx)) => Some(c.batch(ctx.run_epoch as u64, idx)),
            (Some(_), None) => {
                return Err(Error::Input("the teacher cache needs the device data path".into()));
            }
            (None, _) => None,
        };
        let (out, loss, terms) = runner.step(&parts, opt, x, target, cached.as_ref(), lr, &note)?;
        if let Some(e) = ema.as_deref_mut() {
            e.update()?;
        }
        watch.observe(i, &loss, &terms)?;
        tch::no_grad(|| {
            loss_sum += loss.detach().to_kind(Kind::Float) * n as f64;
            correct += out.logits.argmax(1, false).eq_tensor(&y).sum(Kind::Float);
            for (name, t) in terms {
                let v = t.to_kind(Kind::Float) * n as f64;
                match term_sums.get_mut(&name) {
                    Some(s) => *s += v,
                    None => {
                        term_sums.insert(name, v);
                    }
                }
            }
        });
        images += n;
        let shown = (i % 20 == 0).then(|| loss.double_value(&[]));
        if !ctx.device.is_cuda() || shown.is_some_and(|l| !l.is_finite()) {
            watch.check(ctx.run_epoch, batches)?;
        }
        obs.batch(i + 1, batches, shown);
    }
    if images == 0 {
        return Err(Error::Input("the training split yielded no batch".into()));
    }
    watch.check(ctx.run_epoch, batches)?;
    let per = |t: &Tensor| t.double_value(&[]) / images as f64;
    Ok(TrainStats {
        loss: per(&loss_sum),
        accuracy: per(&correct),
        terms: term_sums.iter().map(|(k, v)| (k.clone(), per(v))).collect(),
        images,
        lr,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Precise BatchNorm before validation: recomputes `model`'s running statistics from the
/// first `ctx.optim.precise_bn_batches` training batches of a shuffle of their own (so the
/// epoch's order is not reused). Returns the number of batches used.
pub(super) fn precise_bn(ctx: &EpochCtx, model: &TchModel) -> Result<usize> {
    let n = ctx.optim.precise_bn_batches;
    if n == 0 {
        return Ok(0);
    }
    let order = ctx.run_epoch as u64 | (1 << 40);
    let batches =
        device_batches(ctx, order, &super::Silent).take(n).map(|b| b.map(|((x, _, _), _)| x));
    autocast(ctx.precision, || model.recalibrate_bn(batches))?
}

/// Validation metrics of one pass.
pub(super) struct ValStats {
    pub loss: f64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub ece: f64,
}

/// Where validation batches come from.
pub(super) enum ValSource<'a> {
    /// Built by the loader each time (and uploaded).
    Loader(&'a Loader),
    /// Preprocessed once, on the device.
    Resident(&'a ResidentVal),
}

/// Runs the model in eval mode over the validation batches and scores it.
pub(super) fn evaluate(
    model: &TchModel,
    val: ValSource,
    device: Device,
    epoch: usize,
    precision: Precision,
) -> Result<ValStats> {
    let k = model.graph().num_classes();
    let mut logits: Vec<f32> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    let mut score = |x: &Tensor| -> Result<()> {
        let out = autocast(precision, || tch::no_grad(|| model.forward_t(x, false)))??;
        let host = out.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view(-1);
        logits.extend(Vec::<f32>::try_from(host).map_err(|source| Error::Torch {
            context: "reading validation logits".into(),
            source,
        })?);
        Ok(())
    };
    match val {
        ValSource::Loader(loader) => {
            for batch in loader.epoch(epoch as u64) {
                let batch = batch.map_err(data_err)?;
                let (x, _, _) = batch_tensor(&batch, loader, device)?;
                score(&x)?;
                labels.extend(batch.labels.iter().map(|&l| l as usize));
                loader.recycle(batch);
            }
        }
        ValSource::Resident(r) => {
            let n = r.input.size()[0];
            let mut start = 0;
            while start < n {
                let len = (r.batch as i64).min(n - start);
                score(&r.input.narrow(0, start, len))?;
                start += len;
            }
            labels.extend_from_slice(&r.labels);
        }
    }
    let probs = fer_metrics::softmax(&logits, k, 1.0);
    let m = |context: &str| {
        let context = context.to_string();
        move |source| Error::Metrics { context, source }
    };
    Ok(ValStats {
        loss: fer_metrics::nll(&probs, &labels, k).map_err(m("validation loss"))?,
        accuracy: fer_metrics::accuracy(&probs, &labels, k).map_err(m("validation accuracy"))?,
        macro_f1: fer_metrics::macro_f1(&probs, &labels, k).map_err(m("validation macro-F1"))?,
        ece: fer_metrics::ece(&probs, &labels, k, 15).map_err(m("validation ECE"))?,
    })
}
