//! Which face crop a checkpoint was trained on, for `fer.crop`: the run's
//! `config.resolved.toml` (beside the checkpoint, or one folder up) names the dataset, and a
//! dataset made by `fer-infer data faces` says its crop in `faces.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fer_models_spec::FaceCrop;
use fer_models_spec::crop::DatasetCrop;

/// The crop and where it was read, or `None` when no run configuration is found.
pub fn of_checkpoint(checkpoint: &Path) -> Result<Option<(FaceCrop, String)>> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let Some(config) = [dir.to_path_buf(), dir.join("..")]
        .iter()
        .map(|d| d.join("config.resolved.toml"))
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    let v: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
    let Some(root) = v.get("data").and_then(|d| d.get("root")).and_then(|r| r.as_str()) else {
        return Err(anyhow::anyhow!("{} has no data.root", config.display()));
    };
    let mut root = PathBuf::from(root);
    if root.is_relative() {
        root = config.parent().unwrap_or(Path::new(".")).join(root);
    }
    match DatasetCrop::of_dataset(&root).map_err(anyhow::Error::msg)? {
        Some(d) => Ok(Some((d.crop, format!("{}/faces.json", root.display())))),
        None => Ok(Some((FaceCrop::Dataset, format!("{} (no faces.json)", root.display())))),
    }
}
