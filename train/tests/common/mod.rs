//! Helpers shared by the libtorch integration tests: reference scripts (run by
//! `fer_test_support`) and raw tensor files.

#![allow(dead_code)]

use std::path::Path;

use tch::{Kind, Tensor};

/// Runs a script under `train/tests/py/` with arguments; panics with its stderr on failure.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(script);
    let mut all = vec![path.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    fer_test_support::run_python(&all)
}

/// Reads a raw little-endian file of `kind` elements into a tensor of `shape`.
pub fn read_raw(path: &Path, shape: &[i64], kind: Kind) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tensor::from_data_size(&bytes, shape, kind)
}

/// max |a - b| / max(1, max |b|): the tolerance measure of the parity tests.
pub fn rel_max_diff(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1.0);
    diff / scale
}
