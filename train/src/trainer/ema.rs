//! An exponential moving average of the student's weights (`optim.ema_decay`), the "model EMA"
//! of timm and of most recent ImageNet and FER recipes: validated, checkpointed and tested in
//! place of the raw weights, which keep training.
//!
//! After every optimisation step each floating tensor of the average (parameters and
//! BatchNorm running statistics alike, as timm's `ModelEmaV2`) moves towards the student's by
//! `1 − d`, with `d = min(decay, (1 + t) / (10 + t))` at update `t`: the short warm-up keeps
//! the average from dwelling on the random initialisation. The update is one multi-tensor lerp
//! outside the captured CUDA graph, reading the parameters the replay has just written in
//! place. Integer buffers (BatchNorm's batch counters) are not averaged: [`Ema::sync_counters`]
//! copies them before the average is used, not at every step.

use fer_checkpoint::{CheckOptions, TensorMap};
use fer_models_spec::Graph;
use tch::Tensor;

use crate::error::{Error, Result};
use crate::lower::TchModel;

/// The averaged model and the pairs of tensors it follows.
pub(super) struct Ema {
    /// The averaged weights, a model of the student's graph.
    pub model: TchModel,
    decay: f64,
    updates: u64,
    /// Floating tensors: (average, student), lerped.
    floats: (Vec<Tensor>, Vec<Tensor>),
    /// Other tensors: (average, student), copied by [`Ema::sync_counters`].
    others: Vec<(Tensor, Tensor)>,
}

impl Ema {
    /// An average starting at the student's current weights, laid out as the student is.
    pub fn new(student: &TchModel, graph: Graph, decay: f64) -> Result<Self> {
        let mut model = TchModel::new(graph, student.arch(), student.device(), 0)?;
        model.load_tensor_map(&student.to_tensor_map()?, &CheckOptions::default())?;
        if student.is_channels_last() {
            model.to_channels_last()?;
        }
        let ours: std::collections::BTreeMap<String, Tensor> =
            model.named_tensors().into_iter().map(|(n, _, t)| (n, t)).collect();
        let (mut floats, mut others) = ((Vec::new(), Vec::new()), Vec::new());
        for (name, _, theirs) in student.named_tensors() {
            let mine = ours.get(&name).ok_or_else(|| {
                Error::Input(format!("weight average: the student's `{name}` has no counterpart"))
            })?;
            if theirs.is_floating_point() {
                floats.0.push(mine.shallow_clone());
                floats.1.push(theirs);
            } else {
                others.push((mine.shallow_clone(), theirs));
            }
        }
        Ok(Ema { model, decay, updates: 0, floats, others })
    }

    /// The decay used by update `t` (0-based).
    fn decay_at(&self, t: u64) -> f64 {
        self.decay.min((1.0 + t as f64) / (10.0 + t as f64))
    }

    /// Moves the average one step towards the student's current weights.
    pub fn update(&mut self) -> Result<()> {
        let d = self.decay_at(self.updates);
        tch::no_grad(|| crate::extras::foreach_lerp_(&self.floats.0, &self.floats.1, 1.0 - d))?;
        self.updates += 1;
        Ok(())
    }

    /// Copies the student's integer buffers (BatchNorm's batch counters) into the average:
    /// call before validating, saving or testing it.
    pub fn sync_counters(&self) {
        tch::no_grad(|| {
            for (mine, theirs) in &self.others {
                mine.shallow_clone().copy_(theirs);
            }
        });
    }

    /// Updates made so far (saved with the training state so that `resume` continues the
    /// warm-up where it was).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Restores an average saved by [`Ema::state`] after `updates` updates.
    pub fn load(&mut self, tensors: &TensorMap, updates: u64) -> Result<()> {
        self.model.load_tensor_map(tensors, &CheckOptions::default())?;
        self.updates = updates;
        Ok(())
    }

    /// The averaged weights, by name.
    pub fn state(&self) -> Result<TensorMap> {
        self.model.to_tensor_map()
    }
}
