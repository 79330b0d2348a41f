//! Errors of the weight readers and writers.

use std::path::{Path, PathBuf};

use crate::check::Mismatch;

/// Everything reading, checking or writing weights can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not in a format we read, or is damaged.
    #[error("{}: {msg}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in a sentence.
        msg: String,
    },
    /// The zip container of a `.pth` file is damaged.
    #[error("{}: not a readable PyTorch zip checkpoint: {source}", path.display())]
    Zip {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: zip::result::ZipError,
    },
    /// A `.safetensors` file is damaged, or tensors could not be serialised.
    #[error("{}: safetensors: {source}", path.display())]
    SafeTensors {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// The model metadata stored in one of our checkpoints does not parse.
    #[error("{}: checkpoint metadata `{key}` does not parse: {source}", path.display())]
    Meta {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Weights do not fit a model spec: missing, unexpected or wrong-shaped tensors.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    /// Writing a file failed, or its path is not one to write over (see [`crate::atomic`]).
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
}

impl Error {
    /// An [`Error::Io`] on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
