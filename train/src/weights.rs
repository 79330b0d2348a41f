//! Moving weights between a [`TchModel`] and host tensors (torchvision `.pth`, `.safetensors`,
//! our checkpoints).

use std::path::Path;

use fer_checkpoint::{CheckOptions, HostTensor, TensorData, TensorMap};
use fer_models_spec::ParamKind;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::lower::TchModel;

/// A tensor copied to host memory (counters as i64, everything else as f32).
pub(crate) fn to_host(t: &Tensor, kind: ParamKind) -> Result<HostTensor> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.detach().to_device(tch::Device::Cpu).contiguous().view(-1);
    let err = |source| Error::Torch { context: "copying a tensor to the host".into(), source };
    Ok(match kind {
        ParamKind::Counter => {
            HostTensor::i64(shape, Vec::<i64>::try_from(flat.to_kind(Kind::Int64)).map_err(err)?)
        }
        _ => HostTensor::f32(shape, Vec::<f32>::try_from(flat.to_kind(Kind::Float)).map_err(err)?),
    })
}

/// A host tensor as a CPU tch tensor of the same shape.
pub(crate) fn from_host(h: &HostTensor) -> Tensor {
    let shape: Vec<i64> = h.shape.iter().map(|&d| d as i64).collect();
    match &h.data {
        TensorData::F32(v) => Tensor::from_slice(v).reshape(&shape),
        TensorData::I64(v) => Tensor::from_slice(v).reshape(&shape),
    }
}

impl TchModel {
    /// Copies `weights` into the model after checking every name and shape against the graph
    /// (one error lists all mismatches). With `opts.skip_classifier`, the final Linear layer keeps
    /// its fresh initialisation (fine-tuning to another number of classes).
    pub fn load_tensor_map(&mut self, weights: &TensorMap, opts: &CheckOptions) -> Result<()> {
        fer_checkpoint::check_against(self.graph(), weights, opts)?;
        let skip = if opts.skip_classifier {
            fer_checkpoint::classifier_params(self.graph())
        } else {
            vec![]
        };
        tch::no_grad(|| {
            for (name, _, mut var) in self.named_tensors() {
                if skip.contains(&name) {
                    continue;
                }
                if let Some(h) = weights.get(&name) {
                    let src = from_host(h).to_device(var.device()).to_kind(var.kind());
                    var.copy_(&src);
                }
            }
        });
        Ok(())
    }

    /// Loads a torchvision `.pth`, a `.safetensors` state dict or one of our checkpoints' tensors.
    pub fn load_weights_file(&mut self, path: &Path, opts: &CheckOptions) -> Result<()> {
        let weights = fer_checkpoint::load_weights(path)?;
        self.load_tensor_map(&weights, opts)
    }

    /// Every named tensor as host memory, named by torchvision's `state_dict` keys.
    pub fn to_tensor_map(&self) -> Result<TensorMap> {
        self.named_tensors()
            .into_iter()
            .map(|(name, kind, t)| Ok((name, to_host(&t, kind)?)))
            .collect()
    }
}
