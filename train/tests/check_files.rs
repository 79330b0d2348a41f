//! `fer-train check` verifies every file a config names, and `run` does so before it creates
//! the run directory: a missing teacher checkpoint, initial weights or dataset is named by its
//! field and path (exit 2), and nothing is left behind.

mod cli_support;

use cli_support::{assert_fails, ce_stage, config, fer_train, s, synth};

const KD_STAGE: &str = r#"
[[teachers]]
name = "t"
checkpoint = "runs/teacher/best.safetensors"
[[stages]]
name = "kd"
epochs = 1
[[stages.loss]]
kind = "kd"
weight = 1.0
temperature = 4.0
"#;

#[test]
fn a_missing_teacher_checkpoint_fails_check_and_run_names_the_field_and_leaves_no_run() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = config(tmp.path(), "student", KD_STAGE);
    let needles = ["teachers[0].checkpoint", "runs/teacher/best.safetensors does not exist"];
    assert_fails(&fer_train(&["check", s(&cfg)]), 2, &needles);
    assert_fails(&fer_train(&["run", "--config", s(&cfg)]), 2, &needles);
    assert!(!tmp.path().join("runs").exists(), "run created a directory before failing");
}

#[test]
fn missing_initial_weights_and_data_root_are_each_named() {
    let tmp = tempfile::tempdir().unwrap();
    let init = "[model.init]\nweights = \"imagenet/mnv3.pth\"\n";
    let text = ce_stage(1);
    let cfg = config(tmp.path(), "fresh", &text);
    let with_init = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("input_size = 32\n", &format!("input_size = 32\n{init}"));
    std::fs::write(&cfg, with_init).unwrap();
    let out = fer_train(&["check", s(&cfg)]);
    let msg = assert_fails(
        &out,
        2,
        &["data.root", "data does not exist", "model.init.weights", "imagenet/mnv3.pth"],
    );
    assert!(msg.contains("2 problems"), "{msg}");
    assert_fails(&fer_train(&["run", "--config", s(&cfg)]), 2, &["data.root"]);
    assert!(!tmp.path().join("runs").exists(), "run created a directory before failing");
}

#[test]
fn check_still_accepts_a_config_whose_files_exist() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path());
    let cfg = config(tmp.path(), "ok", &ce_stage(1));
    let out = fer_train(&["check", s(&cfg)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("name = \"ok\""));
}
