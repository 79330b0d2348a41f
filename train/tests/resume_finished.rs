//! `fer-train resume` of a finished run (its `outcome.json` written) says so, exits 0 and
//! leaves every file of the run as it was; the floats of `metrics.jsonl` survive a JSON round
//! trip bit for bit (a resume of an unfinished run rewrites them).

mod cli_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use cli_support::{ce_stage, config, fer_train, s, synth};

/// Every file under `dir` (recursively): its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, (std::fs::read(&p).unwrap(), meta.modified().unwrap()));
            }
        }
    }
    out
}

#[test]
fn resuming_a_finished_run_says_so_and_changes_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = config(tmp.path(), "done", &ce_stage(1));
    let out = fer_train(&["run", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tmp.path().join("runs/done");
    assert!(dir.join("outcome.json").is_file());
    let before = snapshot(&dir);
    for f in ["metrics.jsonl", "env.json", "split.json", "outcome.json", "last.safetensors"] {
        assert!(before.contains_key(f), "{f} missing: {:?}", before.keys());
    }
    // Coarse file-system clocks: a rewrite within the same tick would keep the mtime.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let out = fer_train(&["resume", s(&dir)]);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("finished"), "{stdout}\n{stderr}");
    let after = snapshot(&dir);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    for (name, (bytes, mtime)) in &before {
        let (b, m) = &after[name];
        assert!(b == bytes, "{name} was rewritten with other bytes");
        assert_eq!(m, mtime, "{name} was rewritten");
    }
}

#[test]
fn metrics_floats_survive_a_json_round_trip_bit_for_bit() {
    // Deterministic f64s spread over the magnitudes metrics take (losses, accuracies, seconds,
    // learning rates): serde_json's default float parser is off by one ULP for some of them.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bad = Vec::new();
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
        let v = mantissa * 10f64.powi((i % 12) - 6);
        let text = serde_json::to_string(&v).unwrap();
        let back: f64 = serde_json::from_str(&text).unwrap();
        if back.to_bits() != v.to_bits() {
            bad.push((text, back));
        }
    }
    assert!(
        bad.is_empty(),
        "{} values changed, for example {:?}",
        bad.len(),
        &bad[..bad.len().min(3)]
    );
}
