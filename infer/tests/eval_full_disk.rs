//! `fer-infer eval` on a disk that fills up while it writes (issue 18, case 9): an error
//! sentence naming the file that could not be written, exit code 1, and no truncated output
//! left behind — every file is the previous complete version or absent. The full disk is a
//! file-size limit (`ulimit -f`, with SIGXFSZ ignored so writes fail with EFBIG instead of
//! killing the process), which needs no root and no special mount.

mod common;

use std::path::Path;
use std::process::Command;

use fer_models_spec::{Arch, ArchConfig};

/// Runs `fer-infer args` under a file-size limit of `kib` KiB.
fn eval_with_size_limit(kib: u64, args: &[&str]) -> (String, i32) {
    let script = format!("trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"", kib * 2);
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_fer-infer"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let (_, err) = common::texts(&o);
    (err, o.status.code().unwrap_or(-1))
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn eval_on_a_full_disk_names_the_file_and_leaves_no_truncated_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(32).with_width(0.25);
    let model = common::export(dir.path(), "m", &cfg, 1.0, false, 3);
    let data = dir.path().join("data");
    for (k, class) in ["happy", "sad", "angry"].iter().enumerate() {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..4u8 {
            let px = image::Rgb([40 * k as u8 + i, 90, 200 - i]);
            image::RgbImage::from_pixel(40, 40, px)
                .save(data.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let out = dir.path().join("eval");
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--format",
        "image-folder",
        "--out",
        out.to_str().unwrap(),
    ];
    // Room for the small files, not for the plots (tens of KiB each).
    let (err, code) = eval_with_size_limit(8, &args);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(".png") && line.contains(out.to_str().unwrap()), "{line}");
    assert!(line.contains("File too large"), "{line}");
    assert!(!line.contains("at path"), "the temporary file is not the user's concern: {line}");
    // No truncated plot, no temporary file: only complete outputs written before the limit.
    let left = files(&out);
    assert!(left.iter().all(|f| !f.ends_with(".png") && !f.ends_with(".tmp")), "{left:?}");
    for f in &left {
        let bytes = std::fs::read(out.join(f)).unwrap();
        if f.ends_with(".json") {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
    // With room, the same command writes everything; a later failure keeps those files whole.
    let (err, code) = eval_with_size_limit(1 << 20, &args);
    assert_eq!(code, 0, "{err}");
    let full = files(&out);
    assert!(full.contains(&"confusion.png".to_string()), "{full:?}");
    let before: Vec<Vec<u8>> = full.iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
    let (_, code) = eval_with_size_limit(8, &args);
    assert_eq!(code, 1);
    assert_eq!(files(&out), full);
    for (f, b) in full.iter().zip(&before) {
        let now = std::fs::read(out.join(f)).unwrap();
        if f.ends_with(".png") {
            assert_eq!(&now, b, "{f} changed");
        }
    }
}
