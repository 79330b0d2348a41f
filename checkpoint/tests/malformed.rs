//! Damaged or foreign files are errors that name the file; nothing panics. The files
//! `torch.save` wrote are committed under `tests/golden/pth/` (`scripts/golden/make_golden.py
//! pth`), so this test needs no Python.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use fer_checkpoint::{Checkpoint, Error, load_weights, read_pth, read_safetensors};
use fer_test_support::{golden_json, golden_path};

/// Every reader fails on `path` with a message naming it.
fn assert_all_readers_fail(path: &Path) {
    let shown = path.display().to_string();
    let errors: Vec<(&str, Error)> = vec![
        ("load_weights", load_weights(path).unwrap_err()),
        ("read_pth", read_pth(path).unwrap_err()),
        ("read_safetensors", read_safetensors(path).unwrap_err()),
        ("Checkpoint::load", Checkpoint::load(path).unwrap_err()),
    ];
    for (reader, e) in errors {
        assert!(e.to_string().contains(&shown), "{reader}: `{e}` does not name {shown}");
    }
}

/// A zip of `entries`, stored uncompressed like `torch.save` does.
fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        z.start_file(name.as_str(), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

fn read_zip(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().to_string(), b)
        })
        .collect()
}

#[test]
fn garbage_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut bad_header = 64u64.to_le_bytes().to_vec();
    bad_header.extend_from_slice(
        b"{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 99]}}",
    );
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("random.pth", random),
        ("text.safetensors", b"just some text\nnot weights\n".to_vec()),
        ("empty.pth", Vec::new()),
        ("bad_header.safetensors", bad_header),
        ("pickle_only.pth", vec![0x80, 0x02, b'}', b'.']),
    ];
    for (name, bytes) in &files {
        std::fs::write(d.join(name), bytes).unwrap();
        assert_all_readers_fail(&d.join(name));
    }
    for name in ["random.pth", "text.safetensors", "empty.pth"] {
        let e = load_weights(d.join(name)).unwrap_err().to_string();
        assert!(e.ends_with("not a PyTorch .pth or .safetensors file"), "{e}");
    }
    write_zip(&d.join("no_pickle.pth"), &[("archive/version".into(), b"3\n".to_vec())]);
    assert_all_readers_fail(&d.join("no_pickle.pth"));
    assert!(read_pth(d.join("no_pickle.pth")).unwrap_err().to_string().contains("data.pkl"));
    assert_all_readers_fail(&d.join("does_not_exist.pth"));
    assert!(matches!(load_weights(d.join("does_not_exist.pth")), Err(Error::Io { .. })));
}

/// The files `torch.save` wrote (`scripts/golden/make_golden.py pth`) and what they hold.
fn golden(name: &str) -> PathBuf {
    golden_path(env!("CARGO_MANIFEST_DIR"), &format!("pth/{name}"))
}

#[test]
fn truncated_corrupted_legacy_and_unsupported_pth_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let expected = golden_json(env!("CARGO_MANIFEST_DIR"), "pth/expected.json");
    let small = golden("small.pth");
    common::assert_tensors_eq("small.pth", &read_pth(&small).unwrap(), &expected["small.pth"]);

    let legacy = golden("legacy.pth");
    for e in [load_weights(&legacy).unwrap_err(), read_pth(&legacy).unwrap_err()] {
        let e = e.to_string();
        assert!(e.contains("legacy") && e.contains("torch.save(torch.load("), "{e}");
        assert!(e.contains(&legacy.display().to_string()), "{e}");
    }
    let e = read_pth(golden("quantized.pth")).unwrap_err().to_string();
    assert!(e.contains("unsupported storage type torch.QInt8Storage"), "{e}");
    assert!(e.contains("quantized.pth"), "{e}");
    let e = read_pth(golden("sparse.pth")).unwrap_err().to_string();
    assert!(e.contains("unsupported tensor kind `torch._utils._rebuild_sparse_tensor`"), "{e}");
    assert!(e.contains("sparse.pth"), "{e}");

    // The whole file cut anywhere.
    let full = std::fs::read(&small).unwrap();
    let cut = d.join("cut.pth");
    for len in (0..full.len()).step_by((full.len() / 150).max(1)).chain(full.len() - 3..full.len())
    {
        std::fs::write(&cut, &full[..len]).unwrap();
        let e = read_pth(&cut).expect_err("a truncated file must not read");
        assert!(e.to_string().contains(&cut.display().to_string()), "{e}");
        assert!(load_weights(&cut).is_err());
    }

    // data.pkl cut anywhere, or with any byte changed: errors (or, rarely, other valid
    // pickles), never a panic.
    let entries = read_zip(&small);
    let pkl_at = entries.iter().position(|(n, _)| n.ends_with("/data.pkl")).unwrap();
    let pkl = entries[pkl_at].1.clone();
    let bad = d.join("bad.pth");
    let with_pkl = |p: Vec<u8>| {
        let mut e = entries.clone();
        e[pkl_at].1 = p;
        write_zip(&bad, &e);
    };
    for len in 0..pkl.len() {
        with_pkl(pkl[..len].to_vec());
        let e = read_pth(&bad).expect_err("a truncated pickle must not read").to_string();
        assert!(e.contains("bad.pth") && e.contains("data.pkl"), "{e}");
    }
    let mut failures = 0;
    for i in 0..pkl.len() {
        for v in [0x00, 0xff, pkl[i] ^ 0x01, pkl[i].wrapping_add(0x20)] {
            let mut p = pkl.clone();
            p[i] = v;
            with_pkl(p);
            if let Err(e) = read_pth(&bad) {
                failures += 1;
                assert!(e.to_string().contains("bad.pth"), "{e}");
            }
        }
    }
    assert!(failures > pkl.len(), "most corruptions must be detected ({failures})");

    // A storage shorter than its tensors.
    let mut short = entries.clone();
    let storage = short.iter_mut().find(|(n, b)| n.contains("/data/") && b.len() == 72).unwrap();
    storage.1.truncate(40);
    write_zip(&bad, &short);
    let e = read_pth(&bad).unwrap_err().to_string();
    assert!(e.contains("conv.weight") && e.contains("past storage"), "{e}");
}

/// A safetensors file: 8-byte header length, the JSON header, then `data`.
fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

#[test]
fn damaged_safetensors_errors_name_the_tensor_and_the_bytes_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let two = r#"{"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                  "b": {"dtype": "F32", "shape": [4], "data_offsets": [24, 40]}}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // Cut inside tensor b, as an interrupted copy leaves it.
        (
            "truncated",
            safetensors_bytes(two, &[0; 30]),
            "tensor `b`: data_offsets [24, 40] run past the end of the data (30 bytes; the file is truncated)",
        ),
        // a's offsets give 20 bytes where its shape needs 24.
        (
            "wrong_size",
            safetensors_bytes(
                r#"{"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}"#,
                &[0; 20],
            ),
            "tensor `a`: F32 [2, 3] needs 24 bytes, its data_offsets [0, 20] give 20",
        ),
        // Bytes after the last tensor.
        (
            "padded",
            safetensors_bytes(two, &[0; 48]),
            "the tensors end at data byte 40, but the data part has 48 bytes",
        ),
        (
            "short_header",
            {
                let mut b = safetensors_bytes(two, &[0; 40]);
                b.truncate(50);
                b
            },
            "the first 8 bytes declare a",
        ),
        ("tiny", vec![1, 2, 3], "3 bytes, fewer than the 8-byte header length"),
    ];
    for (name, bytes, want) in cases {
        let p = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&p, bytes).unwrap();
        let e = read_safetensors(&p).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{name}: {e}");
        assert!(e.contains(want), "{name}: `{e}` lacks `{want}`");
        assert!(!e.contains("MetadataIncompleteBuffer") && !e.contains("TensorInvalidInfo"), "{e}");
    }
}
