//! Errors of the ONNX lowering and writer.

use std::path::PathBuf;

/// Everything exporting a graph to ONNX can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter the graph needs is not in the weights.
    #[error("weights: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The parameter's state_dict name.
        name: String,
        /// The shape the graph expects.
        expected: Vec<usize>,
    },
    /// A parameter has another shape than the graph expects.
    #[error("weights: tensor `{name}` has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The parameter's state_dict name.
        name: String,
        /// The shape the graph expects.
        expected: Vec<usize>,
        /// The shape in the weights.
        got: Vec<usize>,
    },
    /// A float parameter is stored as integers (or the reverse).
    #[error("weights: tensor `{name}` has dtype {got}, expected {expected}")]
    DtypeMismatch {
        /// The parameter's state_dict name.
        name: String,
        /// The expected element type.
        expected: &'static str,
        /// The stored element type.
        got: &'static str,
    },
    /// A weight holds NaN or infinite values (the weights of a diverged training run).
    #[error(
        "weights: tensor `{name}` holds {count} non-finite value(s) (NaN or infinity); the \
         training run that wrote it diverged, so there is nothing to export"
    )]
    NonFinite {
        /// The parameter's state_dict name.
        name: String,
        /// How many of its values are not finite.
        count: usize,
    },
    /// The options cannot be honoured.
    #[error("export option `{field}`: {msg}")]
    BadOption {
        /// The option, for example `opset`.
        field: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The metadata disagrees with the graph.
    #[error("model metadata `{field}`: {msg}")]
    MetaMismatch {
        /// The metadata field, for example `labels`.
        field: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The graph lacks something the export needs (for example the `embedding` tap).
    #[error("graph: {0}")]
    Graph(String),
    /// Bytes that should be an ONNX model do not decode.
    #[error("not an ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Writing the ONNX file failed.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The output path is not one to write over (a FIFO, a device, a directory, a link cycle).
    #[error(transparent)]
    OutPath(fer_checkpoint::WriteError),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
