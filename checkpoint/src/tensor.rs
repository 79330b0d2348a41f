//! Host-side tensors: what every reader returns and every writer takes.

use std::collections::BTreeMap;

/// Element values of a [`HostTensor`]. Floating-point storages of any width are widened or
/// narrowed to f32 on load; integer storages become i64.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// Floating-point values.
    F32(Vec<f32>),
    /// Integer values (for example BatchNorm's `num_batches_tracked`).
    I64(Vec<i64>),
}

/// A dense, row-major (C-contiguous) tensor in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape; empty for a scalar.
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: TensorData,
}

impl HostTensor {
    /// A float tensor. Panics in debug builds if the length does not match the shape.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        HostTensor { shape, data: TensorData::F32(values) }
    }

    /// An integer tensor.
    pub fn i64(shape: Vec<usize>, values: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        HostTensor { shape, data: TensorData::I64(values) }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// How many values are NaN or infinite (integer tensors have none).
    pub fn non_finite_count(&self) -> usize {
        match &self.data {
            TensorData::F32(v) => v.iter().filter(|x| !x.is_finite()).count(),
            TensorData::I64(_) => 0,
        }
    }

    /// The values as f32 (integers converted), borrowed when already f32.
    pub fn to_f32(&self) -> std::borrow::Cow<'_, [f32]> {
        match &self.data {
            TensorData::F32(v) => std::borrow::Cow::Borrowed(v),
            TensorData::I64(v) => std::borrow::Cow::Owned(v.iter().map(|x| *x as f32).collect()),
        }
    }
}

/// Named tensors, as a `state_dict`. Sorted by name; use the graph's
/// [`params`](fer_models_spec::Graph::params) for module order.
pub type TensorMap = BTreeMap<String, HostTensor>;

/// The first tensor of `map` (by name) holding a NaN or an infinity, with how many such values
/// it holds; `None` when every value is finite. A diverged training run leaves such weights.
pub fn first_non_finite(map: &TensorMap) -> Option<(&str, usize)> {
    map.iter().find_map(|(name, t)| {
        let n = t.non_finite_count();
        (n > 0).then_some((name.as_str(), n))
    })
}
