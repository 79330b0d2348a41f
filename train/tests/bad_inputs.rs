//! A table of bad inputs walked through `fer-train` (issue 18): every case exits with 1 (bad
//! input) or 2 (usage: a config or flag to change), prints one `error:` line that names the
//! file (or field) and the problem, never a panic, and writes nothing.

mod cli_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use cli_support::{BIN, ce_stage, config, synth};

/// Every path under `dir` with its length (enough to see anything written or removed).
fn snapshot(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            out.insert(p.strip_prefix(dir).unwrap().display().to_string(), m.len());
            if m.is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

struct Case {
    /// Arguments; `@` is replaced by the test folder.
    args: &'static str,
    code: i32,
    /// Texts the error line must contain.
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    // Configs and overrides.
    Case { args: "check @/missing.toml", code: 2, says: &["missing.toml"] },
    Case { args: "check @/text.toml", code: 2, says: &["text.toml"] },
    Case { args: "check @/typo.toml", code: 2, says: &["typo.toml", "lrr"] },
    Case { args: "check @/good.toml --set optim.lr=-1", code: 2, says: &["optim.lr"] },
    Case { args: "check @/good.toml --set optim.nope=1", code: 2, says: &["optim.nope"] },
    Case { args: "check @/good.toml --set stages.7.epochs=1", code: 2, says: &["stages.7"] },
    Case { args: "run --config @/nodata.toml", code: 2, says: &["data.root", "does not exist"] },
    Case { args: "run --config @/good.toml --set model.arch=resnet7", code: 2, says: &["resnet7"] },
    // Datasets.
    Case {
        args: "data inspect --format fer2013-folder --root @/missing",
        code: 1,
        says: &["missing"],
    },
    Case {
        args: "data inspect --format fer2013-csv --root @/text.csv",
        code: 1,
        says: &["text.csv"],
    },
    Case {
        args: "data inspect --format fer2013-folder --root @/odd",
        code: 1,
        says: &["odd", "xyz"],
    },
    Case {
        args: "data inspect --format rafdb --root @/data",
        code: 1,
        says: &["list_patition_label.txt"],
    },
    // Runs.
    Case { args: "resume @/missing_run", code: 1, says: &["missing_run"] },
    Case { args: "resume @/broken_run", code: 1, says: &["broken_run"] },
    Case { args: "bench --batch 0", code: 2, says: &["batch"] },
];

#[test]
fn every_bad_input_is_one_sentence_naming_the_file_with_exit_1_or_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    synth(d);
    config(d, "good", &ce_stage(1));
    let nodata = config(d, "nodata", &ce_stage(1));
    let text =
        std::fs::read_to_string(&nodata).unwrap().replace("root = \"data\"", "root = \"nowhere\"");
    std::fs::write(&nodata, text).unwrap();
    let typo = config(d, "typo", &ce_stage(1));
    let text = std::fs::read_to_string(&typo).unwrap().replace("lr = 0.01", "lrr = 0.01");
    std::fs::write(&typo, text).unwrap();
    std::fs::write(d.join("text.toml"), "this is [not toml\n").unwrap();
    std::fs::write(d.join("text.csv"), "emotion,pixels,Usage\n3,1 2 x,Training\n").unwrap();
    std::fs::create_dir_all(d.join("odd/train/xyz")).unwrap();
    std::fs::create_dir_all(d.join("broken_run")).unwrap();
    std::fs::write(d.join("broken_run/config.resolved.toml"), "version = 1\nname = [\n").unwrap();

    let before = snapshot(d);
    let root = d.to_str().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let args: Vec<String> = case.args.split(' ').map(|a| a.replace('@', root)).collect();
        let o = Command::new(BIN).arg("-q").args(&args).current_dir(d).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let code = o.status.code().unwrap_or(-1);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        let line = lines.first().copied().unwrap_or("");
        let mut wrong = Vec::new();
        if code != case.code {
            wrong.push(format!("exit {code}, expected {}", case.code));
        }
        if lines.len() != 1 {
            wrong.push(format!("{} error lines in: {err}", lines.len()));
        }
        wrong.extend(case.says.iter().filter(|s| !line.contains(*s)).map(|s| format!("no `{s}`")));
        if err.contains("panicked") || err.contains("backtrace") {
            wrong.push("panic text".into());
        }
        let after = snapshot(d);
        if after != before {
            let changed: Vec<_> =
                after.keys().filter(|k| before.get(*k) != after.get(*k)).collect();
            wrong.push(format!("wrote {changed:?}"));
            for k in changed {
                let p = d.join(k);
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
