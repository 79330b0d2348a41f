//! The trainer's side of data-parallel training ([`crate::dist`]): which device a rank trains
//! on, its shard of the data, and keeping the ranks' models identical.
//!
//! Every rank builds the same student from the same seed; rank 0's weights are broadcast once
//! anyway (as `DistributedDataParallel` does), so that a resumed or initialised run starts
//! equal everywhere. The Reducer then keeps the parameters equal (every rank applies the same
//! averaged gradient). BatchNorm's running statistics drift apart (each rank normalises its
//! own batches, as DDP without `SyncBatchNorm`): rank 0's are broadcast after every epoch,
//! before validation, so that every rank validates, selects and stops on the same model.

use fer_data::loader::Shard;
use fer_models_spec::ParamKind;
use tch::{Device, Kind, Tensor};

use crate::dist::{DistEnv, Group};
use crate::error::{Error, Result};
use crate::lower::TchModel;

/// A rank's membership of a data-parallel run.
pub(crate) struct Parallel {
    pub group: Group,
}

impl Parallel {
    /// Joins the run the launcher's environment describes, or `None` for a single process.
    /// Returns the rank's training device too: `cuda:LOCAL_RANK` when `device` is CUDA.
    pub fn join(device: Device) -> Result<Option<(Parallel, Device)>> {
        let Some(env) = DistEnv::from_env()? else { return Ok(None) };
        let device = match device {
            Device::Cuda(_) => {
                let count = tch::Cuda::device_count() as usize;
                if env.local_rank >= count {
                    return Err(Error::Distributed(format!(
                        "LOCAL_RANK = {} but this machine has {count} CUDA device(s)",
                        env.local_rank
                    )));
                }
                Device::Cuda(env.local_rank)
            }
            d => d,
        };
        let group = Group::init(&env, device)?;
        Ok(Some((Parallel { group }, device)))
    }

    /// This rank's share of every training epoch, in batches of `batch`.
    pub fn shard(&self, batch: usize) -> Shard {
        Shard { rank: self.group.rank(), world: self.group.world(), batch }
    }

    /// Copies rank 0's parameters and buffers into every rank's `model`.
    pub fn sync_model(&self, model: &TchModel) -> Result<()> {
        self.broadcast(model, |_| true)
    }

    /// Copies rank 0's BatchNorm statistics (buffers and counters) into every rank's `model`.
    pub fn sync_buffers(&self, model: &TchModel) -> Result<()> {
        self.broadcast(model, |k| k != ParamKind::Trainable)
    }

    fn broadcast(&self, model: &TchModel, keep: impl Fn(ParamKind) -> bool) -> Result<()> {
        let ts: Vec<Tensor> = model
            .named_tensors()
            .into_iter()
            .filter(|(_, kind, _)| keep(*kind))
            .map(|(_, _, t)| t)
            .collect();
        if ts.is_empty() {
            return Ok(());
        }
        tch::no_grad(|| self.group.broadcast(&ts, 0))
    }

    /// Rank 0's `flag`, on every rank.
    pub fn agree(&self, flag: bool, device: Device) -> Result<bool> {
        let t = Tensor::from_slice(&[i64::from(flag)]).to_device(device);
        self.group.broadcast(std::slice::from_ref(&t), 0)?;
        Ok(t.int64_value(&[0]) != 0)
    }

    /// Sums the host values over the ranks (the epoch's loss and accuracy sums).
    pub fn sum(&self, values: &[f64], device: Device) -> Result<Vec<f64>> {
        let t = Tensor::from_slice(values).to_kind(Kind::Double).to_device(device);
        self.group.allreduce_sum(std::slice::from_ref(&t))?;
        Vec::<f64>::try_from(t.to_device(Device::Cpu))
            .map_err(|source| Error::Torch { context: "reading summed values".into(), source })
    }
}
