//! The toolkit's own checkpoints: a `.safetensors` file whose `__metadata__` carries the
//! [`ModelMeta`] and free-form string pairs (epoch, git commit, config hash, ...).

use std::collections::BTreeMap;
use std::path::Path;

use fer_models_spec::ModelMeta;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::safetensors_file::{read_safetensors, write_safetensors};
use crate::tensor::{TensorData, TensorMap};

/// Metadata key of the checkpoint format version.
pub const VERSION_KEY: &str = "fer.checkpoint_version";
/// Metadata key of the JSON-encoded [`ModelMeta`].
pub const MODEL_META_KEY: &str = "fer.model_meta";
/// Version written by [`Checkpoint::save`]; newer versions are refused on load.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A trained model: its metadata, its tensors, and extra string pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Architecture, labels, preprocessing, temperature.
    pub meta: ModelMeta,
    /// Parameters and buffers by torchvision name.
    pub tensors: TensorMap,
    /// Free-form pairs (the trainer stores epoch, git commit, config hash); keys must not be
    /// [`VERSION_KEY`] or [`MODEL_META_KEY`].
    pub extra: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Writes the checkpoint atomically (temporary file in the same directory, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut meta = BTreeMap::new();
        for (k, v) in &self.extra {
            if k == VERSION_KEY || k == MODEL_META_KEY {
                return Err(Error::Format {
                    path: path.to_path_buf(),
                    msg: format!("extra key `{k}` is reserved for the checkpoint format"),
                });
            }
            meta.insert(k.clone(), v.clone());
        }
        let json = serde_json::to_string(&self.meta).map_err(|source| Error::Meta {
            path: path.to_path_buf(),
            key: MODEL_META_KEY.into(),
            source,
        })?;
        meta.insert(VERSION_KEY.into(), CHECKPOINT_VERSION.to_string());
        meta.insert(MODEL_META_KEY.into(), json);
        write_safetensors(path, &self.tensors, &meta)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (tensors, mut extra) = read_safetensors(path)?;
        let fmt = |msg: String| Error::Format { path: path.to_path_buf(), msg };
        let version = extra.remove(VERSION_KEY).ok_or_else(|| {
            fmt(format!(
                "no `{VERSION_KEY}` in the metadata: a plain .safetensors file, not a toolkit \
                 checkpoint"
            ))
        })?;
        match version.parse::<u32>() {
            Ok(v) if v <= CHECKPOINT_VERSION => {}
            Ok(v) => {
                return Err(fmt(format!(
                    "checkpoint version {v} is newer than this toolkit's {CHECKPOINT_VERSION}"
                )));
            }
            Err(_) => return Err(fmt(format!("`{VERSION_KEY}` is {version:?}, not a number"))),
        }
        let json = extra
            .remove(MODEL_META_KEY)
            .ok_or_else(|| fmt(format!("no `{MODEL_META_KEY}` in the metadata")))?;
        let meta = serde_json::from_str(&json).map_err(|source| Error::Meta {
            path: path.to_path_buf(),
            key: MODEL_META_KEY.into(),
            source,
        })?;
        Ok(Checkpoint { meta, tensors, extra })
    }
}

/// SHA-256 (lowercase hex) of the tensors' names, element types, shapes and little-endian
/// bytes, in name order: equal for equal weights whatever file they came from.
pub fn sha256_of_tensors(tensors: &TensorMap) -> String {
    let mut h = Sha256::new();
    h.update((tensors.len() as u64).to_le_bytes());
    for (name, t) in tensors {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((t.shape.len() as u64).to_le_bytes());
        for d in &t.shape {
            h.update((*d as u64).to_le_bytes());
        }
        match &t.data {
            TensorData::F32(v) => {
                h.update(b"f32");
                for c in v.chunks(4096) {
                    h.update(c.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
                }
            }
            TensorData::I64(v) => {
                h.update(b"i64");
                for c in v.chunks(4096) {
                    h.update(c.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
                }
            }
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
