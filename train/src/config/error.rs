//! Errors of loading, overriding and validating an experiment config.

use std::fmt;
use std::path::PathBuf;

/// Why a config could not be read, overridden, validated or written out.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a value does not have the type of its field.
    #[error("{}{}: {}{message}", origin.display(), line_col(*line, *column), field_prefix(field))]
    Parse {
        /// The config file (as given).
        origin: PathBuf,
        /// 1-based line of the offending text, when TOML reported a position.
        line: Option<usize>,
        /// 1-based column (in characters) of the offending text.
        column: Option<usize>,
        /// Dotted path of the field, e.g. `stages[0].loss[1]`; empty for syntax errors.
        field: String,
        /// What is wrong, with the allowed values where serde names them.
        message: String,
    },
    /// A `--set key=value` override could not be applied.
    #[error("--set {set}: {}{message}", field_prefix(field))]
    Override {
        /// The override as given.
        set: String,
        /// Dotted path of the field concerned (may be shorter than the key when a parent is
        /// what fails, e.g. the table that has no such field).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The config parsed but breaks semantic rules.
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
    /// The config could not be written back as TOML (for example a path that is not UTF-8).
    #[error("writing the resolved config as TOML: {0}")]
    Serialize(#[from] toml::ser::Error),
}

fn line_col(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() { String::new() } else { format!("{field}: ") }
}

/// One semantic problem: the field it concerns and what is wrong (with the allowed values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted path of the field, e.g. `stages[1].loss[0].teacher`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every semantic problem found in one config (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The config file the problems are in (as given).
    pub origin: PathBuf,
    /// The problems, in the order of the config's sections.
    pub issues: Vec<ConfigIssue>,
}

impl ConfigErrors {
    /// Whether the problem list names `field` exactly.
    pub fn concerns(&self, field: &str) -> bool {
        self.issues.iter().any(|i| i.field == field)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        if let [one] = &self.issues[..] {
            return write!(f, "{}: {one}", self.origin.display());
        }
        let s = if n == 1 { "" } else { "s" };
        write!(f, "{}: {n} problem{s}", self.origin.display())?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
