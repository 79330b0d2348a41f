//! `fer-infer predict` refuses a JPEG cut short (naming it) instead of classifying the grey
//! rows the decoder would fill in; `--skip-bad` skips it.

mod common;

use fer_models_spec::{Arch, ArchConfig};

#[test]
fn predict_refuses_a_jpeg_cut_at_half_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(48);
    let model = common::export(dir.path(), "m", &cfg, 1.0, false, 5);
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([((x * 13 + y * 7) % 256) as u8, ((x * y) % 256) as u8, (y * 3 % 256) as u8])
    });
    let whole = dir.path().join("whole.jpg");
    img.save(&whole).unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let m = model.to_str().unwrap();

    let o = common::cli(&["predict", "--model", m, whole.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", common::texts(&o).1);
    let o = common::cli(&["predict", "--model", m, cut.to_str().unwrap()], &[]);
    let (out, err) = common::texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cut.jpg") && err.contains("truncated"), "{err}");
    assert!(out.is_empty(), "{out}");
    let both = [whole.to_str().unwrap(), cut.to_str().unwrap()];
    let o = common::cli(&[&["predict", "--model", m, "--skip-bad"][..], &both].concat(), &[]);
    let (out, err) = common::texts(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(err.contains("1 unreadable image(s) skipped"), "{err}");
}
