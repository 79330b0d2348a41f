//! Checkpoints written beside training instead of in its way.
//!
//! After every epoch the trainer copies the weights (and the optimizer state) to the host, which
//! is quick, and hands the files (`best`, `last`, `state`) to one writer thread, which serialises,
//! writes and syncs them in that order while the next epoch trains. At most one epoch's files are
//! in flight: the next hand-over, the test split and the end of the run first wait for them, and
//! an error of the writer stops the run there, naming the file. A run killed while a write is in
//! flight keeps the previous file whole (every file is written atomically), and `resume` reads
//! only the epochs up to the one `state.safetensors` holds, as before.
//!
//! Why: a large network's files cost more than its training (round 8 of `docs/results.md`: a
//! 40 M-parameter teacher spent 62 s writing against 49 s training over 19 epochs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread::JoinHandle;

use fer_checkpoint::{Checkpoint, TensorMap};

use crate::error::{Error, Result};

/// One file to write.
pub(crate) enum File {
    /// A checkpoint (`best.safetensors`, `last.safetensors`).
    Checkpoint(PathBuf, Checkpoint),
    /// The training state (`state.safetensors`): tensors and their metadata.
    State(PathBuf, TensorMap, BTreeMap<String, String>),
}

impl File {
    fn write(&self) -> Result<()> {
        match self {
            File::Checkpoint(path, ck) => ck.save(path)?,
            File::State(path, tensors, meta) => {
                fer_checkpoint::write_safetensors(path, tensors, meta)?
            }
        }
        Ok(())
    }
}

/// The writer thread of one run: one batch of files in flight at most.
#[derive(Default)]
pub(crate) struct Writer {
    pending: Option<JoinHandle<Result<()>>>,
}

impl Writer {
    /// Waits for the files handed over before, then starts writing `files` in order.
    pub(crate) fn submit(&mut self, files: Vec<File>) -> Result<()> {
        self.wait()?;
        self.pending = Some(std::thread::spawn(move || files.iter().try_for_each(File::write)));
        Ok(())
    }

    /// Waits until every file handed over is written; the first error of the writer, if any.
    pub(crate) fn wait(&mut self) -> Result<()> {
        match self.pending.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(Error::Input("the checkpoint writer thread panicked".into()))
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    /// A run that ends by an error still finishes the files in flight (their error, if any,
    /// is secondary to the one that ended the run).
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_in_order_and_errors_surface_at_the_next_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::default();
        let state = |p: PathBuf, v: &str| {
            let meta = BTreeMap::from([("epoch".to_string(), v.to_string())]);
            File::State(p, TensorMap::new(), meta)
        };
        let a = dir.path().join("a.safetensors");
        w.submit(vec![state(a.clone(), "1"), state(a.clone(), "2")]).unwrap();
        w.wait().unwrap();
        let (_, meta) = fer_checkpoint::read_safetensors(&a).unwrap();
        assert_eq!(meta["epoch"], "2", "the later file of a batch is written last");

        let bad = dir.path().join("missing-folder").join("b.safetensors");
        w.submit(vec![state(bad, "1")]).unwrap();
        let e = w.wait().unwrap_err().to_string();
        assert!(e.contains("missing-folder"), "{e}");
        w.wait().unwrap();
    }
}
