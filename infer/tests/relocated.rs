//! An installed `fer-infer` works from anywhere: a copy of the binary, run from an empty
//! folder with a clean environment and the paths of the checkout that built it ignored
//! (`FER_NO_BUILD_PATHS=1`, what `cargo install` and a moved checkout amount to), still finds
//! its model, face detector and demo photo (built in), and without an ONNX Runtime library runs
//! on tract, saying so once; `--backend ort` then fails with a sentence naming where it looked.

use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &Path, cwd: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("FER_NO_BUILD_PATHS", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_copy_of_the_binary_runs_from_an_empty_folder_without_the_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    let cwd = dir.path().join("work");
    let home = dir.path().join("home");
    for d in [&bin_dir, &cwd, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    let bin = bin_dir.join("fer-infer");
    std::fs::copy(env!("CARGO_BIN_EXE_fer-infer"), &bin).unwrap();
    let img =
        image::GrayImage::from_fn(48, 48, |x, y| image::Luma([((x * 5 + y * 3) % 256) as u8]));
    img.save(cwd.join("face.png")).unwrap();

    // Built-in model, whole-image mode: one JSON line, on tract, said once.
    let out = run(&bin, &cwd, &home, &["predict", "--faces", "whole", "face.png"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("\"label\""), "{stdout}");
    assert_eq!(stderr.matches("running on tract").count(), 1, "{stderr}");

    // The live demo's synthetic source: built-in photo, detector and model; frames come out.
    let live = cwd.join("live");
    let live_s = live.to_str().unwrap();
    let out = run(
        &bin,
        &cwd,
        &home,
        &["live", "--source", "synthetic", "--headless", "--frames", "2", "--out", live_s],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let frames = std::fs::read_to_string(live.join("frames.jsonl")).unwrap();
    assert_eq!(frames.lines().count(), 2, "{frames}");
    assert!(frames.contains("\"label\""), "a face was found and classified: {frames}");

    // `env` says what is built in and that no ONNX Runtime was found.
    let out = run(&bin, &cwd, &home, &["env"]);
    let env = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(env.contains("ONNX Runtime: none"), "{env}");
    assert_eq!(env.matches("(built in)").count(), 3, "tract and both detectors: {env}");

    // Asking for ONNX Runtime explicitly is an error naming where it looked, not a fallback.
    let out = run(&bin, &cwd, &home, &["predict", "--backend", "ort", "face.png"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("libonnxruntime.so not found"), "{stderr}");
    assert!(stderr.contains(&format!("{}/libonnxruntime.so*", bin_dir.display())), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // With the library next to the binary, `auto` uses it.
    let lib = fer_infer::backend::ort::find_library().expect("scripts/setup.sh installs it");
    std::fs::copy(&lib, bin_dir.join("libonnxruntime.so")).unwrap();
    let out = run(&bin, &cwd, &home, &["-v", "predict", "--faces", "whole", "face.png"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("running on tract"), "{stderr}");
    assert!(stderr.contains("loaded ONNX Runtime"), "-v names the library: {stderr}");
    assert!(stderr.contains(&bin_dir.display().to_string()), "{stderr}");
}
