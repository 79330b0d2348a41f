//! `--set key=value` overrides, applied to the config's TOML tree and re-typed.

use std::path::Path;

use toml::Value;

use super::{ConfigError, ExperimentConfig, path_string};

/// Fields holding paths (`*` stands for any array index): their relative `--set` values are
/// made absolute against the working directory.
const PATH_FIELDS: [&str; 6] = [
    "output_dir",
    "data.root",
    "data.image_root",
    "data.ferplus_images",
    "model.init.weights",
    "teachers.*.checkpoint",
];

impl ExperimentConfig {
    /// Applies `--set` overrides in order, each `key=value`:
    /// - `key` is a dotted path; array entries are numbered from 0 (`stages.0.epochs` or
    ///   `stages[0].epochs`, `stages.1.loss.0.weight`); a missing table on the way is created
    ///   (`model.init.weights=…`), an array index must exist;
    /// - `value` is read as a TOML value (`0.05`, `true`, `"text"`, `[1, 2]`,
    ///   `{ weights = "w.pth" }`); text that is not TOML is taken as a string, so
    ///   `data.root=/data/raf-db` needs no quotes;
    /// - a relative path given to a path field (`output_dir`, `data.root`, `data.image_root`,
    ///   `data.ferplus_images`, `model.init.weights`, `teachers.N.checkpoint`) is resolved
    ///   against the current working directory.
    ///
    /// After each override the config is re-typed, so an unknown field (its parent table lists
    /// the allowed ones) or a wrong type is an error naming the `--set`. The config is left
    /// unchanged when any override fails. Run [`Self::validate`] afterwards.
    pub fn apply_overrides<S: AsRef<str>>(&mut self, sets: &[S]) -> Result<(), ConfigError> {
        self.apply_overrides_in(sets, None)
    }

    /// [`Self::apply_overrides`] with relative path values resolved against `base` instead of
    /// the current working directory (a sweep task applies the overrides of a sweep planned
    /// in another folder: `fer_train::sweep`). `None`: the working directory.
    pub fn apply_overrides_in<S: AsRef<str>>(
        &mut self,
        sets: &[S],
        base: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let mut tree = Value::try_from(&*self)?;
        let mut typed = self.clone();
        for set in sets {
            let set = set.as_ref();
            let fail = |field: &str, message: String| ConfigError::Override {
                set: set.to_string(),
                field: field.to_string(),
                message,
            };
            let (key, raw) = set
                .split_once('=')
                .ok_or_else(|| fail("", "expected key=value (e.g. optim.lr=0.05)".into()))?;
            let keys = split_key(key.trim());
            if keys.iter().any(|k| k.is_empty()) {
                return Err(fail("", format!("{key:?} is not a dotted field path")));
            }
            let mut value = parse_value(raw.trim());
            if is_path_field(&keys)
                && let Value::String(s) = &value
            {
                let abs = match base {
                    Some(b) if Path::new(s).is_relative() => b.join(s),
                    _ => std::path::absolute(Path::new(s))
                        .map_err(|e| fail(key, format!("resolving the path: {e}")))?,
                };
                value = Value::String(abs.to_string_lossy().into_owned());
            }
            set_at(&mut tree, &keys, value).map_err(|(field, msg)| fail(&field, msg))?;
            let mut next: ExperimentConfig = serde_path_to_error::deserialize(tree.clone())
                .map_err(|e| {
                    let field = path_string(e.path());
                    fail(&field, e.into_inner().message().trim_end().to_string())
                })?;
            next.origin = self.origin.clone();
            typed = next;
        }
        *self = typed;
        Ok(())
    }
}

/// `a.b[0].c` and `a.b.0.c` both become `["a", "b", "0", "c"]`.
fn split_key(key: &str) -> Vec<String> {
    key.replace('[', ".").replace(']', "").split('.').map(|s| s.trim().to_string()).collect()
}

fn is_path_field(keys: &[String]) -> bool {
    PATH_FIELDS.iter().any(|pattern| {
        let parts: Vec<&str> = pattern.split('.').collect();
        parts.len() == keys.len()
            && parts
                .iter()
                .zip(keys)
                .all(|(p, k)| *p == k || (*p == "*" && k.parse::<usize>().is_ok()))
    })
}

/// Reads `raw` as a TOML value, or as a string when it is not one.
fn parse_value(raw: &str) -> Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Sets `keys` in `tree` to `value`; on failure returns the path walked and why.
fn set_at(tree: &mut Value, keys: &[String], value: Value) -> Result<(), (String, String)> {
    let mut node = tree;
    let mut walked = String::new();
    for (i, key) in keys.iter().enumerate() {
        let last = i + 1 == keys.len();
        let here = walked.clone();
        node = match node {
            Value::Table(t) => {
                if last {
                    t.insert(key.clone(), value);
                    return Ok(());
                }
                t.entry(key.clone()).or_insert_with(|| Value::Table(Default::default()))
            }
            Value::Array(a) => {
                let len = a.len();
                let idx = key.parse::<usize>().map_err(|_| {
                    (here.clone(), format!("is a list: expected an index 0..{len}, got {key:?}"))
                })?;
                let slot = a.get_mut(idx).ok_or_else(|| {
                    (here.clone(), format!("has {len} entries: index {idx} does not exist"))
                })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            other => {
                return Err((
                    here,
                    format!(
                        "is a {}, not a table: {key:?} cannot be set inside it",
                        other.type_str()
                    ),
                ));
            }
        };
        walked = if walked.is_empty() { key.clone() } else { format!("{walked}.{key}") };
    }
    Err((walked, "empty key".into()))
}
