//! ONNX Runtime through `ort`, loading the shared library at run time.
//!
//! Where the library comes from, first match wins:
//! 1. the `--ort-library` flag ([`use_library`]) or the `ORT_DYLIB_PATH` environment variable
//!    (an error if either names a missing file);
//! 2. a `libonnxruntime.so*` next to the executable, or in `../lib` beside its folder (an
//!    installed copy with its library beside it);
//! 3. the active Python environment (`$VIRTUAL_ENV`): the `onnxruntime` wheel's `capi/` folder;
//! 4. the path `scripts/setup.sh` links at build time (`FER_ORT_DYLIB_DEFAULT`, the checkout's
//!    `.deps/libonnxruntime.so`), if it still exists;
//! 5. the system: the folders of `LD_LIBRARY_PATH`, then `/usr/local/lib`,
//!    `/usr/lib/x86_64-linux-gnu` (or the machine's multiarch folder) and `/usr/lib`.
//!
//! The search is always built (`fer-infer env` reports it); the runner, [`OrtRunner`], needs the
//! cargo feature `ort` (on by default).
//!
//! `ort` panics when it has no library, so [`find_library`] checks before anything calls into
//! `ort`, and a missing library is an [`Error::OrtLibrary`] that says where we looked
//! (`fer-infer` then falls back to tract unless `--backend ort` was asked for).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

#[cfg(feature = "ort")]
mod runner;
#[cfg(feature = "ort")]
pub use runner::{OrtRunner, environment};

/// The environment variable naming the library explicitly.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// The library path fixed at build time by `.cargo/config.toml` (`.deps/libonnxruntime.so`).
const BUILD_DEFAULT: Option<&str> = option_env!("FER_ORT_DYLIB_DEFAULT");

/// The library named on the command line, if any (set once, before the first session).
static FLAG: OnceLock<PathBuf> = OnceLock::new();

/// Names the library explicitly (the `--ort-library` flag); it wins over every other place.
/// Only the first call counts.
pub fn use_library(path: PathBuf) {
    let _ = FLAG.set(path);
}

/// Set to `1` by tests to ignore the paths fixed at build time, as if the checkout that built
/// the binary had been moved away.
pub const NO_BUILD_PATHS_ENV: &str = "FER_NO_BUILD_PATHS";

/// Whether paths fixed at build time may be used (see [`NO_BUILD_PATHS_ENV`]).
pub fn build_paths_allowed() -> bool {
    std::env::var_os(NO_BUILD_PATHS_ENV).is_none_or(|v| v.is_empty() || v == "0")
}

/// Whether the library was named explicitly (`--ort-library` or `ORT_DYLIB_PATH`): then its
/// absence is an error, never a reason to run on another runtime.
pub fn library_named() -> bool {
    FLAG.get().is_some() || std::env::var_os(DYLIB_ENV).is_some_and(|p| !p.is_empty())
}

/// Finds the ONNX Runtime shared library (see the module doc for the order).
pub fn find_library() -> Result<PathBuf> {
    let named = FLAG.get().map(|p| ("--ort-library", p.clone())).or_else(|| {
        std::env::var_os(DYLIB_ENV).filter(|p| !p.is_empty()).map(|p| (DYLIB_ENV, PathBuf::from(p)))
    });
    if let Some((by, p)) = named {
        if p.is_file() {
            return Ok(p);
        }
        let msg = if by == DYLIB_ENV {
            format!(
                "{DYLIB_ENV}={} does not exist; point {DYLIB_ENV} at libonnxruntime.so \
                 (scripts/setup.sh installs one in .venv) or unset it",
                p.display()
            )
        } else {
            format!("{by} {} does not exist; give the path of libonnxruntime.so", p.display())
        };
        return Err(Error::OrtLibrary { msg });
    }
    let mut looked = Vec::new();
    for d in search_dirs() {
        if let Some(found) = library_in(&d) {
            return Ok(found);
        }
        looked.push(format!("{}/libonnxruntime.so*", d.display()));
    }
    Err(Error::OrtLibrary {
        msg: format!(
            "libonnxruntime.so not found ({DYLIB_ENV} is not set; looked in {}); run \
             scripts/setup.sh, or set {DYLIB_ENV} to the library's path",
            looked.join(", ")
        ),
    })
}

/// The folders searched after the flag and the environment variable, in order.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir.clone());
        dirs.push(dir.join("..").join("lib"));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        let lib = PathBuf::from(venv).join("lib");
        let pythons = std::fs::read_dir(&lib).into_iter().flatten().flatten();
        let mut found: Vec<PathBuf> = pythons
            .map(|e| e.path().join("site-packages/onnxruntime/capi"))
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        dirs.extend(found);
    }
    if let Some(parent) =
        BUILD_DEFAULT.filter(|_| build_paths_allowed()).and_then(|p| Path::new(p).parent())
    {
        dirs.push(parent.to_path_buf());
    }
    if let Some(ld) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&ld).filter(|p| !p.as_os_str().is_empty()));
    }
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    dirs.extend(["/usr/local/lib", &multiarch, "/usr/lib"].map(PathBuf::from));
    dirs
}

/// The library's version, read from its (resolved) file name `libonnxruntime.so.1.32.0`;
/// `None` when the name carries none.
pub fn version_of(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = real.file_name()?.to_str()?;
    let v = name.strip_prefix("libonnxruntime.so.")?;
    (!v.is_empty()).then(|| v.to_string())
}

fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}
