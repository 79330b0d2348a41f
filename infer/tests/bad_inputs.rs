//! A table of bad inputs walked through `fer-infer` (issue 18): every case exits with 1 (bad
//! input) or 2 (usage), prints one `error:` line that names the file and the problem, never a
//! panic, and writes nothing (the folder it runs in is byte-for-byte the same afterwards).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use fer_models_spec::{Arch, ArchConfig};

/// Every file under `dir` with its bytes' hash and length (directories as entries too).
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, usize)> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, (u64, usize)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let key = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.insert(key + "/", (0, 0));
                walk(root, &p, out);
            } else {
                let b = std::fs::read(&p).unwrap_or_default();
                let h = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
                    (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
                });
                out.insert(key, (h, b.len()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

struct Case {
    /// Arguments; `@` is replaced by the test folder.
    args: &'static str,
    code: i32,
    /// Texts the error line must contain (the file's name first).
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    // Models.
    Case {
        args: "predict --model @/missing.onnx @/good.png",
        code: 1,
        says: &["missing.onnx", "No such file"],
    },
    Case {
        args: "predict --model @/text.onnx @/good.png",
        code: 1,
        says: &["text.onnx", "not an ONNX model"],
    },
    Case { args: "predict --model @/empty.onnx @/good.png", code: 1, says: &["empty.onnx"] },
    Case {
        args: "predict --model @/cut.onnx @/good.png",
        code: 1,
        says: &["cut.onnx", "not an ONNX model"],
    },
    Case { args: "predict --model @/folder.onnx @/good.png", code: 1, says: &["folder.onnx"] },
    Case {
        args: "eval --model @/text.onnx --data @/data --format image-folder --out @/out",
        code: 1,
        says: &["text.onnx", "not an ONNX model"],
    },
    Case { args: "bench --model @/cut.onnx", code: 1, says: &["cut.onnx"] },
    Case { args: "parity --model @/text.onnx --data @/odd/train", code: 1, says: &["text.onnx"] },
    // Images.
    Case { args: "predict --model @/good.onnx @/missing.png", code: 1, says: &["missing.png"] },
    Case {
        args: "predict --model @/good.onnx @/text.png",
        code: 1,
        says: &["text.png", "not an image in a format read here"],
    },
    Case {
        args: "predict --model @/good.onnx @/cut.png",
        code: 1,
        says: &["cut.png", "cannot decode image"],
    },
    Case { args: "predict --model @/good.onnx @/cut.jpg", code: 1, says: &["cut.jpg"] },
    Case { args: "predict --model @/good.onnx @/empty.jpg", code: 1, says: &["empty.jpg"] },
    Case {
        args: "predict --model @/good.onnx @/nothing",
        code: 2,
        says: &["nothing", "no image files"],
    },
    // Datasets.
    Case {
        args: "eval --model @/good.onnx --data @/missing --format image-folder --out @/out",
        code: 1,
        says: &["missing"],
    },
    Case {
        args: "eval --model @/good.onnx --data @/nothing --format image-folder --out @/out",
        code: 1,
        says: &["nothing"],
    },
    Case {
        args: "eval --model @/good.onnx --data @/odd --format fer2013-folder --out @/out",
        code: 1,
        says: &["odd", "unknown class `xyz`"],
    },
    Case {
        args: "eval --model @/good.onnx --data @/text.csv --format fer2013-csv --out @/out",
        code: 1,
        says: &["text.csv"],
    },
    Case {
        args: "calibrate --model @/good.onnx --data @/nothing --format image-folder --out @/c.onnx",
        code: 1,
        says: &["nothing"],
    },
    // Flags that contradict the model.
    Case {
        args: "predict --model @/good.onnx --labels a,b @/good.png",
        code: 2,
        says: &["--labels", "2 labels"],
    },
    Case {
        args: "predict --model @/good.onnx --temperature=-1 @/good.png",
        code: 2,
        says: &["--temperature", "-1"],
    },
    Case {
        args: "predict --model @/good.onnx --input-size 0 @/good.png",
        code: 2,
        says: &["--input-size"],
    },
    Case { args: "predict --model @/good.onnx --top-k 0 @/good.png", code: 2, says: &["top-k"] },
    // Videos and reports.
    Case {
        args: "live --model @/good.onnx --source @/missing.avi --headless --out @/live",
        code: 1,
        says: &["missing.avi"],
    },
    Case {
        args: "live --model @/good.onnx --source @/junk.avi --headless --out @/live",
        code: 1,
        says: &["junk.avi"],
    },
    Case {
        args: "live --model @/good.onnx --source @/text.mp4 --headless --out @/live",
        code: 1,
        says: &["text.mp4", "not a video file this build reads"],
    },
    Case {
        args: "predict --model @/good.onnx @/text.mp4",
        code: 1,
        says: &["text.mp4", "not a video file this build reads"],
    },
    Case {
        args: "predict --model @/good.onnx @/noindex.mp4",
        code: 1,
        says: &["noindex.mp4", "truncated", "no `moov` box"],
    },
    Case { args: "report @/badrun --out @/rep", code: 1, says: &["metrics.jsonl"] },
];

#[test]
fn every_bad_input_is_one_sentence_naming_the_file_with_exit_1_or_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(32).with_width(0.25);
    let good = common::export(d, "good", &cfg, 1.0, false, 1);
    let model = std::fs::read(&good).unwrap();
    std::fs::write(d.join("cut.onnx"), &model[..model.len() / 2]).unwrap();
    std::fs::write(d.join("text.onnx"), "this is not a model\n").unwrap();
    std::fs::write(d.join("empty.onnx"), b"").unwrap();
    std::fs::create_dir(d.join("folder.onnx")).unwrap();
    let img = image::RgbImage::from_fn(40, 40, |x, y| image::Rgb([x as u8 * 6, y as u8 * 6, 90]));
    img.save(d.join("good.png")).unwrap();
    let png = std::fs::read(d.join("good.png")).unwrap();
    std::fs::write(d.join("cut.png"), &png[..png.len() / 2]).unwrap();
    img.save(d.join("whole.jpg")).unwrap();
    let jpg = std::fs::read(d.join("whole.jpg")).unwrap();
    std::fs::remove_file(d.join("whole.jpg")).unwrap();
    std::fs::write(d.join("cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    std::fs::write(d.join("text.png"), "not an image").unwrap();
    std::fs::write(d.join("empty.jpg"), b"").unwrap();
    std::fs::write(d.join("text.csv"), "emotion,pixels,Usage\n3,1 2 3,Training\n").unwrap();
    std::fs::create_dir_all(d.join("nothing")).unwrap();
    std::fs::create_dir_all(d.join("odd/train/xyz")).unwrap();
    std::fs::copy(d.join("good.png"), d.join("odd/train/xyz/a.png")).unwrap();
    std::fs::write(d.join("junk.avi"), b"RIFF\x10\0\0\0AVI LIST\xff\xff\xff\x7fhdrl").unwrap();
    std::fs::write(d.join("text.mp4"), "this is not a video\n").unwrap();
    std::fs::write(d.join("noindex.mp4"), b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x10mdat\0\0\0\0")
        .unwrap();
    std::fs::create_dir_all(d.join("badrun")).unwrap();
    std::fs::write(d.join("badrun/metrics.jsonl"), "{\"epoch\": 1, \"val_accuracy\": \n").unwrap();
    std::fs::write(d.join("badrun/config.resolved.toml"), "name = \"x\"\n").unwrap();

    let before = snapshot(d);
    let root = d.to_str().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let args: Vec<String> = case.args.split(' ').map(|a| a.replace('@', root)).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = common::cli(&refs, &[]);
        let (out, err) = common::texts(&o);
        let code = o.status.code().unwrap_or(-1);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        let mut wrong = Vec::new();
        if code != case.code {
            wrong.push(format!("exit {code}, expected {}", case.code));
        }
        if lines.len() != 1 {
            wrong.push(format!("{} error lines", lines.len()));
        }
        let line = lines.first().copied().unwrap_or("");
        for s in case.says {
            if !line.contains(s) {
                wrong.push(format!("no `{s}`"));
            }
        }
        if err.contains("panicked") || err.contains("backtrace") || err.contains("RUST_BACKTRACE") {
            wrong.push("panic text".into());
        }
        if !out.trim().is_empty() && !case.args.starts_with("parity") {
            wrong.push(format!("stdout: {out}"));
        }
        let after = snapshot(d);
        if after != before {
            let added: Vec<_> = after.keys().filter(|k| before.get(*k) != after.get(*k)).collect();
            wrong.push(format!("wrote {added:?}"));
            // Leave the folder as it was for the next case.
            for k in added {
                let p = d.join(k.trim_end_matches('/'));
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{}\n    {}\n    {line}", case.args, wrong.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
