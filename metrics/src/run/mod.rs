//! The typed record of a training run, shared by the trainer (which writes it) and every reader
//! (`fer-train resume`, `fer-infer report`), so they cannot disagree about what a run says:
//! - [`EpochRecord`]: one line of `metrics.jsonl`, with one flat column per loss term
//!   (`loss_<label>`), read back from files of the older nested layout too ([`record`]);
//! - [`EarlyStopping`] and [`BestEpoch`]: the `[early_stopping]` section and the one rule that
//!   names the best epoch (the weights of `best.safetensors`) from the records ([`selection`]);
//! - [`MeanStd`]: mean ± sample standard deviation over repetitions ([`stats`]).

pub mod record;
pub mod selection;
pub mod stats;

pub use record::{EpochRecord, RecordError, TERM_PREFIX, read_jsonl, to_jsonl};
pub use selection::{BestEpoch, EarlyStopping, Metric};
pub use stats::MeanStd;
