//! Tensor layouts, dtypes and container shapes that `torch.save` produces, read like torch. The
//! files and the tensors torch holds for them are committed under `tests/golden/pth/`
//! (`scripts/golden/make_golden.py pth`, whose `pth()` lists the cases), so this test needs no
//! Python.

mod common;

use fer_checkpoint::{load_weights, read_pth, read_safetensors};
use fer_test_support::{golden_json, golden_path};

#[test]
fn every_case_reads_exactly_what_torch_holds() {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let expected = golden_json(crate_dir, "pth/expected.json");
    let cases = expected["edge_cases"].as_object().unwrap();
    assert_eq!(cases.len(), 12, "cases written");
    for (file, exp) in cases {
        let path = golden_path(crate_dir, &format!("pth/{file}"));
        if file.ends_with(".safetensors") {
            let (got, meta) = read_safetensors(&path).unwrap();
            common::assert_tensors_eq(file, &got, exp);
            assert_eq!(meta.get("who").map(String::as_str), Some("python"));
            assert_eq!(meta.len(), 2, "{meta:?}");
        } else {
            let got = read_pth(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
            common::assert_tensors_eq(file, &got, exp);
        }
        let sniffed = load_weights(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        common::assert_tensors_eq(file, &sniffed, exp);
    }
}
