//! A JPEG cut short is a bad image everywhere (readers, loader, inspect --decode), not a
//! picture whose missing rows the decoder filled with grey.

use std::path::Path;

use fer_data::formats::{Format, OpenOptions};
use fer_data::{Error, SplitName};
use image::{Rgb, RgbImage};

/// Writes a 48×48 RGB JPEG with detail in every row (so its entropy-coded data is long) and
/// returns its bytes.
fn write_jpeg(path: &Path) -> Vec<u8> {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = RgbImage::from_fn(48, 48, |x, y| {
        let v = (x * 131 + y * 71 + x * y * 13) % 256;
        Rgb([v as u8, (255 - v) as u8, ((x * 7) % 256) as u8])
    });
    img.save(path).unwrap();
    std::fs::read(path).unwrap()
}

/// A folder set with one whole JPEG and one cut at 50 % of its bytes.
fn fixture(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let whole = root.join("train/happy/whole.jpg");
    let cut = root.join("train/sad/cut.jpg");
    let bytes = write_jpeg(&whole);
    std::fs::create_dir_all(cut.parent().unwrap()).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    (whole, cut)
}

#[test]
fn a_jpeg_cut_at_half_its_bytes_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = fixture(dir.path());
    assert_eq!(fer_data::decode_image(&whole).unwrap().width(), 48);
    let err = fer_data::decode_image(&cut).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("cut.jpg") && msg.contains("truncated"), "{msg}");
}

#[test]
fn a_jpeg_with_zero_padding_after_its_end_marker_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("padded.jpg");
    let mut bytes = write_jpeg(&path);
    bytes.extend([0u8; 16]);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(fer_data::decode_image(&path).unwrap().height(), 48);
}

#[test]
fn a_reader_fails_to_load_a_truncated_jpeg_and_inspect_decode_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let o = OpenOptions::default();
    let ds = fer_data::formats::open(Format::Fer2013Folder, dir.path(), Some(SplitName::Train), &o)
        .unwrap();
    let errors: Vec<String> =
        (0..ds.len()).filter_map(|i| ds.load(i).err()).map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("cut.jpg") && errors[0].contains("truncated"), "{errors:?}");

    let report =
        fer_data::inspect::inspect_decoding(Format::Fer2013Folder, dir.path(), &o).unwrap();
    let failures: Vec<_> = report.parts.iter().flat_map(|p| &p.decode_failures).collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].source.ends_with("cut.jpg"), "{failures:?}");
}

/// A valid 16×16 JPEG whose frame header (SOF0) is patched to declare `w × h` pixels.
fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
    let img = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * 16 + y) as u8]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .unwrap();
    let sof = bytes.windows(2).position(|m| m == [0xFF, 0xC0]).expect("baseline JPEG");
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

#[test]
fn a_tiny_jpeg_declaring_a_huge_image_is_refused_from_its_header() {
    // Found by fuzzing (fuzz/fuzz_targets/video.rs): a 1 KB frame declaring 21,331 × 18,764
    // pixels took over 20 s and 1.5 GB to decode.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bomb.jpg");
    std::fs::write(&p, jpeg_declaring(21_331, 18_764)).unwrap();
    let t = std::time::Instant::now();
    let e = fer_data::decode_image(&p).unwrap_err().to_string();
    assert!(t.elapsed().as_secs_f64() < 2.0, "took {:?}", t.elapsed());
    assert!(e.contains("bomb.jpg") && e.contains("limit"), "{e}");
    // A side over the limit alone is refused too; a normal size still decodes.
    std::fs::write(&p, jpeg_declaring(20_000, 8)).unwrap();
    assert!(fer_data::decode_image(&p).is_err());
    std::fs::write(&p, jpeg_declaring(16, 16)).unwrap();
    assert_eq!(fer_data::decode_image(&p).unwrap().width(), 16);
}
