//! Errors of the training library.

use std::path::PathBuf;

/// Everything the training library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network description is invalid.
    #[error(transparent)]
    Spec(#[from] fer_models_spec::SpecError),
    /// Reading or checking weights failed, or writing a run file failed.
    #[error(transparent)]
    Checkpoint(#[from] fer_checkpoint::Error),
    /// libtorch refused an operation (shape, dtype or device problem).
    #[error("{context}: {source}")]
    Torch {
        /// What we were doing.
        context: String,
        /// libtorch's message.
        #[source]
        source: tch::TchError,
    },
    /// An experiment config could not be read, overridden or validated.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Reading or preparing the dataset failed.
    #[error("{context}: {source}")]
    Data {
        /// What we were doing.
        context: String,
        /// The data library's error (names the file or line).
        #[source]
        source: fer_data::Error,
    },
    /// A metric could not be computed (for example an empty validation set).
    #[error("computing {context}: {source}")]
    Metrics {
        /// Which metric.
        context: String,
        /// The cause.
        #[source]
        source: fer_metrics::Error,
    },
    /// The run directory already holds a run.
    #[error("{}: a run is already there; continue it with `fer-train resume {}` or pass --overwrite", path.display(), path.display())]
    RunExists {
        /// The run directory.
        path: PathBuf,
    },
    /// A tensor given to the model does not fit it (shape, tap name).
    #[error("{0}")]
    Input(String),
    /// The training loss became NaN or infinite: the run diverged, and stopped before saving
    /// anything of that epoch.
    #[error(
        "training diverged at epoch {epoch}, step {step} of {steps}: the loss is not finite (NaN \
         or infinity){}; no checkpoint of this epoch was saved; lower optim.lr or set \
         optim.grad_clip_norm",
        non_finite_terms(terms)
    )]
    Diverged {
        /// The run's epoch (1-based).
        epoch: usize,
        /// The first step whose loss was not finite (1-based, within the epoch).
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// The weighted loss terms that were not finite at that step.
        terms: Vec<String>,
    },
    /// A weight is NaN or infinite after an epoch whose loss stayed finite; nothing is saved.
    #[error(
        "after epoch {epoch} the weight `{tensor}` holds {count} non-finite value(s) (NaN or \
         infinity): the run diverged; no checkpoint of this epoch was saved"
    )]
    NonFiniteWeights {
        /// The run's epoch (1-based).
        epoch: usize,
        /// The parameter or buffer name.
        tensor: String,
        /// How many of its values are not finite.
        count: usize,
    },
    /// `--device cuda` on a machine where libtorch sees no GPU.
    #[error(
        "CUDA was requested but libtorch sees no GPU (libtorch_cuda not loadable or no device); use --device cpu or auto"
    )]
    NoCuda,
    /// `metrics.jsonl` could not be read or written.
    #[error(transparent)]
    Record(#[from] fer_metrics::run::RecordError),
    /// A sweep could not be planned, submitted or run (`crate::sweep`).
    #[error(transparent)]
    Sweep(Box<crate::sweep::SweepError>),
    /// Data-parallel training failed: the ranks could not meet, a collective failed (another
    /// rank died or timed out), or the launcher's variables are wrong.
    #[error("data-parallel training: {0}")]
    Distributed(String),
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn non_finite_terms(terms: &[String]) -> String {
    match terms {
        [] => String::new(),
        [t] => format!(" (term {t})"),
        ts => format!(" (terms {})", ts.join(", ")),
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::sweep::SweepError> for Error {
    fn from(e: crate::sweep::SweepError) -> Error {
        Error::Sweep(Box::new(e))
    }
}
