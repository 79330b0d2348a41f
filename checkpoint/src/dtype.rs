//! Element types of stored tensors and their little-endian decoding.

use crate::tensor::TensorData;

/// Element type of a torch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDtype {
    /// `torch.float32`.
    F32,
    /// `torch.float64`.
    F64,
    /// `torch.float16`.
    F16,
    /// `torch.bfloat16`.
    BF16,
    /// `torch.int64`.
    I64,
    /// `torch.int32`.
    I32,
    /// `torch.int16`.
    I16,
    /// `torch.int8`.
    I8,
    /// `torch.uint8` (also untyped storages).
    U8,
    /// `torch.uint16` (safetensors `U16`).
    U16,
    /// `torch.uint32` (safetensors `U32`).
    U32,
    /// `torch.bool`.
    Bool,
}

impl StorageDtype {
    /// The dtype of a `torch.<Name>Storage` class.
    pub fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" | "UntypedStorage" => Self::U8,
            "UInt16Storage" => Self::U16,
            "UInt32Storage" => Self::U32,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F16 | Self::BF16 | Self::I16 | Self::U16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

impl StorageDtype {
    /// Decodes little-endian elements: floats to f32, integers and bools to i64. A trailing
    /// partial element is ignored (callers check lengths).
    pub fn decode_le(self, b: &[u8]) -> TensorData {
        fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
            b.chunks_exact(N).map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                a
            })
        }
        match self {
            Self::F32 => TensorData::F32(chunks(b).map(f32::from_le_bytes).collect()),
            Self::F64 => TensorData::F32(chunks(b).map(|a| f64::from_le_bytes(a) as f32).collect()),
            Self::F16 => {
                TensorData::F32(chunks(b).map(|a| half::f16::from_le_bytes(a).to_f32()).collect())
            }
            Self::BF16 => {
                TensorData::F32(chunks(b).map(|a| half::bf16::from_le_bytes(a).to_f32()).collect())
            }
            Self::I64 => TensorData::I64(chunks(b).map(i64::from_le_bytes).collect()),
            Self::I32 => {
                TensorData::I64(chunks(b).map(|a| i64::from(i32::from_le_bytes(a))).collect())
            }
            Self::I16 => {
                TensorData::I64(chunks(b).map(|a| i64::from(i16::from_le_bytes(a))).collect())
            }
            Self::U32 => {
                TensorData::I64(chunks(b).map(|a| i64::from(u32::from_le_bytes(a))).collect())
            }
            Self::U16 => {
                TensorData::I64(chunks(b).map(|a| i64::from(u16::from_le_bytes(a))).collect())
            }
            Self::I8 => TensorData::I64(b.iter().map(|x| i64::from(*x as i8)).collect()),
            Self::U8 | Self::Bool => TensorData::I64(b.iter().map(|x| i64::from(*x)).collect()),
        }
    }
}
