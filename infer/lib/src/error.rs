//! The one error type of the inference crate.

use std::path::PathBuf;

/// Everything loading or running a model can fail with. Variants name the file, the metadata
/// key or the flag involved, so the message alone says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file or folder.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The model file is not a valid ONNX protobuf.
    #[error("{}: not an ONNX model: {source}", path.display())]
    NotOnnx {
        /// The model file.
        path: PathBuf,
        /// The protobuf decoding error.
        #[source]
        source: prost::DecodeError,
    },
    /// The ONNX model is valid protobuf but does not have the shape of a classifier we can run.
    #[error("{}: {msg}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong, in a sentence.
        msg: String,
    },
    /// A metadata value that is missing (and not given on the command line) or does not parse.
    #[error("{}: {source}{}", path.display(), hint_suffix(.hint))]
    Meta {
        /// The model file.
        path: PathBuf,
        /// The keys and what is wrong with each (all of them, in one error).
        #[source]
        source: fer_models_spec::MetaErrors,
        /// How to supply the value instead, for example `pass --labels a,b,c`; may be empty.
        hint: String,
    },
    /// An input batch whose shape the model does not accept.
    #[error("input shape {got:?} does not match the model's input {expected}")]
    InputShape {
        /// The model's declared input, for example `[batch, 3, 112, 112]`.
        expected: String,
        /// The shape given.
        got: Vec<usize>,
    },
    /// The ONNX Runtime shared library cannot be found or loaded.
    #[error("ONNX Runtime library: {msg}")]
    OrtLibrary {
        /// Where we looked and how to fix it.
        msg: String,
    },
    /// A runtime this build was compiled without (cargo features `ort` and `tract`).
    #[error(
        "this fer-infer was built without {runtime:?} (its cargo feature is off); use the other --backend"
    )]
    NotBuilt {
        /// The runtime asked for.
        runtime: crate::backend::BackendKind,
    },
    /// An ONNX Runtime call failed.
    #[cfg(feature = "ort")]
    #[error("ONNX Runtime: {what}: {source}")]
    Ort {
        /// What we were doing, for example `creating the session for model.onnx`.
        what: String,
        /// The cause.
        #[source]
        source: ort::Error,
    },
    /// An execution provider that was asked for explicitly cannot be used.
    #[error("execution provider `{ep}` is not available: {msg}")]
    ExecutionProvider {
        /// The provider, for example `cuda`.
        ep: String,
        /// Why, with ONNX Runtime's own message.
        msg: String,
    },
    /// A tract call failed (tract's errors are `anyhow` chains; we keep the whole chain).
    #[error("tract: {what}: {msg}")]
    Tract {
        /// What we were doing.
        what: String,
        /// tract's error chain, formatted with `{:#}`.
        msg: String,
    },
    /// A model output that is missing or has an unexpected shape.
    #[error("model output `{name}`: {msg}")]
    Output {
        /// The output name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// An image file that cannot be decoded (corrupt, truncated, not an image).
    #[error("{}: cannot decode image: {source}", path.display())]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// An image file the data crate refuses (for example a truncated JPEG); its message names
    /// the file.
    #[error(transparent)]
    BadImage {
        /// The data crate's error.
        source: fer_data::Error,
    },
    /// An image that cannot be preprocessed.
    #[error("{}: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The cause (from the shared preprocessing crate).
        #[source]
        source: fer_data::Error,
    },
    /// An invalid argument or option.
    #[error("invalid {what}: {msg}")]
    Invalid {
        /// The argument, for example `--top-k`.
        what: String,
        /// What is wrong.
        msg: String,
    },
    /// A dataset that cannot be opened or read (`eval`, `calibrate`).
    #[error("dataset {}: {source}", path.display())]
    Data {
        /// The dataset path given.
        path: PathBuf,
        /// The data crate's error (it names the file or `file:line`).
        #[source]
        source: fer_data::Error,
    },
    /// The model's and the dataset's classes cannot be matched (no shared class, no sample
    /// left); the message names the model file, its `fer.labels` and the dataset.
    #[error("{msg}")]
    Classes {
        /// What is wrong, in a sentence.
        msg: String,
    },
    /// Metrics that cannot be computed on the collected predictions.
    #[error("computing {what}: {source}")]
    Metrics {
        /// Which metric or step.
        what: String,
        /// The metrics crate's error.
        #[source]
        source: fer_metrics::Error,
    },
    /// A plot that cannot be drawn or written.
    #[error(transparent)]
    Plot(#[from] fer_metrics::plot::PlotError),
    /// An output file could not be written (it names the file).
    #[error(transparent)]
    Write(#[from] fer_checkpoint::WriteError),
    /// A trainer run's `metrics.jsonl` could not be read.
    #[error(transparent)]
    Record(#[from] fer_metrics::run::RecordError),
    /// A JSON, JSON-lines or TOML file that cannot be read (`report`).
    #[error("{}: {msg}", path.display())]
    Parse {
        /// The file (with `:line` for JSON lines).
        path: PathBuf,
        /// The parser's message.
        msg: String,
    },
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() { String::new() } else { format!(" ({hint})") }
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), msg: msg.into() }
    }

    /// Shorthand for [`Error::Tract`], keeping tract's whole error chain.
    #[cfg_attr(not(feature = "tract"), allow(dead_code))]
    pub(crate) fn tract(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        Error::Tract { what: what.into(), msg: format!("{e:#}") }
    }

    /// Shorthand for [`Error::Ort`].
    #[cfg(feature = "ort")]
    pub(crate) fn ort<R>(what: impl Into<String>, e: ort::Error<R>) -> Self {
        Error::Ort { what: what.into(), source: strip_recovery(e) }
    }
}

#[cfg(feature = "ort")]
/// Drops the value an ort builder error carries for recovery, keeping the message and code.
fn strip_recovery<R>(e: ort::Error<R>) -> ort::Error {
    ort::Error::new_with_code(e.code(), e.message().to_string())
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
