//! Photos the project did not make: scikit-image's bundled public-domain test images, from the
//! venv `scripts/setup.sh` makes. A test whose image is absent says so and passes; everything
//! else it checks can fail.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// `skimage/data/NAME` in the venv, if it is there.
pub fn skimage(name: &str) -> Option<PathBuf> {
    let lib = fer_test_support::venv().join("lib");
    let dir = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/skimage/data"))
        .find(|p| p.is_dir())?;
    Some(dir.join(name)).filter(|p| p.is_file())
}

/// The path of scikit-image's `NAME`, or returns from the test with a message saying why.
#[macro_export]
macro_rules! photo_or_skip {
    ($name:expr) => {
        match photo_support::skimage($name) {
            Some(p) => p,
            None => {
                eprintln!(
                    "SKIPPED: scikit-image's data/{} is not in .venv (bash scripts/setup.sh \
                     installs it)",
                    $name
                );
                return;
            }
        }
    };
}

/// `fer-infer ARGS` → (stdout, stderr, exit code).
pub fn fer_infer(args: &[&str]) -> (String, String, i32) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fer-infer"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("spawning fer-infer");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

/// `fer-infer predict ARGS` with the built-in model, JSON lines parsed; panics on failure.
pub fn predict(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["predict"];
    all.extend_from_slice(args);
    let (out, err, code) = fer_infer(&all);
    assert_eq!(code, 0, "fer-infer {all:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    out.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// Number as f64.
pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `[x0, y0, x1, y1]` of a record.
pub fn bbox(v: &Value) -> [f64; 4] {
    let b = v["box"].as_array().expect("a box");
    [num(&b[0]), num(&b[1]), num(&b[2]), num(&b[3])]
}

/// Writes `img` scaled by `scale` (triangle filter) onto a `w × h` grey canvas at `(x, y)`.
pub fn place(img: &image::RgbImage, scale: f32, w: u32, h: u32, x: i64, y: i64) -> image::RgbImage {
    let (sw, sh) = ((img.width() as f32 * scale) as u32, (img.height() as f32 * scale) as u32);
    let small = image::imageops::resize(img, sw, sh, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([120, 120, 120]));
    image::imageops::replace(&mut canvas, &small, x, y);
    canvas
}
