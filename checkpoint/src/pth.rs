//! `torch.save` files: a zip archive holding `<archive>/data.pkl` and raw little-endian storages
//! `<archive>/data/<key>`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::pickle::{Pickle, TensorRef, Value, unpickle};
use crate::tensor::{HostTensor, TensorMap};

/// Keys of a checkpoint dict under which a state dict may be nested, tried in this order.
pub const NESTED_STATE_DICT_KEYS: [&str; 3] = ["state_dict", "model", "model_state_dict"];

/// Prefix `nn.DataParallel` adds to every key; removed when every key has it.
pub const DATA_PARALLEL_PREFIX: &str = "module.";

/// How to re-save a pre-1.6 file.
const LEGACY_HINT: &str = "this is PyTorch's legacy (pre-1.6, non-zip) serialization format, \
     which is not read; re-save it with torch >= 1.6: \
     `torch.save(torch.load(\"old.pth\"), \"new.pth\")`";

/// Reads the state dict that `torch.save(model.state_dict(), path)` wrote.
///
/// The state dict may be the top-level dict or nested in a checkpoint dict under one of
/// [`NESTED_STATE_DICT_KEYS`] (tried first, in order). Values that are not tensors are ignored,
/// and a [`DATA_PARALLEL_PREFIX`] shared by every key is stripped. Floating-point tensors become
/// f32, integer and bool tensors i64; strided views are copied out densely.
pub fn read_pth(path: impl AsRef<Path>) -> Result<TensorMap> {
    let path = path.as_ref();
    let fmt = |msg: String| Error::Format { path: path.to_path_buf(), msg };
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 4];
    let n = read_prefix(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
    if n >= 2 && magic[0] == 0x80 && magic[1] <= 5 {
        return Err(fmt(LEGACY_HINT.into()));
    }
    if n < 4 || &magic[..2] != b"PK" {
        return Err(fmt("not a PyTorch zip checkpoint (no zip signature)".into()));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|source| Error::Zip { path: path.to_path_buf(), source })?;

    let pkl_name = zip
        .file_names()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .min()
        .map(str::to_string)
        .ok_or_else(|| fmt("zip archive has no `<archive>/data.pkl` entry".into()))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    if let Some(order) = read_entry_opt(&mut zip, &format!("{prefix}byteorder"), path)?
        && order.trim_ascii() != b"little"
    {
        return Err(fmt(format!(
            "storages are stored {:?}-endian; only little-endian is read",
            String::from_utf8_lossy(&order)
        )));
    }
    let pkl = read_entry(&mut zip, &pkl_name, path)?;
    let pickle = unpickle(&pkl).map_err(|msg| fmt(format!("{pkl_name}: {msg}")))?;
    let entries = find_state_dict(&pickle).map_err(fmt)?;

    let mut storages: HashMap<String, Rc<Vec<u8>>> = HashMap::new();
    let mut out = TensorMap::new();
    for (name, t) in &entries {
        let bytes = match storages.get(&t.storage.key) {
            Some(b) => b.clone(),
            None => {
                let entry = format!("{prefix}data/{}", t.storage.key);
                let b = Rc::new(read_entry(&mut zip, &entry, path)?);
                storages.insert(t.storage.key.clone(), b.clone());
                b
            }
        };
        let tensor = materialize(t, &bytes).map_err(|m| fmt(format!("tensor `{name}`: {m}")))?;
        out.insert(name.clone(), tensor);
    }
    Ok(strip_prefix(out))
}

fn read_prefix(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

type Zip = zip::ZipArchive<BufReader<File>>;

fn read_entry_opt(zip: &mut Zip, name: &str, path: &Path) -> Result<Option<Vec<u8>>> {
    let mut entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(source) => return Err(Error::Zip { path: path.to_path_buf(), source }),
    };
    let mut buf = Vec::new();
    entry.read_to_end(&mut buf).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        msg: format!("reading zip entry `{name}`: {e}"),
    })?;
    Ok(Some(buf))
}

fn read_entry(zip: &mut Zip, name: &str, path: &Path) -> Result<Vec<u8>> {
    read_entry_opt(zip, name, path)?.ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        msg: format!("zip archive has no entry `{name}`"),
    })
}

/// The `(name, tensor)` entries of the state dict: the first dict under one of
/// [`NESTED_STATE_DICT_KEYS`] that holds tensors, else the top-level dict.
fn find_state_dict(p: &Pickle) -> Result<Vec<(String, TensorRef)>, String> {
    let Some(top) = p.dict(&p.top) else {
        return Err("data.pkl does not hold a dict (expected a state_dict)".into());
    };
    let tensors_of = |items: &[(Value, Value)]| -> Vec<(String, TensorRef)> {
        items
            .iter()
            .filter_map(|(k, v)| match (k, p.tensor(v)) {
                (Value::Str(k), Some(t)) => Some((k.to_string(), t.clone())),
                _ => None,
            })
            .collect()
    };
    // A state dict's values are tensors, never dicts: a nested one means a checkpoint dict,
    // even when that also holds a few tensors of its own.
    for key in NESTED_STATE_DICT_KEYS {
        let nested = top.iter().find(|(k, _)| matches!(k, Value::Str(s) if &**s == key));
        if let Some(items) = nested.and_then(|(_, v)| p.dict(v)) {
            let found = tensors_of(items);
            if !found.is_empty() {
                return Ok(found);
            }
        }
    }
    let direct = tensors_of(top);
    if !direct.is_empty() {
        return Ok(direct);
    }
    let keys: Vec<String> = top
        .iter()
        .take(20)
        .map(|(k, _)| match k {
            Value::Str(s) => format!("{s:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    Err(format!(
        "no tensors at the top level nor under {NESTED_STATE_DICT_KEYS:?}; top-level keys: [{}]",
        keys.join(", ")
    ))
}

/// Removes [`DATA_PARALLEL_PREFIX`] when every name starts with it.
fn strip_prefix(map: TensorMap) -> TensorMap {
    if map.is_empty() || !map.keys().all(|k| k.starts_with(DATA_PARALLEL_PREFIX)) {
        return map;
    }
    map.into_iter().map(|(k, v)| (k[DATA_PARALLEL_PREFIX.len()..].to_string(), v)).collect()
}

/// Copies a (possibly strided) view out of its storage into a dense tensor.
fn materialize(t: &TensorRef, bytes: &[u8]) -> Result<HostTensor, String> {
    let dtype = t.storage.dtype;
    let el = dtype.size();
    if !bytes.len().is_multiple_of(el) {
        return Err(format!(
            "storage `{}` has {} bytes, not whole {el}-byte elements",
            t.storage.key,
            bytes.len()
        ));
    }
    let avail = (bytes.len() / el) as u64;
    let shape: Vec<usize> = t
        .size
        .iter()
        .map(|d| usize::try_from(*d).map_err(|_| format!("dimension {d} too large")))
        .collect::<Result<_, _>>()?;
    let numel = shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if numel == 0 {
        return Ok(HostTensor { shape, data: dtype.decode_le(&[]) });
    }
    let last =
        t.size.iter().zip(&t.stride).try_fold(t.offset, |a, (s, st)| {
            (s - 1).checked_mul(*st).and_then(|x| a.checked_add(x))
        });
    match last {
        Some(last) if last < avail => {}
        _ => {
            return Err(format!(
                "view (offset {}, size {:?}, stride {:?}) reaches past storage `{}` \
                 of {avail} elements",
                t.offset, t.size, t.stride, t.storage.key
            ));
        }
    }
    let offset = t.offset as usize;
    if is_contiguous(t) {
        return Ok(HostTensor {
            shape,
            data: dtype.decode_le(&bytes[offset * el..][..numel * el]),
        });
    }
    // Strided view: copy the elements' bytes in row-major order, then decode.
    let mut gathered: Vec<u8> = Vec::new();
    gathered.try_reserve_exact(numel * el).map_err(|e| format!("{numel} elements: {e}"))?;
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..numel {
        let at = idx.iter().zip(&t.stride).fold(offset, |a, (i, st)| a + i * *st as usize);
        gathered.extend_from_slice(&bytes[at * el..][..el]);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(HostTensor { shape, data: dtype.decode_le(&gathered) })
}

/// Whether the view's elements are consecutive in row-major order (dimensions of size 1 may
/// have any stride).
fn is_contiguous(t: &TensorRef) -> bool {
    let mut expect = 1u64;
    for (s, st) in t.size.iter().zip(&t.stride).rev() {
        if *s != 1 && *st != expect {
            return false;
        }
        expect *= *s;
    }
    true
}
