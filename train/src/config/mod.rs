//! The typed experiment configuration of `fer-train` (one TOML file per run; `configs/`).
//!
//! A config names everything a run does: the data (`[data]`), the network trained (`[model]`,
//! `[preprocess]`, `[augment]`), the optimiser (`[optim]`, `[early_stopping]`), the frozen
//! teachers (`[[teachers]]`) and the stages of training, each with its own loss
//! (`[[stages]]`, `[[stages.loss]]`). Every table rejects unknown fields and `version = 1` is
//! required. Each field's default and unit is in its doc comment; `configs/README.md` shows
//! the experiment families.
//!
//! Paths:
//! - relative paths written in a config file are resolved against **the config file's
//!   folder** (so a config works from any working directory);
//! - relative paths given with `--set` ([`ExperimentConfig::apply_overrides`]) are resolved
//!   against the **current working directory**, as on any command line;
//! - `{fold}` in `name`, `model.init.weights` and `teachers[*].checkpoint` is replaced by
//!   `data.fold` (cross-validation runs one config once per fold);
//! - a run writes into `<output_dir>/<name>/` ([`ExperimentConfig::run_dir`]):
//!   `config.resolved.toml`, `metrics.jsonl`, `last.safetensors` and `best.safetensors`, so a
//!   teacher trained by config `T` is referenced as `<output_dir>/<T's name>/best.safetensors`.
//!
//! Missing data or teacher files are not validation errors (an earlier step, a teacher run,
//! may produce them); `fer-train check` and `run` test them separately with
//! [`ExperimentConfig::check_files`], before a run directory is created.

mod data;
mod error;
mod files;
mod model;
mod optim;
mod overrides;
mod stages;
mod validate;

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::device::DeviceChoice;

pub use data::{ClassBalance, DataConfig, DeviceData, Validation};
pub use error::{ConfigError, ConfigErrors, ConfigIssue};
pub use fer_data::augment::AugmentConfig;
pub use model::{InitConfig, ModelConfig, PreprocessOverrides};
pub use optim::{EarlyStoppingConfig, Metric, OptimConfig, OptimizerKind, Precision, Schedule};
pub use stages::{StageConfig, TeacherConfig};

/// The config schema version this toolkit reads and writes.
pub const CONFIG_VERSION: u32 = 1;

/// The placeholder replaced by `data.fold` in `name` and weight paths.
pub const FOLD_PLACEHOLDER: &str = "{fold}";

fn default_device() -> DeviceChoice {
    DeviceChoice::Auto
}
fn default_output_dir() -> PathBuf {
    PathBuf::from("runs")
}

/// One experiment: the whole content of a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Schema version; must be 1 (required).
    pub version: u32,
    /// Run name (required): letters, digits, `_`, `-`, `.` and `{fold}`; the run directory is
    /// `<output_dir>/<name>/`.
    pub name: String,
    /// Free text: what the experiment is for. Default empty.
    #[serde(default)]
    pub description: String,
    /// Seed of weight initialisation, shuffling, augmentation and (unless `data.split_seed`
    /// is set) the validation split. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// `auto` (CUDA when available), `cpu` or `cuda`. Default `auto`.
    #[serde(default = "default_device")]
    pub device: DeviceChoice,
    /// Folder holding the run directories. Default `runs` (beside the config file, as every
    /// relative path; the shipped configs say `../../runs`, the repository's `runs/`).
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The dataset (required).
    pub data: DataConfig,
    /// The network trained (required).
    pub model: ModelConfig,
    /// Preprocessing overrides. Default: ImageNet normalisation at the model's input size.
    #[serde(default)]
    pub preprocess: PreprocessOverrides,
    /// Training augmentation (`fer_data`'s options: `hflip_prob`, `crop_scale`,
    /// `rotate_degrees`, `brightness`, `contrast`, `erase_prob`, …). Default: see
    /// [`AugmentConfig`].
    #[serde(default)]
    pub augment: AugmentConfig,
    /// Optimiser and schedule (required).
    pub optim: OptimConfig,
    /// Best-checkpoint metric and early stopping. Default: `val_accuracy`, no early stop.
    #[serde(default)]
    pub early_stopping: EarlyStoppingConfig,
    /// Frozen teachers the loss terms distil from. Default: none.
    #[serde(default)]
    pub teachers: Vec<TeacherConfig>,
    /// The stages, run in order (required, at least one).
    pub stages: Vec<StageConfig>,
    /// Where the config came from (not part of the TOML, equality or hash).
    #[serde(skip)]
    pub origin: Origin,
}

/// The file a config was read from and the folder its relative paths are resolved against.
/// Every `Origin` compares equal: it is not part of a config's identity.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The file as given (used in messages).
    pub path: PathBuf,
    /// The absolute folder relative paths are resolved against.
    pub base_dir: PathBuf,
}

impl PartialEq for Origin {
    fn eq(&self, _: &Origin) -> bool {
        true
    }
}

impl Origin {
    /// The origin of a file at `path` (its folder made absolute against the working
    /// directory).
    pub fn of_file(path: &Path) -> Origin {
        let parent = path.parent().unwrap_or(Path::new(""));
        let base_dir = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        Origin { path: path.to_path_buf(), base_dir: normalize(&base_dir) }
    }
}

impl ExperimentConfig {
    /// Reads and parses the config file at `path` (no semantic validation: call
    /// [`Self::validate`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses `text`, the content of the file at `origin` (used in messages and as the base of
    /// relative paths). Errors carry the field's dotted path and the TOML line and column.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::new(text);
        let mut cfg: ExperimentConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = path_string(e.path());
            let inner = e.into_inner();
            let (line, column) = match inner.span() {
                Some(span) => {
                    let at = unknown_key_offset(text, &span, inner.message()).unwrap_or(span.start);
                    let (l, c) = line_col(text, at);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigError::Parse {
                origin: origin.to_path_buf(),
                line,
                column,
                field,
                message: inner.message().trim_end().replace('\n', "; "),
            }
        })?;
        cfg.origin = Origin::of_file(origin);
        Ok(cfg)
    }

    /// Resolves `p` as a path of this config: `{fold}` substituted, relative paths joined to
    /// the config file's folder, `.` and `..` removed lexically (nothing is read from disk).
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        let p = PathBuf::from(self.substitute_fold(&p.to_string_lossy()));
        normalize(&self.origin.base_dir.join(p))
    }

    fn substitute_fold(&self, s: &str) -> String {
        match self.data.fold {
            Some(k) => s.replace(FOLD_PLACEHOLDER, &k.to_string()),
            None => s.to_string(),
        }
    }

    /// The run name with `{fold}` replaced.
    pub fn run_name(&self) -> String {
        self.substitute_fold(&self.name)
    }

    /// The run directory, `<output_dir>/<name>` (resolved).
    pub fn run_dir(&self) -> PathBuf {
        self.resolve_path(&self.output_dir).join(self.run_name())
    }

    /// The config with every default written out: absolute paths (with `{fold}` substituted),
    /// `data.split_seed`, `model.input_size` and `[preprocess]` filled in. `name` stays as
    /// written (a `{fold}` in it is substituted by [`Self::run_name`]). This is what
    /// [`Self::resolved_toml`] writes, so a run directory's copy runs the same experiment.
    pub fn resolved(&self) -> ExperimentConfig {
        let mut r = self.clone();
        r.output_dir = self.resolve_path(&self.output_dir);
        r.data.root = self.resolve_path(&self.data.root);
        r.data.ferplus_images = self.data.ferplus_images.as_deref().map(|p| self.resolve_path(p));
        r.data.image_root = self.data.image_root.as_deref().map(|p| self.resolve_path(p));
        r.data.split_seed = Some(self.data.split_seed.unwrap_or(self.seed));
        r.model.net.input_size = Some(self.model.net.input_size());
        if let Some(init) = &mut r.model.init {
            init.weights = self.resolve_path(&init.weights);
        }
        r.preprocess = self.preprocess.filled(&self.model);
        for t in &mut r.teachers {
            t.checkpoint = self.resolve_path(&t.checkpoint);
        }
        r
    }

    /// [`Self::resolved`] as TOML text (written into run directories as
    /// `config.resolved.toml`).
    pub fn resolved_toml(&self) -> Result<String, ConfigError> {
        Ok(toml::to_string(&self.resolved())?)
    }

    /// SHA-256 (lowercase hex) of [`Self::resolved_toml`]: equal for configs that run the same
    /// experiment on the same machine paths, whatever their formatting, comments or defaults
    /// left implicit.
    pub fn config_hash(&self) -> Result<String, ConfigError> {
        let digest = Sha256::digest(self.resolved_toml()?.as_bytes());
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The student's preprocessing: ImageNet defaults at `model.input_size` with the
    /// `[preprocess]` overrides applied.
    pub fn student_preprocess(&self) -> fer_models_spec::Preprocess {
        self.preprocess.resolve(&self.model)
    }

    /// The teacher named `name`.
    pub fn teacher(&self, name: &str) -> Option<&TeacherConfig> {
        self.teachers.iter().find(|t| t.name == name)
    }
}

/// A serde_path_to_error path as `a.b[0].c` (empty for the root).
fn path_string(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// For an "unknown field `x`" error whose span is a whole table (tagged enums such as loss
/// terms report it so), the offset of the line in the span that sets `x`.
fn unknown_key_offset(text: &str, span: &std::ops::Range<usize>, message: &str) -> Option<usize> {
    let key = message.strip_prefix("unknown field `")?.split('`').next()?;
    let region = text.get(span.start..span.end.min(text.len()))?;
    let mut offset = span.start;
    for line in region.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let rest = trimmed.strip_prefix(key).map(str::trim_start);
        if rest.is_some_and(|r| r.starts_with('=')) {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Removes `.` and resolves `..` lexically (`a/b/../c` → `a/c`; `/..` → `/`).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/b/../../../c/./d")), PathBuf::from("/c/d"));
        assert_eq!(normalize(Path::new("../a/../../b")), PathBuf::from("../../b"));
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, text.find('=').unwrap()), (1, 3));
        assert_eq!(line_col(text, text.rfind('=').unwrap()), (2, 4));
    }
}
