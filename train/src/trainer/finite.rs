//! Stopping a diverging run at the first training step whose loss is NaN or infinite.
//!
//! Reading the loss back after every step would add a host synchronisation per step on CUDA.
//! Instead each step folds its loss and weighted terms into a small device tensor that holds,
//! for each of them, the index of the first step where it was not finite
//! ([`NonFiniteWatch::observe`]: a few tiny kernels, nothing read back). The tensor is read
//! ([`NonFiniteWatch::check`]) at the end of the epoch, when a loss sampled for the progress
//! display is already non-finite, and after every step on the CPU, where reading is free.
//! So a run stops with the epoch, the step and the terms that went non-finite, before any
//! checkpoint of that epoch is written.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// "No non-finite value seen yet" in the first-step tensor.
const NEVER: i64 = i64::MAX;

fn torch(context: &str) -> impl FnOnce(tch::TchError) -> Error + '_ {
    move |source| Error::Torch { context: context.into(), source }
}

/// The first non-finite step of the loss and of each term, on the device.
pub(super) struct NonFiniteWatch {
    /// `[1 + terms]` int64: the loss first, then the terms in `names` order.
    first: Option<Tensor>,
    /// The terms' names, as `total_loss` labels them.
    names: Vec<String>,
}

impl NonFiniteWatch {
    /// A watch with nothing seen.
    pub fn new() -> Self {
        NonFiniteWatch { first: None, names: Vec::new() }
    }

    /// Records step `step` (0-based): its loss and weighted terms. Reads nothing back.
    pub fn observe(
        &mut self,
        step: usize,
        loss: &Tensor,
        terms: &[(String, Tensor)],
    ) -> Result<()> {
        let mut values =
            vec![loss.detach().f_to_kind(Kind::Float).map_err(torch("checking the loss"))?];
        for (_, t) in terms {
            values.push(t.detach().f_to_kind(Kind::Float).map_err(torch("checking a loss term"))?);
        }
        let values = Tensor::f_stack(&values, 0).map_err(torch("checking the loss"))?;
        let finite = values.f_isfinite().map_err(torch("checking the loss"))?;
        let at = Tensor::f_where_scalar(&finite, NEVER, step as i64)
            .and_then(|t| t.f_to_kind(Kind::Int64))
            .map_err(torch("checking the loss"))?;
        self.first = Some(match self.first.take() {
            Some(f) => f.f_minimum(&at).map_err(torch("checking the loss"))?,
            None => {
                self.names = terms.iter().map(|(n, _)| n.clone()).collect();
                at
            }
        });
        Ok(())
    }

    /// Reads the watch back (one synchronisation): an [`Error::Diverged`] naming `epoch`, the
    /// first non-finite step (1-based, of `steps`) and the terms non-finite at that step.
    pub fn check(&self, epoch: usize, steps: usize) -> Result<()> {
        let Some(first) = &self.first else { return Ok(()) };
        let host = first.f_to_device(Device::Cpu).map_err(torch("reading the loss check"))?;
        let at = Vec::<i64>::try_from(&host).map_err(torch("reading the loss check"))?;
        let step = match at.iter().min() {
            Some(&s) if s != NEVER => s,
            _ => return Ok(()),
        };
        let terms = self
            .names
            .iter()
            .zip(&at[1..])
            .filter(|&(_, &s)| s == step)
            .map(|(n, _)| n.clone())
            .collect();
        Err(Error::Diverged { epoch, step: step as usize + 1, steps, terms })
    }
}
