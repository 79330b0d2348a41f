//! What every target shares: a private scratch folder for parsers that read files by path.

use std::path::PathBuf;

/// `name` inside this process's scratch folder (created once), for the bytes under test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fer-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir.join(name)
}

/// Writes `bytes` to `name` in the scratch folder and returns its path.
pub fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch(name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("scratch folder");
    }
    std::fs::write(&p, bytes).expect("scratch file");
    p
}
