//! Reading an ONNX file without running it: the graph's input and outputs and the
//! `metadata_props` key/value pairs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;

use crate::error::{Error, Result};

/// One axis of a declared tensor shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named, dynamic size (ONNX `dim_param`, for example `batch`), or an unnamed one.
    Symbol(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbol(s) if s.is_empty() => f.write_str("?"),
            Dim::Symbol(s) => f.write_str(s),
        }
    }
}

/// A named graph input or output with its declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorDecl {
    /// The tensor name, for example `input` or `logits`.
    pub name: String,
    /// The declared shape, `None` when the file declares none.
    pub shape: Option<Vec<Dim>>,
}

impl TensorDecl {
    /// The fixed size of axis `i`, if declared and fixed.
    pub fn fixed(&self, i: usize) -> Option<usize> {
        match self.shape.as_ref()?.get(i)? {
            Dim::Fixed(n) => Some(*n),
            Dim::Symbol(_) => None,
        }
    }

    /// The shape as text, for example `[batch, 3, 112, 112]`.
    pub fn shape_text(&self) -> String {
        match &self.shape {
            None => "[unknown shape]".into(),
            Some(dims) => {
                let d: Vec<String> = dims.iter().map(Dim::to_string).collect();
                format!("[{}]", d.join(", "))
            }
        }
    }
}

/// An ONNX file read into memory and decoded once; every backend builds from it.
#[derive(Debug, Clone)]
pub struct OnnxFile {
    /// Where it came from.
    pub path: PathBuf,
    /// The raw bytes (ONNX Runtime builds its session from them).
    pub bytes: Arc<[u8]>,
    /// The decoded protobuf (tract builds its model from it).
    pub proto: Arc<pb::ModelProto>,
    /// `metadata_props` as a map.
    pub props: BTreeMap<String, String>,
    /// The image input: the first graph input that is not an initializer.
    pub input: TensorDecl,
    /// The graph outputs, in order.
    pub outputs: Vec<TensorDecl>,
}

/// The largest input side (and channel count) a file may declare, in pixels. Preprocessing
/// allocates `channels × side × side` floats per image from it, so a file declaring 100000 or
/// 2^31 is refused up front instead of exhausting memory.
pub const MAX_INPUT_SIDE: usize = 4096;

/// Name of the logits output our exporter writes.
pub const LOGITS: &str = "logits";
/// Name of the optional embedding output.
pub const EMBEDDING: &str = "embedding";

impl OnnxFile {
    /// Reads and decodes `path`; fails on unreadable files, non-ONNX content and graphs without
    /// one float 4-D input and at least one output.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
        Self::from_bytes(path, bytes)
    }

    /// Decodes bytes already in memory; `path` is used in messages only.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self> {
        let path = path.into();
        let proto = decode_proto(&path, &bytes)?;
        let bad = |msg: String| Error::Model { path: path.clone(), msg };
        let graph = proto.graph.as_ref().ok_or_else(|| bad("the model has no graph".into()))?;
        let inits: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let input = graph
            .input
            .iter()
            .find(|i| !inits.contains(i.name.as_str()))
            .map(decl)
            .ok_or_else(|| bad("the graph has no input".into()))?;
        if let Some(shape) = &input.shape
            && shape.len() != 4
        {
            return Err(bad(format!(
                "input `{}` has shape {}, expected an image batch [batch, channels, height, width]",
                input.name,
                input.shape_text()
            )));
        }
        if (1..4).any(|i| input.fixed(i).is_some_and(|n| n > MAX_INPUT_SIDE)) {
            return Err(bad(format!(
                "input `{}` declares the shape {}, larger than this toolkit runs (at most \
                 {MAX_INPUT_SIDE} channels and {MAX_INPUT_SIDE}×{MAX_INPUT_SIDE} pixels)",
                input.name,
                input.shape_text()
            )));
        }
        let outputs: Vec<TensorDecl> = graph.output.iter().map(decl).collect();
        if outputs.is_empty() {
            return Err(bad("the graph has no output".into()));
        }
        let props = proto.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
        Ok(OnnxFile { path, bytes: bytes.into(), proto: Arc::new(proto), props, input, outputs })
    }

    /// The logits output: the one called `logits`, else the first output.
    pub fn logits(&self) -> &TensorDecl {
        self.outputs.iter().find(|o| o.name == LOGITS).unwrap_or(&self.outputs[0])
    }

    /// The embedding output, if the file has one called `embedding`.
    pub fn embedding_opt(&self) -> Option<&TensorDecl> {
        self.outputs.iter().find(|o| o.name == EMBEDDING)
    }

    /// Every graph input that is not an initializer, in graph order (the first is [`Self::input`]).
    pub fn graph_inputs(&self) -> Vec<TensorDecl> {
        let Some(graph) = self.proto.graph.as_ref() else { return vec![self.input.clone()] };
        let inits: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        graph.input.iter().filter(|i| !inits.contains(i.name.as_str())).map(decl).collect()
    }

    /// Whether the file carries any of our `fer.` metadata keys.
    pub fn has_fer_metadata(&self) -> bool {
        self.props.keys().any(|k| k.starts_with(fer_models_spec::meta::META_PREFIX))
    }
}

/// The one decoder of ONNX bytes (used by [`OnnxFile::from_bytes`] and by calibration's check
/// of the file it rewrote); `path` is used in the error only.
pub fn decode_proto(path: &Path, bytes: &[u8]) -> Result<pb::ModelProto> {
    pb::ModelProto::decode(bytes).map_err(|source| Error::NotOnnx { path: path.into(), source })
}

fn decl(v: &pb::ValueInfoProto) -> TensorDecl {
    let shape = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => t.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                    Some(DimValue::DimParam(p)) => Dim::Symbol(p.clone()),
                    _ => Dim::Symbol(String::new()),
                })
                .collect()
        }),
        None => None,
    };
    TensorDecl { name: v.name.clone(), shape }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_bytes_are_not_onnx() {
        let e = OnnxFile::from_bytes("x.onnx", b"\xff\xff\xff not protobuf".to_vec()).unwrap_err();
        assert!(matches!(e, Error::NotOnnx { .. }), "{e}");
        assert!(e.to_string().starts_with("x.onnx: not an ONNX model"), "{e}");
    }

    #[test]
    fn a_model_without_graph_is_rejected() {
        let bytes = pb::ModelProto::default().encode_to_vec();
        let e = OnnxFile::from_bytes("empty.onnx", bytes).unwrap_err();
        assert_eq!(e.to_string(), "empty.onnx: the model has no graph");
    }
}
