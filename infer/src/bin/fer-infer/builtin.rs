//! The student shipped with the toolkit (`models/`, described in `docs/models.md`), built into
//! the binary: what `--model` means when it is left out, so that `predict` and `live` work
//! from anywhere without a download.
//!
//! The runtimes and the metadata reader take a file, so the bytes are written once into the
//! user's cache (`$XDG_CACHE_HOME/fer-toolkit/`, else `~/.cache/fer-toolkit/`, else the system
//! temporary folder), under a name carrying their SHA-256, and read from there.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// File name of the built-in model.
pub const NAME: &str = "fer2013_mobilenet_v3_large.onnx";

/// The built-in model's bytes.
const BYTES: &[u8] = include_bytes!("../../../../models/fer2013_mobilenet_v3_large.onnx");

/// The model file to use: `given`, or the built-in model (written to the cache if needed).
pub fn model_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let digest = Sha256::digest(BYTES);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let dir = cache_dir();
    let stem = NAME.trim_end_matches(".onnx");
    let path = dir.join(format!("{stem}-{hex}.onnx"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == BYTES.len() as u64) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating {} for the built-in model", dir.display()))?;
    // The toolkit's one atomic writer: two processes starting at once each write their own
    // temporary file, and a reader never sees half a model.
    fer_checkpoint::write_atomic(&path, BYTES)
        .with_context(|| format!("writing the built-in model to {}", path.display()))?;
    tracing::info!(model = %path.display(), "no --model given: the built-in model {NAME} (docs/models.md)");
    Ok(path)
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("fer-toolkit")
}
