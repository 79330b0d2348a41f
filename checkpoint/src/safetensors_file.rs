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
    let st_err = |e| Error::Format { path: path.to_path_buf(), msg: explain(&bytes, e) };
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

/// One sentence for a file the `safetensors` crate refused (its own messages are bare enum
/// names such as `MetadataIncompleteBuffer`): the header is read again here to name the tensor
/// and the byte ranges at fault.
fn explain(bytes: &[u8], e: safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    let total = bytes.len();
    let declared = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    match e {
        E::HeaderTooSmall => {
            format!("not a safetensors file: {total} bytes, fewer than the 8-byte header length")
        }
        E::HeaderTooLarge | E::InvalidHeaderLength => format!(
            "not a safetensors file, or a truncated one: the first 8 bytes declare a {}-byte \
             header, but the file has {} bytes after them",
            declared.unwrap_or(0),
            total.saturating_sub(8)
        ),
        E::InvalidHeader | E::InvalidHeaderStart => {
            "not a safetensors file: the header is not a JSON object".to_string()
        }
        E::InvalidHeaderDeserialization | E::JsonError(_) => {
            "the safetensors header is not valid: it is not a JSON map of tensor names to \
             {dtype, shape, data_offsets}"
                .to_string()
        }
        E::TensorInvalidInfo | E::MetadataIncompleteBuffer | E::ValidationOverflow => {
            let n = declared.unwrap_or(0) as usize;
            let data = total.saturating_sub(8 + n);
            locate(bytes.get(8..8 + n).unwrap_or_default(), data)
                .unwrap_or_else(|| format!("the tensors do not cover the {data} data bytes"))
        }
        E::InvalidOffset(name) => format!("tensor `{name}`: its data_offsets are not valid"),
        E::InvalidTensorView(dtype, shape, len) => {
            format!("a tensor of {dtype:?} {shape:?} cannot be read from {len} bytes")
        }
        E::TensorNotFound(name) => format!("tensor `{name}` is missing"),
        other => format!("not a valid safetensors file ({other:?})"),
    }
}

/// The first tensor whose entry in `header` (JSON) disagrees with its bytes, or the gap
/// between tensors, as a sentence; `data` is the length of the data part.
fn locate(header: &[u8], data: usize) -> Option<String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    let mut spans = Vec::new();
    for (name, v) in map.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = v.get("dtype")?.as_str()?;
        let shape: Vec<u64> =
            v.get("shape")?.as_array()?.iter().map(|d| d.as_u64()).collect::<Option<_>>()?;
        let off: Vec<u64> =
            v.get("data_offsets")?.as_array()?.iter().map(|d| d.as_u64()).collect::<Option<_>>()?;
        let [a, b] = off[..] else {
            return Some(format!("tensor `{name}`: data_offsets must be two numbers"));
        };
        let size = match dtype {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            _ => 1,
        };
        let numel = shape.iter().try_fold(1u64, |p, &d| p.checked_mul(d));
        let need = numel.and_then(|n| n.checked_mul(size));
        let Some(need) = need else {
            return Some(format!("tensor `{name}`: shape {shape:?} is too large to exist"));
        };
        if b < a || b - a != need {
            return Some(format!(
                "tensor `{name}`: {dtype} {shape:?} needs {need} bytes, its data_offsets \
                 [{a}, {b}] give {}",
                b.saturating_sub(a)
            ));
        }
        if b > data as u64 {
            return Some(format!(
                "tensor `{name}`: data_offsets [{a}, {b}] run past the end of the data \
                 ({data} bytes; the file is truncated)"
            ));
        }
        spans.push((a, b, name));
    }
    spans.sort();
    let mut end = 0;
    for (a, b, name) in &spans {
        if *a != end {
            return Some(format!(
                "tensor `{name}` starts at data byte {a}, but the previous tensor ends at {end} \
                 (a gap or an overlap)"
            ));
        }
        end = *b;
    }
    (end != data as u64)
        .then(|| format!("the tensors end at data byte {end}, but the data part has {data} bytes"))
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
