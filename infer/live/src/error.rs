//! The one error type of the live crate.

use std::path::PathBuf;

/// Everything the live pipeline can fail with: the inference library's errors (model,
/// detector, images) and those of its own sources, window and outputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inference library failed (loading or running a model, reading an image, an
    /// invalid option).
    #[error(transparent)]
    Infer(#[from] fer_infer::Error),
    /// An I/O error on a named file or folder.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No camera to open: none found, not the one asked for, or a build without camera
    /// support; the message lists the video devices found and the other `--source` choices.
    #[error("{msg}")]
    NoCamera {
        /// The whole explanation.
        msg: String,
    },
    /// A camera that exists but cannot be opened or set up (busy, no permission, no usable
    /// format).
    #[error("camera {device}: {msg}")]
    Camera {
        /// The device, for example `/dev/video0`.
        device: String,
        /// What failed, with the capture library's message.
        msg: String,
    },
    /// A video file that cannot be read as MJPEG (another codec, a corrupt header).
    #[error("{}: {msg}", path.display())]
    Video {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A source that failed after it had started: a camera unplugged or stalled, a corrupt
    /// frame in a video file. What was produced before stays valid.
    #[error("{what} stopped delivering frames: {msg} (after {frames} frames)")]
    SourceStopped {
        /// The source, for example `camera /dev/video0`.
        what: String,
        /// Why, with the underlying message.
        msg: String,
        /// Frames it delivered before.
        frames: usize,
    },
    /// The window cannot be opened or drawn into.
    #[error("{msg}")]
    Window {
        /// What failed, with the window library's message.
        msg: String,
    },
}

impl Error {
    /// An invalid argument or option ([`fer_infer::Error::Invalid`]).
    pub fn invalid(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Infer(fer_infer::Error::invalid(what, msg))
    }

    /// Whether this is a usage error (a bad flag or option, metadata the flags must supply,
    /// no camera to open): `fer-infer` exits with 2 for those.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::NoCamera { .. }
                | Error::Infer(fer_infer::Error::Meta { .. } | fer_infer::Error::Invalid { .. })
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
