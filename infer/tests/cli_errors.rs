//! Bad inputs give clear errors and exit codes from `fer-infer`, never a panic.

mod common;

use std::path::{Path, PathBuf};

use fer_models_spec::{Arch, ArchConfig};

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 3).with_input_size(32).with_width(0.5);
    let model = common::export(dir, "tiny", &cfg, 1.0, false, 2);
    let img = dir.join("face.png");
    image::RgbImage::from_fn(33, 35, |x, y| image::Rgb([x as u8, y as u8, 7])).save(&img).unwrap();
    (model, img)
}

/// Runs the binary; returns (stdout, stderr, exit code) and checks it did not panic.
fn run(args: &[&str], env: &[(&str, &str)]) -> (String, String, i32) {
    let o = common::cli(args, env);
    let (out, err) = common::texts(&o);
    assert!(!err.contains("panicked"), "panic: {err}");
    (out, err, o.status.code().unwrap_or(-1))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_file_that_is_not_onnx_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, img) = setup(dir.path());
    let fake = dir.path().join("fake.onnx");
    std::fs::write(&fake, "this is text, not a protobuf model\n").unwrap();
    let (_, err, code) = run(&["predict", "--model", s(&fake), s(&img)], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("fake.onnx: not an ONNX model"), "{err}");
    let missing = dir.path().join("missing.onnx");
    let (_, err, code) = run(&["predict", "--model", s(&missing), s(&img)], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.onnx: No such file"), "{err}");
    // Each cause once (it used to be `…: No such file or directory (os error 2): No such file…`).
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert_eq!(err.matches("missing.onnx").count(), 1, "{err}");
}

#[test]
fn a_flag_the_graph_does_not_take_is_a_usage_error_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let (model, img) = setup(dir.path());
    let (_, err, code) =
        run(&["predict", "--model", s(&model), "--input-size", "64", s(&img)], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid --input-size: 64, but input `input` [batch, 3, 32, 32] does not take 64×64 images"),
        "{err}"
    );
    let (_, err, code) = run(&["predict", "--model", s(&model), "--color", "gray", s(&img)], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid --color: Gray colour makes 1 channel(s) but input `input` [batch, 3, 32, 32] takes 3"),
        "{err}"
    );
}

/// A copy of `model` whose metadata `key` is `value`.
fn with_prop(model: &Path, key: &str, value: &str, out: PathBuf) -> PathBuf {
    use prost::Message;
    let mut m =
        tract_onnx::pb::ModelProto::decode(std::fs::read(model).unwrap().as_slice()).unwrap();
    let p = m.metadata_props.iter_mut().find(|p| p.key == key).unwrap();
    p.value = value.to_string();
    std::fs::write(&out, m.encode_to_vec()).unwrap();
    out
}

#[test]
fn a_bad_metadata_value_is_one_usage_error_naming_the_key_and_the_flag() {
    // Issue 18: a temperature of NaN exited with 2, one of -1 with 1, and causes were repeated.
    let dir = tempfile::tempdir().unwrap();
    let (model, img) = setup(dir.path());
    for (value, says) in
        [("NaN", "NaN"), ("-1", "-1 must be positive and finite"), ("0", "0 must be")]
    {
        let bad = with_prop(&model, "fer.temperature", value, dir.path().join("t.onnx"));
        let (out, err, code) = run(&["predict", "--model", s(&bad), s(&img)], &[]);
        assert_eq!(code, 2, "{value}: {err}");
        assert!(out.is_empty(), "{value}: {out}");
        let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
        assert!(
            line.contains("t.onnx") && line.contains("model metadata `fer.temperature`"),
            "{line}"
        );
        assert!(line.contains(says) && line.contains("--temperature"), "{line}");
        assert_eq!(line.matches("fer.temperature").count(), 1, "cause repeated: {line}");
        assert_eq!(line.matches("t.onnx").count(), 1, "file repeated: {line}");
        // The flag overrides the bad value.
        let (out, err, code) =
            run(&["predict", "--model", s(&bad), "--temperature", "2", s(&img)], &[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 1);
    }
}

#[test]
fn an_unreadable_image_stops_with_its_name_or_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (model, img) = setup(dir.path());
    let bad = dir.path().join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    let (out, err, code) = run(&["predict", "--model", s(&model), s(&img), s(&bad)], &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("broken.png: cannot decode image"), "{err}");
    let (out, err, code) =
        run(&["predict", "--model", s(&model), "--skip-bad", s(&bad), s(&img)], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("face.png"));
    assert!(err.contains("1 unreadable image(s) skipped"), "{err}");
}

#[test]
fn cuda_on_a_machine_without_it_is_an_error_not_a_cpu_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let (model, img) = setup(dir.path());
    let (out, err, code) = run(&["predict", "--model", s(&model), "--ep", "cuda", s(&img)], &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("execution provider `cuda` is not available"), "{err}");
    // `auto` says which provider runs, and runs.
    let (out, err, code) = run(
        &["predict", "--model", s(&model), "--ep", "auto", s(&img)],
        &[("RUST_LOG", "info,ort=warn")],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    assert!(err.contains("using the CPU") && err.contains("provider=\"cpu\""), "{err}");
}

#[test]
fn a_missing_onnx_runtime_library_says_where_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let (model, img) = setup(dir.path());
    let env = [("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")];
    let (_, err, code) = run(&["predict", "--model", s(&model), s(&img)], &env);
    assert_eq!(code, 1);
    assert!(err.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so does not exist"), "{err}");
    assert!(err.contains("scripts/setup.sh"), "{err}");
    // A file that is not the library: the loader's error, still no panic.
    let env = [("ORT_DYLIB_PATH", s(&img))];
    let (_, err, code) = run(&["predict", "--model", s(&model), s(&img)], &env);
    assert_eq!(code, 1);
    assert!(err.contains("cannot load") && err.contains("face.png"), "{err}");
    // tract does not need the library.
    let env = [("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")];
    let (out, err, code) =
        run(&["predict", "--model", s(&model), "--backend", "tract", s(&img)], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let (model, img) = setup(dir.path());
    let (_, err, code) = run(&["predict", "--model", s(&model), "--top-k", "0", s(&img)], &[]);
    assert_eq!(code, 2, "{err}");
    let (_, err, code) = run(&["predict", "--model", s(&model), "--backend", "onnx", s(&img)], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'onnx'"), "{err}");
}

/// A folder of phone photos in HEIC yields no image: the error says what it found and what to
/// do, at once, and a HEIC file named directly is named as HEIC.
#[test]
fn a_folder_without_readable_images_says_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = setup(dir.path());
    let photos = dir.path().join("phone");
    std::fs::create_dir_all(photos.join("2026")).unwrap();
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
    for name in ["IMG_0001.HEIC", "IMG_0002.heic", "2026/IMG_0003.HEIC"] {
        std::fs::write(photos.join(name), heic).unwrap();
    }
    std::fs::write(photos.join("notes.txt"), "x").unwrap();
    let info = [("RUST_LOG", "info")];
    let (out, err, code) = run(&["predict", "--model", s(&model), s(&photos)], &info);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no image files in ")
            && err.contains("(found 3 .heic, 1 .txt files; images are read from .png, .jpg")
            && err.contains("HEIC photos are not read: convert them to JPEG first"),
        "{err}"
    );
    // Said before any model or detector is loaded (which would log at the info level first).
    assert_eq!(err.lines().count(), 1, "{err}");
    let one = photos.join("IMG_0001.HEIC");
    let (_, err, code) = run(&["predict", "--model", s(&model), s(&one)], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("IMG_0001.HEIC: a HEIC/HEIF image"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "{err}");
}
