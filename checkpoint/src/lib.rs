//! Weights on disk: torchvision `.pth` (PyTorch zip + pickle), `.safetensors`, our checkpoints.
//!
//! No libtorch: `export` and `infer` read weights through this crate too.
//!
//! - [`load_weights`] reads either format, chosen by content;
//! - [`check_against`] compares weights with a model spec and lists every difference;
//! - [`Checkpoint`] is the trainer's output: tensors plus [`fer_models_spec::ModelMeta`].

pub mod atomic;
pub mod check;
pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod cli;
pub mod dtype;
pub mod error;
pub mod error_line;
pub mod pickle;
mod pickle_vm;
pub mod pth;
pub mod safetensors_file;
pub mod tensor;

use std::io::Read;
use std::path::Path;

pub use atomic::{WriteError, write_atomic, write_atomic_with};
pub use check::{CheckOptions, Mismatch, WrongShape, check_against, classifier_params};
pub use checkpoint::{Checkpoint, sha256_of_tensors};
pub use error::{Error, Result};
pub use error_line::error_line;
pub use pth::read_pth;
pub use safetensors_file::{read_safetensors, write_safetensors};
pub use tensor::{HostTensor, TensorData, TensorMap, first_non_finite};

/// Reads weights from a PyTorch `.pth` (zip) or a `.safetensors` file, recognised by content,
/// not by extension.
pub fn load_weights(path: impl AsRef<Path>) -> Result<TensorMap> {
    let path = path.as_ref();
    let mut head = [0u8; 9];
    let mut n = 0;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(|e| Error::io(path, e))? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    if head.starts_with(b"PK") || (head.len() >= 2 && head[0] == 0x80 && head[1] <= 5) {
        // Zip, or a legacy pickle that `read_pth` explains.
        return read_pth(path);
    }
    if head.len() == 9 && head[8] == b'{' {
        return read_safetensors(path).map(|(t, _)| t);
    }
    Err(Error::Format {
        path: path.to_path_buf(),
        msg: "not a PyTorch .pth or .safetensors file".into(),
    })
}
