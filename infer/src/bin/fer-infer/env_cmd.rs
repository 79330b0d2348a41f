//! `fer-infer env` and the long `--version`: what this binary finds and uses, and where.

use fer_infer::backend::ort as ort_lib;

/// tract's version, pinned in the workspace's Cargo.toml (a test checks it against Cargo.lock).
pub const TRACT_VERSION: &str = "0.23.9";

/// The ONNX Runtime line: its version and path, or why there is none.
fn onnx_runtime() -> String {
    match ort_lib::find_library() {
        Ok(p) => format!(
            "{} ({})",
            ort_lib::version_of(&p).unwrap_or_else(|| "of unknown version".into()),
            p.display()
        ),
        Err(_) => "not found (tract runs instead; `fer-infer env` says where it looked)".into(),
    }
}

/// `--version --long` text: version, commit and the runtimes.
pub fn long_version() -> &'static str {
    fer_checkpoint::cli::long_version(
        env!("CARGO_PKG_VERSION"),
        &[("ONNX Runtime", onnx_runtime()), ("tract", TRACT_VERSION.into())],
    )
}

/// Prints what was found where.
pub fn run() -> anyhow::Result<()> {
    outln!("fer-infer {} (commit {})", env!("CARGO_PKG_VERSION"), fer_checkpoint::cli::COMMIT);
    match ort_lib::find_library() {
        Ok(p) => outln!(
            "ONNX Runtime: {} at {} (--backend auto uses it)",
            ort_lib::version_of(&p).unwrap_or_else(|| "version unknown".into()),
            p.display()
        ),
        Err(e) => outln!("ONNX Runtime: none ({e}); --backend auto runs on tract"),
    }
    outln!(
        "  search order: --ort-library, {}, next to the binary and ../lib, $VIRTUAL_ENV's \
         onnxruntime wheel, the checkout it was built in, LD_LIBRARY_PATH, /usr/local/lib, \
         /usr/lib",
        ort_lib::DYLIB_ENV
    );
    outln!("tract: {TRACT_VERSION} (built in)");
    for range in [fer_infer::face::Range::Short, fer_infer::face::Range::Full] {
        let source = if std::env::var_os("FER_BLAZEFACE_DIR").is_some_and(|d| !d.is_empty()) {
            "from $FER_BLAZEFACE_DIR"
        } else if embedded(range) {
            "built in"
        } else {
            "not built in: scripts/setup.sh fetches it"
        };
        match range.default_path() {
            Ok(p) => outln!(
                "face detector ({}-range): {} ({source}{})",
                range_name(range),
                p.display(),
                if p.is_file() { "" } else { ", missing" }
            ),
            Err(e) => outln!("face detector ({}-range): {e}", range_name(range)),
        }
    }
    outln!("built-in model: {} (docs/models.md)", crate::builtin::NAME);
    outln!("cache folder: {}", fer_infer::assets::cache_dir().display());
    Ok(())
}

fn embedded(range: fer_infer::face::Range) -> bool {
    match range {
        fer_infer::face::Range::Short => fer_infer::assets::BLAZEFACE_SHORT.is_some(),
        fer_infer::face::Range::Full => fer_infer::assets::BLAZEFACE_FULL.is_some(),
    }
}

fn range_name(range: fer_infer::face::Range) -> &'static str {
    match range {
        fer_infer::face::Range::Short => "short",
        fer_infer::face::Range::Full => "full",
    }
}
