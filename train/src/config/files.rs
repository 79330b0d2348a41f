//! Checks that the files a config names exist, before anything is trained or written.
//!
//! [`ExperimentConfig::validate`] never looks at the disk; `fer-train check` and `run` call
//! [`ExperimentConfig::check_files`] as well, so a missing teacher checkpoint, initial weights
//! file or dataset is reported under its field before a run directory is created.

use std::path::Path;

use super::ExperimentConfig;
use super::error::{ConfigErrors, ConfigIssue};

impl ExperimentConfig {
    /// Checks that `data.root`, every `teachers[i].checkpoint` and `model.init.weights`
    /// (resolved against the config's folder) exist; every missing one is an issue naming its
    /// field and the resolved path.
    pub fn check_files(&self) -> Result<(), ConfigErrors> {
        let mut issues = Vec::new();
        let mut need = |field: String, p: &Path, file: bool| {
            let path = self.resolve_path(p);
            let problem = match std::fs::metadata(&path) {
                Ok(m) if file && m.is_dir() => Some("is a folder, not a file"),
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist"),
                Err(_) => Some("cannot be read"),
            };
            if let Some(why) = problem {
                issues.push(ConfigIssue { field, message: format!("{} {why}", path.display()) });
            }
        };
        need("data.root".into(), &self.data.root, false);
        if let Some(init) = &self.model.init {
            need("model.init.weights".into(), &init.weights, true);
        }
        for (i, t) in self.teachers.iter().enumerate() {
            need(format!("teachers[{i}].checkpoint"), &t.checkpoint, true);
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors { origin: self.origin.path.clone(), issues })
        }
    }
}
