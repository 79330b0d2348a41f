//! Weights on disk: torchvision `.pth` (PyTorch zip + pickle), `.safetensors`, our checkpoints.
//!
//! No libtorch: `export` and `infer` read weights through this crate too.

pub mod tensor;

pub use tensor::{HostTensor, TensorData, TensorMap};
pub mod error;

pub use error::{Error, Result};
