//! `fer-train init`: a config for the user's own class folders that `run` accepts as it is;
//! class folders not named after an expression are named (all at once) and mapped by flag.

mod cli_support;

use std::path::Path;
use std::process::{Command, Output};

use cli_support::{BIN, synth};

fn fer_train(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).current_dir(dir).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Tiny overrides so a written config trains in a second on the CPU; the config itself is
/// left as written.
const TINY: [&str; 12] = [
    "--set",
    "stages.0.epochs=1",
    "--set",
    "optim.warmup_epochs=0",
    "--set",
    "model.arch=\"mobilenet_v3_small\"",
    "--set",
    "model.width_mult=0.25",
    "--set",
    "model.input_size=32",
    "--set",
    "device=\"cpu\"",
];

#[test]
fn init_writes_a_config_that_run_accepts_and_names_unknown_class_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = synth(d);
    for split in ["train", "val"] {
        std::fs::rename(data.join(split).join("happy"), data.join(split).join("smiling")).unwrap();
    }
    std::fs::create_dir_all(data.join("train/misc")).unwrap();
    let any = std::fs::read_dir(data.join("train/sad")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&any, data.join("train/misc/x.png")).unwrap();

    // Unknown folders: one error naming both, nothing written.
    let o = fer_train(d, &["init", "--data", "data", "--out", "cfg/a.toml"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("`misc` (train)") && e.contains("`smiling` (train, val)"), "{e}");
    assert!(e.contains("--map"), "the error says how to map them: {e}");
    assert_eq!(e.lines().count(), 1, "one sentence: {e}");
    assert!(!d.join("cfg/a.toml").exists());

    let o = fer_train(
        d,
        &[
            "init",
            "--data",
            "data",
            "--map",
            "smiling=happiness",
            "--map",
            "misc=skip",
            "--out",
            "cfg/a.toml",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("smiling") && shown.contains("happiness"), "{shown}");
    assert!(shown.contains("next: fer-train run --config cfg/a.toml"), "{shown}");
    let text = std::fs::read_to_string(d.join("cfg/a.toml")).unwrap();
    for want in [
        "root = \"../data\"",
        "format = \"image-folder\"",
        "val_split = \"val\"",
        "smiling = \"happiness\"",
        "misc = \"skip\"",
        "num_classes = 7",
        "color = \"gray_rgb\"",
        "lr = 0.025",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
    assert!(!text.contains("0000"), "floats as typed, no f32 noise:\n{text}");
    // Every value is commented or obvious: at least a comment per section.
    assert!(text.matches('#').count() >= 15, "{text}");

    // Accepted as is by `check` and by `run` (with only the size shrunk for the test).
    let o = fer_train(d, &["check", "cfg/a.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut args = vec!["-q", "run", "--config", "cfg/a.toml"];
    args.extend(TINY);
    let o = fer_train(d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = d.join("runs/data_baseline");
    assert!(run.join("best.safetensors").is_file() && run.join("metrics.jsonl").is_file());
    let resolved = std::fs::read_to_string(run.join("config.resolved.toml")).unwrap();
    assert!(resolved.contains("smiling = \"happiness\""), "{resolved}");

    // An existing file is kept unless --force.
    let o = fer_train(
        d,
        &[
            "init",
            "--data",
            "data",
            "--out",
            "cfg/a.toml",
            "--map",
            "smiling=happy",
            "--map",
            "misc=skip",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(d.join("cfg/a.toml")).unwrap(), text);

    // A student distilled from that run: needs --teacher, then runs as is.
    let maps = ["--map", "smiling=happiness", "--map", "misc=skip"];
    let mut args = vec!["init", "--data", "data", "--task", "kd", "--out", "kd.toml"];
    args.extend(maps);
    let o = fer_train(d, &args);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--teacher"), "{}", stderr(&o));
    args.extend(["--teacher", "runs/data_baseline"]);
    let o = fer_train(d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let kd = std::fs::read_to_string(d.join("kd.toml")).unwrap();
    assert!(kd.contains("checkpoint = \"runs/data_baseline/best.safetensors\""), "{kd}");
    assert!(kd.contains("weight = 0.9") && kd.contains("weight = 0.1"), "{kd}");
    let mut args = vec!["-q", "run", "--config", "kd.toml"];
    args.extend(TINY);
    let o = fer_train(d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("runs/data_kd/best.safetensors").is_file());
}

#[test]
fn a_folder_without_splits_gets_a_validation_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = synth(d);
    let flat = d.join("flat");
    std::fs::rename(data.join("train"), &flat).unwrap();
    let o = fer_train(d, &["init", "--data", "flat", "--task", "teacher"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("flat_teacher.toml")).unwrap();
    assert!(text.contains("val_fraction = 0.1") && !text.contains("train_split"), "{text}");
    assert!(text.contains("arch = \"resnet18\"") && text.contains("epochs = 80"), "{text}");
    let o = fer_train(d, &["check", "flat_teacher.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = fer_train(d, &["init", "--data", "nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
}
