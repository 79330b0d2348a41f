//! One training epoch and one validation pass.

use std::collections::BTreeMap;
use std::time::Instant;

use fer_data::loader::Loader;
use fer_models_spec::{EMBEDDING_TAP, Preprocess};
use tch::{Device, Kind, Tensor};

use super::Observer;
use super::optim::{Optimizer, Progress, lr_at};
use super::teacher::Teacher;
use crate::config::{OptimConfig, StageConfig};
use crate::error::{Error, Result};
use crate::losses::{LossInputs, LossTerm, Target, TeacherOutputs, total_loss};
use crate::lower::TchModel;

/// Everything one epoch needs.
pub(super) struct EpochCtx<'a> {
    pub student: &'a TchModel,
    pub teachers: Vec<&'a Teacher>,
    pub loader: &'a Loader,
    pub preprocess: &'a Preprocess,
    pub stage: &'a StageConfig,
    pub optim: &'a OptimConfig,
    pub class_weights: Option<&'a Tensor>,
    pub device: Device,
    pub epoch_in_stage: usize,
    pub run_epoch: usize,
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

fn batch_tensor(b: &fer_data::loader::Batch, device: Device) -> (Tensor, Tensor, Option<Tensor>) {
    let [n, c, h, w] = b.shape.map(|d| d as i64);
    let x = Tensor::from_slice(&b.images).view([n, c, h, w]).to_device(device);
    let y = Tensor::from_slice(&b.labels).to_device(device);
    let soft = b.soft.as_ref().map(|s| Tensor::from_slice(s).view([n, -1]).to_device(device));
    (x, y, soft)
}

fn data_err(source: fer_data::Error) -> Error {
    Error::Data { context: "loading a batch".into(), source }
}

/// Trains one epoch; loss values are read back every 20 batches for the progress display.
pub(super) fn train_epoch(
    ctx: &EpochCtx,
    opt: &mut Optimizer,
    obs: &dyn Observer,
) -> Result<TrainStats> {
    let start = Instant::now();
    let batches = ctx.loader.len();
    let needs_emb = ctx.stage.loss.iter().any(LossTerm::needs_embedding);
    let taps: &[&str] = if needs_emb { &[EMBEDDING_TAP] } else { &[] };
    let base_lr = ctx.stage.lr.unwrap_or(ctx.optim.lr);
    let warmup = ctx.stage.warmup_epochs.unwrap_or(ctx.optim.warmup_epochs);
    let zero = || Tensor::zeros([], (Kind::Float, ctx.device));
    let (mut loss_sum, mut correct) = (zero(), zero());
    let mut term_sums: BTreeMap<String, Tensor> = BTreeMap::new();
    let (mut images, mut lr) = (0usize, base_lr);
    // Mixed precision is not wired yet (tch 0.24 exposes autocast without its dtype, which
    // would silently mean fp16 for a bf16 config): every precision trains in fp32, and the
    // session says so at start.
    let mixed = false;
    for (i, batch) in ctx.loader.epoch(ctx.run_epoch as u64).enumerate() {
        let batch = batch.map_err(data_err)?;
        for s in &batch.skipped {
            obs.message(&format!("skipped {}: {}", s.source, s.reason));
        }
        let (x, y, soft) = batch_tensor(&batch, ctx.device);
        let n = batch.len();
        let at =
            Progress { epoch: ctx.epoch_in_stage, batch: i, batches, epochs: ctx.stage.epochs };
        lr = lr_at(ctx.optim, base_lr, warmup, at);
        let forward = || ctx.student.forward_taps(&x, true, taps);
        // tch's autocast toggles libtorch's (deprecated) global switch even when disabled: only
        // touch it for mixed precision.
        let out = if mixed { tch::autocast(true, forward)? } else { forward()? };
        let teacher_out = ctx
            .teachers
            .iter()
            .map(|t| t.forward(&x, ctx.preprocess).map(|(l, e)| (t.name.as_str(), l, e)))
            .collect::<Result<Vec<_>>>()?;
        let touts: Vec<TeacherOutputs> = teacher_out
            .iter()
            .map(|(name, l, e)| TeacherOutputs { name, logits: Some(l), embedding: Some(e) })
            .collect();
        let target = match &soft {
            Some(s) => Target::Soft(s),
            None => Target::Hard(&y),
        };
        let inputs = LossInputs {
            student_logits: &out.logits,
            student_embedding: out.taps.first(),
            target: Some(target),
            class_weights: ctx.class_weights,
            teachers: &touts,
        };
        let (loss, terms) = total_loss(&ctx.stage.loss, &inputs)?;
        opt.zero_grad();
        loss.backward();
        if let Some(max) = ctx.optim.grad_clip_norm {
            let _ = opt.clip_grad_norm(max);
        }
        opt.step(lr);
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
        obs.batch(i + 1, batches, shown);
    }
    if images == 0 {
        return Err(Error::Input("the training split yielded no batch".into()));
    }
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

/// Validation metrics of one pass.
pub(super) struct ValStats {
    pub loss: f64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub ece: f64,
}

/// Runs the model in eval mode over `loader` and scores it.
pub(super) fn evaluate(
    model: &TchModel,
    loader: &Loader,
    device: Device,
    epoch: usize,
) -> Result<ValStats> {
    let k = model.graph().num_classes();
    let mut logits: Vec<f32> = Vec::with_capacity(loader.len() * k);
    let mut labels: Vec<usize> = Vec::new();
    for batch in loader.epoch(epoch as u64) {
        let batch = batch.map_err(data_err)?;
        let (x, _, _) = batch_tensor(&batch, device);
        let out = tch::no_grad(|| model.forward_t(&x, false))?;
        let host = out.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view(-1);
        logits.extend(Vec::<f32>::try_from(host).map_err(|source| Error::Torch {
            context: "reading validation logits".into(),
            source,
        })?);
        labels.extend(batch.labels.iter().map(|&l| l as usize));
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
