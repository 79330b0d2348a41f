//! What the integration tests of every crate share: where the project's Python is (one policy
//! for all of them), and the committed golden files that stand in for Python in the cheap
//! checks.
//!
//! **Python.** Tests that compare with an independent reference at test time (torchvision,
//! ONNX Runtime, PIL, torch) run the interpreter of the repository's virtualenv, `.venv/`, made
//! by `scripts/setup.sh`. Its absence is a failure, not a skip: [`python`] panics with a
//! sentence naming `scripts/setup.sh`, so a green `cargo test` means those references ran.
//! Only optional contents of the venv (scikit-image's sample photos, `imageio-ffmpeg`) let a
//! test say `SKIPPED` and pass; those tests look under [`venv`] themselves. The exception:
//! the live torch cross-checks of crates that otherwise need no Python (fer-checkpoint) ask
//! [`live_python`], which skips them with a printed reason when the venv is missing, except
//! under CI (`CI=true`, set by `.ci/run`), where that is still a failure.
//! `FER_TEST_VENV` (read at test time) points every test at another venv; pointing it at a
//! missing folder shows which tests need one.
//!
//! **Goldens.** A cheap check (metrics, pickle decoding, `.pth` files, preprocessing, synth
//! learnability) reads the reference's answer from `<crate>/tests/golden/`, written by
//! `scripts/golden/make_golden.py` (its module documentation says how to regenerate them).
//! When the test generates its inputs itself (seeded), the golden records their SHA-256
//! ([`fingerprint`]), so a changed input generator fails with the regeneration command instead
//! of comparing against stale numbers.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The repository root (the workspace's `FER_REPO_ROOT`, set in `.cargo/config.toml`).
pub const REPO_ROOT: &str = env!("FER_REPO_ROOT");

/// The environment variable that replaces `<repo>/.venv` as the tests' virtualenv.
pub const VENV_VAR: &str = "FER_TEST_VENV";

/// The environment variable naming a folder into which golden-backed tests write their
/// generated inputs (for `scripts/golden/make_golden.py`); unset in normal runs.
pub const GOLDEN_INPUTS_VAR: &str = "FER_GOLDEN_INPUTS";

/// The tests' virtualenv: `$FER_TEST_VENV` when set, else `<repo>/.venv`. It may be missing.
pub fn venv() -> PathBuf {
    match std::env::var_os(VENV_VAR).filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => Path::new(REPO_ROOT).join(".venv"),
    }
}

/// The venv's interpreter. Panics when it is missing (see the crate documentation).
pub fn python() -> PathBuf {
    let p = venv().join("bin/python");
    assert!(
        p.exists(),
        "{} is missing: this test runs the project's Python (run scripts/setup.sh)",
        p.display()
    );
    p
}

/// Whether a missing venv must fail the live cross-checks: `CI` set to anything but empty,
/// `0` or `false` (`.ci/run` sets `CI=true`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// For the live cross-checks against torch/torchvision that stay live (they need models or
/// files only the reference can make at test time): the venv's interpreter, or `None` after
/// printing why the test is skipped when the venv is missing outside CI. Under CI
/// ([`under_ci`]) a missing venv panics like [`python`], so CI never passes without them.
pub fn live_python(test: &str) -> Option<PathBuf> {
    let p = venv().join("bin/python");
    if p.exists() || under_ci() {
        return Some(python());
    }
    eprintln!(
        "SKIPPED {test}: live cross-check against torch, and {} is missing (run \
         scripts/setup.sh; under CI=true this is a failure)",
        p.display()
    );
    None
}

/// Runs the venv's Python with `args`; panics with its stderr when it fails. Returns stdout.
pub fn run_python<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let py = python();
    let out = Command::new(&py)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run scripts/setup.sh): {e}", py.display()));
    assert!(
        out.status.success(),
        "python {:?} failed ({}):\n{}",
        args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python printed UTF-8")
}

/// The file `name` under `crate_dir/tests/golden/` (pass `env!("CARGO_MANIFEST_DIR")`).
pub fn golden_path(crate_dir: &str, name: &str) -> PathBuf {
    Path::new(crate_dir).join("tests/golden").join(name)
}

/// The JSON golden `name` under `crate_dir/tests/golden/`.
pub fn golden_json(crate_dir: &str, name: &str) -> serde_json::Value {
    let path = golden_path(crate_dir, name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (made by scripts/golden/make_golden.py)", path.display())
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lowercase hex SHA-256 of the concatenated `parts`: the fingerprint a golden keeps of the
/// inputs its answers were computed on.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Panics unless the inputs a test generated are those its golden was computed on.
pub fn assert_golden_inputs(case: &str, golden: &serde_json::Value, parts: &[&[u8]]) {
    let got = fingerprint(parts);
    let want = golden["inputs_sha256"].as_str().unwrap_or("(none)");
    assert_eq!(
        got, want,
        "{case}: the generated inputs are not those of the golden file; if the change is \
         intended, regenerate the goldens (bash scripts/golden/make_golden.sh)"
    );
}

/// Writes `bytes` as `<$FER_GOLDEN_INPUTS>/<rel>` when that variable is set (the first step of
/// `scripts/golden/make_golden.sh`); does nothing otherwise.
pub fn dump_golden_input(rel: &str, bytes: &[u8]) {
    let Some(dir) = std::env::var_os(GOLDEN_INPUTS_VAR).filter(|v| !v.is_empty()) else {
        return;
    };
    let path = Path::new(&dir).join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("creating the golden inputs folder");
    }
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
