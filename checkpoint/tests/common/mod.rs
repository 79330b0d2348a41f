//! Helpers shared by the integration tests: Python scripts (run by `fer_test_support`) and
//! expected-value JSON.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;

use fer_checkpoint::{HostTensor, TensorData, TensorMap};

/// Python prelude: `bits(t)` describes a tensor exactly (f32 bit patterns or i64 values).
pub const PRELUDE: &str = include_str!("../py/describe.py");

/// Runs `script` (after [`PRELUDE`]) with `dir` as `sys.argv[1]`; returns stdout.
pub fn python(script: &str, dir: &Path) -> String {
    let script = format!("{PRELUDE}\n{script}");
    fer_test_support::run_python(&[OsStr::new("-c"), OsStr::new(&script), dir.as_os_str()])
}

/// Whether the live cross-check `test` runs: false (after printing why) when the venv is
/// missing outside CI (`fer_test_support::live_python`).
pub fn live(test: &str) -> bool {
    fer_test_support::live_python(test).is_some()
}

/// Asserts that `got` has exactly the tensors `expected` (a JSON object of `bits(t)`),
/// bit for bit.
pub fn assert_tensors_eq(case: &str, got: &TensorMap, expected: &serde_json::Value) {
    let exp = expected.as_object().unwrap_or_else(|| panic!("{case}: expected an object"));
    let got_names: Vec<&String> = got.keys().collect();
    let mut exp_names: Vec<&String> = exp.keys().collect();
    exp_names.sort();
    assert_eq!(got_names, exp_names, "{case}: tensor names");
    for (name, e) in exp {
        let t = &got[name];
        let shape: Vec<usize> = serde_json::from_value(e["shape"].clone()).unwrap();
        assert_eq!(t.shape, shape, "{case}: shape of `{name}`");
        assert_eq!(describe(t), *e, "{case}: values of `{name}`");
    }
}

/// The same description as Python's `bits(t)`.
pub fn describe(t: &HostTensor) -> serde_json::Value {
    match &t.data {
        TensorData::F32(v) => serde_json::json!({
            "shape": t.shape,
            "f32": v.iter().map(|x| x.to_bits() as i32).collect::<Vec<_>>(),
        }),
        TensorData::I64(v) => serde_json::json!({ "shape": t.shape, "i64": v }),
    }
}
