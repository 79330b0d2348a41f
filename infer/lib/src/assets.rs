//! Files the binary carries: the BlazeFace detectors and the synthetic source's face photo,
//! embedded at build time from the checkout's `.deps/` (see `build.rs`), and the cache they
//! are written to, since the runtimes and the image reader take paths.
//!
//! The cache is `$XDG_CACHE_HOME/fer-toolkit/`, else `~/.cache/fer-toolkit/`, else the system
//! temporary folder; each file is stored under a name carrying its SHA-256, written atomically,
//! and reused when it is already there.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// `rel` inside the checkout the binary was built in (where `scripts/setup.sh` puts files),
/// or inside the current folder when build paths are ignored
/// ([`crate::backend::ort::NO_BUILD_PATHS_ENV`]) or unknown.
pub fn in_checkout(rel: &str) -> PathBuf {
    let root = option_env!("FER_REPO_ROOT")
        .filter(|_| crate::backend::ort::build_paths_allowed())
        .unwrap_or(".");
    PathBuf::from(root).join(rel)
}

/// The folder embedded files are written to.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("fer-toolkit")
}

/// The path of `bytes` in the cache, under `name` with a digest before its extension
/// (`face.png` → `face-1a2b3c4d5e6f.png`); written (atomically) only when missing.
pub fn cached(name: &str, bytes: &[u8]) -> Result<PathBuf> {
    cached_new(name, bytes).map(|(p, _)| p)
}

/// [`cached`], and whether the file was written now (`false`: it was already there).
pub fn cached_new(name: &str, bytes: &[u8]) -> Result<(PathBuf, bool)> {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let file = if ext.is_empty() { format!("{stem}-{hex}") } else { format!("{stem}-{hex}.{ext}") };
    let path = cache_dir().join(file);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok((path, false));
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })?;
    fer_checkpoint::write_atomic(&path, bytes)?;
    tracing::debug!(file = %path.display(), "wrote the built-in {name}");
    Ok((path, true))
}
