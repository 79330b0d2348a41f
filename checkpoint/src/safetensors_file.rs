//! `.safetensors` files: a JSON header (with an optional `__metadata__` string map) and raw
//! little-endian tensor bytes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, View};

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
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    let data = match dtype {
        Dtype::F32 => TensorData::F32(chunks(b).map(f32::from_le_bytes).collect()),
        Dtype::F64 => TensorData::F32(chunks(b).map(|a| f64::from_le_bytes(a) as f32).collect()),
        Dtype::F16 => {
            TensorData::F32(chunks(b).map(|a| half::f16::from_le_bytes(a).to_f32()).collect())
        }
        Dtype::BF16 => {
            TensorData::F32(chunks(b).map(|a| half::bf16::from_le_bytes(a).to_f32()).collect())
        }
        Dtype::I64 => TensorData::I64(chunks(b).map(i64::from_le_bytes).collect()),
        Dtype::I32 => {
            TensorData::I64(chunks(b).map(|a| i64::from(i32::from_le_bytes(a))).collect())
        }
        Dtype::I16 => {
            TensorData::I64(chunks(b).map(|a| i64::from(i16::from_le_bytes(a))).collect())
        }
        Dtype::U32 => {
            TensorData::I64(chunks(b).map(|a| i64::from(u32::from_le_bytes(a))).collect())
        }
        Dtype::U16 => {
            TensorData::I64(chunks(b).map(|a| i64::from(u16::from_le_bytes(a))).collect())
        }
        Dtype::I8 => TensorData::I64(b.iter().map(|x| i64::from(*x as i8)).collect()),
        Dtype::U8 | Dtype::BOOL => TensorData::I64(b.iter().map(|x| i64::from(*x)).collect()),
        other => return Err(format!("dtype {other:?} is not supported")),
    };
    let t = HostTensor { shape: shape.to_vec(), data };
    let len = match &t.data {
        TensorData::F32(v) => v.len(),
        TensorData::I64(v) => v.len(),
    };
    if len != t.numel() {
        return Err(format!("{len} values for shape {shape:?}"));
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
    write_atomic(path, &bytes)
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
