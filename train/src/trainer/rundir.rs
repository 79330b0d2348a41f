//! The run directory: resolved config, environment, split, `metrics.jsonl`, checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One line of `metrics.jsonl` (the typed record shared with `fer-infer report`).
pub use fer_metrics::run::EpochRecord;

/// Paths inside a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
}

/// Maps an I/O error on `path` to [`Error::Io`] naming the path.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl RunDir {
    /// `config.resolved.toml`.
    pub fn config(&self) -> PathBuf {
        self.path.join("config.resolved.toml")
    }
    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    /// `last.safetensors`: the model after the latest epoch.
    pub fn last(&self) -> PathBuf {
        self.path.join("last.safetensors")
    }
    /// `best.safetensors`: the model at the best validation metric.
    pub fn best(&self) -> PathBuf {
        self.path.join("best.safetensors")
    }
    /// `state.safetensors`: weights and optimizer state after the latest epoch (for `resume`).
    pub fn state(&self) -> PathBuf {
        self.path.join("state.safetensors")
    }

    /// Creates the directory for a new run; refuses one that already holds a run unless
    /// `overwrite`.
    pub fn create(path: PathBuf, overwrite: bool) -> Result<RunDir> {
        let dir = RunDir { path };
        if dir.metrics().exists() || dir.last().exists() {
            if !overwrite {
                return Err(Error::RunExists { path: dir.path });
            }
            let outcome = dir.path.join("outcome.json");
            for f in [dir.metrics(), dir.last(), dir.best(), dir.state(), outcome] {
                if f.exists() {
                    std::fs::remove_file(&f).map_err(io(&f))?;
                }
            }
        }
        std::fs::create_dir_all(&dir.path).map_err(io(&dir.path))?;
        Ok(dir)
    }

    /// Writes `name` with [`fer_checkpoint::write_atomic`]: temporary file + rename over a
    /// regular file, through a symbolic link to its target, never over a FIFO or device.
    pub fn write_atomic(&self, name: &str, content: &[u8]) -> Result<()> {
        let path = self.path.join(name);
        fer_checkpoint::write_atomic(&path, content)
            .map_err(|e| Error::Checkpoint(fer_checkpoint::Error::from(e)))
    }

    /// Appends one record to `metrics.jsonl`.
    pub fn append_metrics(&self, rec: &EpochRecord) -> Result<()> {
        let path = self.metrics();
        let line = fer_metrics::run::to_jsonl(std::slice::from_ref(rec))?;
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        f.write_all(line.as_bytes()).map_err(io(&path))
    }

    /// The records of `metrics.jsonl` (empty when absent).
    pub fn read_metrics(&self) -> Result<Vec<EpochRecord>> {
        let path = self.metrics();
        if !path.exists() {
            return Ok(vec![]);
        }
        Ok(fer_metrics::run::read_jsonl(&path)?)
    }

    /// Rewrites `metrics.jsonl` with `records` (used by resume to drop epochs after the last
    /// checkpoint).
    pub fn rewrite_metrics(&self, records: &[EpochRecord]) -> Result<()> {
        let text = fer_metrics::run::to_jsonl(records)?;
        self.write_atomic("metrics.jsonl", text.as_bytes())
    }
}

/// The environment of a run, written as `env.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// libtorch version the binary was built against.
    pub libtorch: String,
    /// Whether libtorch's CUDA backend was loaded.
    pub cuda_backend_loaded: bool,
    /// libtorch intra-op threads.
    pub threads: i32,
    /// The commit the binary was built from ([`git_commit`]).
    pub git_commit: String,
    /// This toolkit's version.
    pub toolkit_version: String,
    /// The precision training runs in: `fp32`, or `bf16`/`fp16` autocast on CUDA.
    pub precision: String,
    /// Where training batches were made (`data.device_data`): `device (…MB resident)` or
    /// `loader (why)`.
    pub data_path: String,
    /// A data-parallel run: `N ranks, backend` (absent for one process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_parallel: Option<String>,
}

/// The git commit the training code was built from (`unknown` when it was built outside a
/// checkout), not the commit of whatever folder the run is started in: a binary copied to a
/// GPU machine records its own code.
pub fn git_commit() -> String {
    fer_checkpoint::cli::COMMIT.to_string()
}
