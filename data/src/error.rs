//! The one error type of the data crate.

use std::path::PathBuf;

use crate::dataset::SplitName;

/// Everything reading, checking or splitting a dataset can fail with.
///
/// Every variant names the file (and the line for text formats), so a user can find the bad
/// input without a debugger.
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
    /// An image that cannot be decoded (corrupt, truncated, not an image).
    #[error("{}: cannot decode image: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: image::ImageError,
    },
    /// An image file that is cut short (for example a JPEG without its end-of-image marker).
    #[error("{}: truncated image: {why}", path.display())]
    Truncated {
        /// The image file.
        path: PathBuf,
        /// What shows the truncation.
        why: String,
    },
    /// A file in an image format the toolkit does not decode (HEIC, AVIF, GIF, …), or in no
    /// image format at all.
    #[error("{}: {what}", path.display())]
    UnsupportedImage {
        /// The file.
        path: PathBuf,
        /// What the file is and what to do, e.g. `a HEIC image, which is not read here: …`.
        what: String,
    },
    /// A malformed row of a CSV or text label file.
    #[error("{}:{line}: {msg}", path.display())]
    Csv {
        /// The CSV or label file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the row.
        msg: String,
    },
    /// A file or folder that is not laid out as the format expects.
    #[error("{}: {msg}", path.display())]
    Format {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong, in a sentence.
        msg: String,
    },
    /// A split that has no samples.
    #[error("{}: split `{split}` has no samples{}", path.display(), why_suffix(.why))]
    EmptySplit {
        /// The dataset root or file.
        path: PathBuf,
        /// The split asked for.
        split: SplitName,
        /// Extra detail (for example how many items were skipped), or empty.
        why: String,
    },
    /// A class folder or class name that no label map knows.
    #[error("{}: unknown class `{name}` (known: {})", path.display(), known.join(", "))]
    UnknownClass {
        /// The folder or file naming the class.
        path: PathBuf,
        /// The unknown name.
        name: String,
        /// The names that would have been accepted.
        known: Vec<String>,
    },
    /// Class folders of an image folder that are neither expression names nor mapped, all
    /// of them at once.
    #[error(
        "{}: class folders not named after an expression: {}; map each to an expression or \
         `skip` (data.class_map, or `fer-train init --map NAME=EXPRESSION`); expressions: {}",
        path.display(), names.join(", "), known.join(", ")
    )]
    UnknownClasses {
        /// The dataset root.
        path: PathBuf,
        /// The unknown folder names, each with the split folders it is in when there are some
        /// (`smiling (train, val)`).
        names: Vec<String>,
        /// The names that would have been accepted.
        known: Vec<String>,
    },
    /// An index past the end of a dataset.
    #[error("index {index} out of range for a dataset of {len} samples")]
    Index {
        /// The index asked for.
        index: usize,
        /// The dataset length.
        len: usize,
    },
    /// An invalid argument or option (split fractions, fold counts, option combinations).
    #[error("invalid {what}: {msg}")]
    Invalid {
        /// The argument or option, for example `split.k`.
        what: String,
        /// What is wrong and which values are allowed.
        msg: String,
    },
    /// A JSON document (split plan, report, cache index) that does not parse.
    #[error("{}: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// An image that cannot be encoded for writing.
    #[error("{}: cannot encode image: {source}", path.display())]
    Encode {
        /// The image file being written.
        path: PathBuf,
        /// The cause (boxed: it is rare, and keeps every error of the crate small).
        #[source]
        source: Box<image::ImageError>,
    },
    /// A file that could not be written (atomically, by [`fer_checkpoint::write_atomic`]).
    #[error(transparent)]
    Write(#[from] fer_checkpoint::WriteError),
    /// A loader worker thread that died (a panic in a dataset reader).
    #[error("loader worker failed: {msg}")]
    Worker {
        /// What happened.
        msg: String,
    },
}

fn why_suffix(why: &str) -> String {
    if why.is_empty() { String::new() } else { format!(" ({why})") }
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Builds an [`Error::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format { path: path.into(), msg: msg.into() }
    }

    /// Builds an [`Error::Csv`] for `path:line`.
    pub fn csv(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        Error::Csv { path: path.into(), line, msg: msg.into() }
    }

    /// Builds an [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), msg: msg.into() }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
