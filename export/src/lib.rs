//! ONNX export of models-spec graphs.
//!
//! [`export_onnx`] lowers a [`Graph`] and its weights (torchvision `state_dict` names) to an
//! encoded ONNX `ModelProto`: input `input` float32 `[batch, C, H, W]`, output `logits`
//! `[batch, num_classes]`, optionally a second output `embedding` `[batch, F]` (the graph's
//! [`EMBEDDING_TAP`]). The file describes itself through `metadata_props`: every
//! [`ModelMeta::to_props`] key plus the keys in [`props`] (see `docs/onnx-metadata.md`).
//! [`write_onnx`] writes the bytes atomically.
//!
//! The protobuf types are tract's prost-generated `tract_onnx::pb`, so no `protoc` is needed.

pub mod error;
mod fold;
mod lower;
pub mod props;
mod proto;

use std::path::Path;

use fer_checkpoint::TensorMap;
use fer_models_spec::{EMBEDDING_TAP, Graph, ModelMeta};
use prost::Message;
use tract_onnx::pb::{GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto};

pub use error::{Error, Result};
pub use lower::{EMBEDDING_NAME, INPUT_NAME, LOGITS_NAME};

use proto::{Dim, value_info_f32};

/// Producer name written into every file.
pub const PRODUCER_NAME: &str = "fer-toolkit";
/// Smallest opset we write (native `HardSwish`, `BatchNormalization` without training outputs).
pub const MIN_OPSET: i64 = 17;
/// Largest opset we write.
pub const MAX_OPSET: i64 = 22;

/// Options of [`export_onnx`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// ONNX opset of the default domain, [`MIN_OPSET`]..=[`MAX_OPSET`]; default 17.
    pub opset: i64,
    /// Fold each BatchNorm into the convolution before it (default true). Without folding the
    /// file keeps `BatchNormalization` nodes with the running statistics.
    pub fold_bn: bool,
    /// Add a second output `embedding`: the pooled features before the classifier (default false).
    pub embedding_output: bool,
    /// The face crop the model was trained on, written as `fer.crop` (default `None`: the key
    /// is left out, and readers take `FaceCrop::ABSENT`).
    pub crop: Option<fer_models_spec::FaceCrop>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { opset: 17, fold_bn: true, embedding_output: false, crop: None }
    }
}

/// The ONNX IR version that goes with `opset` (ONNX releases 1.12 to 1.17).
pub fn ir_version_for_opset(opset: i64) -> Option<i64> {
    match opset {
        17 | 18 => Some(8),
        19 | 20 => Some(9),
        21 | 22 => Some(10),
        _ => None,
    }
}

/// Checks that `meta` describes `graph`: class count, input channels, input size.
fn check_meta(graph: &Graph, meta: &ModelMeta) -> Result<()> {
    let bad = |field, msg| Err(Error::MetaMismatch { field, msg });
    if meta.labels.len() != graph.num_classes() {
        let msg = format!("{} labels for {} model outputs", meta.labels.len(), graph.num_classes());
        return bad("labels", msg);
    }
    let [c, h, w] = match graph.input_shape() {
        [c, h, w] => [*c, *h, *w],
        other => return Err(Error::Graph(format!("input shape {other:?} is not [C, H, W]"))),
    };
    if meta.preprocess.channels() != c || meta.preprocess.mean.len() != c {
        let msg = format!(
            "preprocessing makes {} channels, the model reads {c}",
            meta.preprocess.channels()
        );
        return bad("preprocess.color", msg);
    }
    if meta.preprocess.input_size != h || meta.preprocess.input_size != w {
        let msg = format!("{} pixels, the model reads {h}x{w}", meta.preprocess.input_size);
        return bad("preprocess.input_size", msg);
    }
    Ok(())
}

/// Lowers `graph` with `weights` to an encoded ONNX `ModelProto`, with `meta` in its
/// `metadata_props`. Every parameter the graph needs must be in `weights` with its shape; extra
/// tensors are ignored (but count in `fer.weights_sha256`).
pub fn export_onnx(
    graph: &Graph,
    weights: &TensorMap,
    meta: &ModelMeta,
    opts: &ExportOptions,
) -> Result<Vec<u8>> {
    Ok(export_model(graph, weights, meta, opts)?.encode_to_vec())
}

/// As [`export_onnx`], returning the message instead of its encoding.
pub fn export_model(
    graph: &Graph,
    weights: &TensorMap,
    meta: &ModelMeta,
    opts: &ExportOptions,
) -> Result<ModelProto> {
    if let Some((name, count)) = fer_checkpoint::first_non_finite(weights) {
        return Err(Error::NonFinite { name: name.to_string(), count });
    }
    let ir_version = ir_version_for_opset(opts.opset).ok_or_else(|| Error::BadOption {
        field: "opset",
        msg: format!("{} is not supported ({MIN_OPSET} to {MAX_OPSET})", opts.opset),
    })?;
    check_meta(graph, meta)?;
    let embedding = match opts.embedding_output {
        false => None,
        true => Some(graph.tap(EMBEDDING_TAP).ok_or_else(|| {
            Error::Graph(format!("{} has no `{EMBEDDING_TAP}` tap", meta.arch.arch))
        })?),
    };
    let body = lower::lower(graph, weights, opts.fold_bn, embedding)?;
    let [c, h, w] = [0, 1, 2].map(|i| graph.input_shape()[i]);
    let batch = Dim::Symbol("batch");
    let input = value_info_f32(
        INPUT_NAME,
        &[batch.clone(), Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)],
        "Preprocessed images, NCHW float32 (see the fer.* metadata).",
    );
    let mut outputs = vec![value_info_f32(
        LOGITS_NAME,
        &[batch.clone(), Dim::Fixed(graph.num_classes())],
        "Class scores before softmax, in fer.labels order.",
    )];
    let mut output_names = vec![LOGITS_NAME];
    if let Some(e) = embedding {
        let f = graph.node(e).shape.iter().product();
        outputs.push(value_info_f32(
            EMBEDDING_NAME,
            &[batch, Dim::Fixed(f)],
            "Pooled features entering the classifier.",
        ));
        output_names.push(EMBEDDING_NAME);
    }
    let arch = meta.arch.arch.id();
    let graph_proto = GraphProto {
        node: body.nodes,
        name: arch.to_string(),
        initializer: body.initializers,
        doc_string: format!("{arch} with {} classes", graph.num_classes()),
        input: vec![input],
        output: outputs,
        ..Default::default()
    };
    let metadata_props = props::metadata(meta, weights, &output_names, opts.fold_bn, opts.crop)
        .into_iter()
        .map(|(key, value)| StringStringEntryProto { key, value })
        .collect();
    Ok(ModelProto {
        ir_version,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opts.opset }],
        producer_name: PRODUCER_NAME.into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        model_version: 1,
        doc_string: format!(
            "FER classifier {arch} ({} classes: {}); preprocessing and labels in the fer.* \
             metadata_props (docs/onnx-metadata.md).",
            meta.labels.len(),
            meta.labels.join(", ")
        ),
        graph: Some(graph_proto),
        metadata_props,
        ..Default::default()
    })
}

/// Writes `bytes` to `path` with [`fer_checkpoint::write_atomic`]: atomically over a regular
/// file or a new path, through a symbolic link to its target, and never over a FIFO, device,
/// socket or directory.
pub fn write_onnx(path: &Path, bytes: &[u8]) -> Result<()> {
    fer_checkpoint::write_atomic(path, bytes).map_err(|e| match e {
        fer_checkpoint::WriteError::Io { path, source } => Error::Io { path, source },
        other => Error::OutPath(other),
    })
}

/// Reads the `metadata_props` of an encoded model (for checks and tools).
pub fn read_metadata(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, String>> {
    let model = ModelProto::decode(bytes)?;
    Ok(model.metadata_props.into_iter().map(|p| (p.key, p.value)).collect())
}
