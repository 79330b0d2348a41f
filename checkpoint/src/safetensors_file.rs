//! `.safetensors` files: a JSON header (with an optional `__metadata__` string map) and raw
//! little-endian tensor bytes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, View};

use crate::dtype::StorageDtype;
use crate::error::{Error, Result};
use crate::tensor::{HostTensor, TensorData, TensorMap};

/// Reads every tensor and the `__metadata__` map (empty if absent).
///
/// F32, F16, BF16 and F64 become f32; I64, I32, I16, I8, U8, U16, U32 and BOOL become i64.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<(TensorMap, BTreeMap<String, String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st_err = |source| Error::SafeTensors { path: path.to_path_buf(), source };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(st_err)?;
    let metadata: BTreeMap<String, String> =
        meta.metadata().clone().unwrap_or_default().into_iter().collect();
    let st = SafeTensors::deserialize(&bytes).map_err(st_err)?;
    let mut out = TensorMap::new();
    for (name, view) in st.iter() {
        let t = convert(view.dtype(), view.shape(), view.data()).map_err(|msg| Error::Format {
            path: path.to_path_buf(),
            msg: format!("tensor `{name}`: {msg}"),
        })?;
        out.insert(name.to_string(), t);
    }
    Ok((out, metadata))
}

fn convert(dtype: Dtype, shape: &[usize], b: &[u8]) -> Result<HostTensor, String> {
    let d = match dtype {
        Dtype::F32 => StorageDtype::F32,
        Dtype::F64 => StorageDtype::F64,
        Dtype::F16 => StorageDtype::F16,
        Dtype::BF16 => StorageDtype::BF16,
        Dtype::I64 => StorageDtype::I64,
        Dtype::I32 => StorageDtype::I32,
        Dtype::I16 => StorageDtype::I16,
        Dtype::I8 => StorageDtype::I8,
        Dtype::U8 => StorageDtype::U8,
        Dtype::U16 => StorageDtype::U16,
        Dtype::U32 => StorageDtype::U32,
        Dtype::BOOL => StorageDtype::Bool,
        other => return Err(format!("dtype {other:?} is not supported")),
    };
    let t = HostTensor { shape: shape.to_vec(), data: d.decode_le(b) };
    if b.len() != t.numel() * d.size() {
        return Err(format!("{} bytes for shape {shape:?} of {dtype:?}", b.len()));
    }
    Ok(t)
}

/// A [`HostTensor`] as safetensors sees it: F32 or I64, little-endian.
struct AsView<'a>(&'a HostTensor);

impl View for AsView<'_> {
    fn dtype(&self) -> Dtype {
        match self.0.data {
            TensorData::F32(_) => Dtype::F32,
            TensorData::I64(_) => Dtype::I64,
        }
    }

    fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        match &self.0.data {
            TensorData::F32(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            TensorData::I64(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        }
    }

    fn data_len(&self) -> usize {
        match &self.0.data {
            TensorData::F32(v) => v.len() * 4,
            TensorData::I64(v) => v.len() * 8,
        }
    }
}

/// Writes `tensors` (F32 and I64) and `metadata` as `__metadata__`, atomically: the bytes go to
/// a temporary file in the same directory, which then replaces `path`.
pub fn write_safetensors(
    path: impl AsRef<Path>,
    tensors: &TensorMap,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    for (name, t) in tensors {
        let len = match &t.data {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        };
        if len != t.numel() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                msg: format!("tensor `{name}` has {len} values for shape {:?}", t.shape),
            });
        }
    }
    let info: Option<HashMap<String, String>> =
        if metadata.is_empty() { None } else { Some(metadata.clone().into_iter().collect()) };
    let bytes = safetensors::serialize(tensors.iter().map(|(k, v)| (k, AsView(v))), &info)
        .map_err(|source| Error::SafeTensors { path: path.to_path_buf(), source })?;
    Ok(crate::atomic::write_atomic(path, &bytes)?)
}
