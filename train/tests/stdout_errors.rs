//! Printing to stdout never panics: a closed pipe (`fer-train data inspect … | head`) ends
//! quietly with exit 0, a full disk is an error naming stdout (exit 1).

mod cli_support;

use std::process::{Command, Stdio};

use cli_support::{BIN, assert_fails, ce_stage, config, s, synth};

#[test]
fn check_into_a_full_device_is_an_error_naming_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = config(tmp.path(), "full", &ce_stage(1));
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(BIN).args(["check", s(&cfg)]).stdout(full).output().unwrap();
    assert_fails(&out, 1, &["writing to stdout", "No space left on device"]);
}

#[test]
fn inspect_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = synth(tmp.path());
    for json in [false, true] {
        let mut c = Command::new(BIN);
        c.args(["data", "inspect", "--format", "fer2013-folder", "--root", s(&root)]);
        if json {
            c.arg("--json");
        }
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // The reader goes away before the program prints (as `| true` does).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
    }
}
