//! The still-image formats face datasets come in decode to the pixels Pillow writes: TIFF
//! (JAFFE ships its faces as 8-bit grey TIFF files; uncompressed, LZW, PackBits and Deflate)
//! and the Netpbm formats (PGM, PPM), against PNG copies of the same pixels. Pillow, in the
//! project venv, writes every file: an encoder independent of the `image` crate that decodes.

use std::path::Path;

use fer_data::decode_image;
use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage};

const WRITE: &str = r#"
import sys
from pathlib import Path
from PIL import Image

d = Path(sys.argv[1])
for name in ("gray", "rgb"):
    im = Image.open(d / f"{name}.png")
    im.load()
    for comp in ("raw", "tiff_lzw", "packbits", "tiff_adobe_deflate"):
        im.save(d / f"{name}_{comp}.tif", compression=comp)
    im.save(d / (f"{name}.pgm" if name == "gray" else f"{name}.ppm"))
"#;

fn fixture(dir: &Path) -> (GrayImage, RgbImage) {
    let gray = GrayImage::from_fn(41, 29, |x, y| Luma([((x * 13 + y * 7 + x * y) % 256) as u8]));
    let rgb = RgbImage::from_fn(23, 37, |x, y| {
        Rgb([(x * 11 % 256) as u8, (y * 5 % 256) as u8, ((x * y + 40) % 256) as u8])
    });
    gray.save(dir.join("gray.png")).unwrap();
    rgb.save(dir.join("rgb.png")).unwrap();
    let script = dir.join("write.py");
    std::fs::write(&script, WRITE).unwrap();
    fer_test_support::run_python(&[script.as_os_str(), dir.as_os_str()]);
    (gray, rgb)
}

#[test]
fn tiff_and_netpbm_files_decode_to_the_pixels_pillow_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let (gray, rgb) = fixture(tmp.path());
    let decode =
        |name: &str| decode_image(&tmp.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    for comp in ["raw", "tiff_lzw", "packbits", "tiff_adobe_deflate"] {
        let g = decode(&format!("gray_{comp}.tif"));
        assert!(matches!(g, DynamicImage::ImageLuma8(_)), "gray_{comp}.tif: {:?}", g.color());
        assert_eq!(g.to_luma8(), gray, "gray_{comp}.tif");
        assert_eq!(decode(&format!("rgb_{comp}.tif")).to_rgb8(), rgb, "rgb_{comp}.tif");
    }
    assert_eq!(decode("gray.pgm").to_luma8(), gray);
    assert_eq!(decode("rgb.ppm").to_rgb8(), rgb);
}

#[test]
fn files_that_are_not_read_are_named_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases: [(&str, &[u8], &str); 7] = [
        ("empty.jpg", b"", "truncated image: the file is empty (0 bytes)"),
        ("IMG_1.HEIC", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "a HEIC/HEIF image"),
        ("a.avif", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1", "an AVIF image"),
        ("a.gif", b"GIF89a\x01\0\x01\0\0\0\0;", "a GIF image"),
        ("clip.jpg", b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2", "name it directly as a video"),
        ("a.psd", b"8BPS\0\x01\0\0\0\0\0\0", "a Photoshop (PSD) file"),
        ("notes.png", b"just some text", "not an image in a format read here (PNG, JPEG"),
    ];
    for (name, bytes, want) in cases {
        let err = decode_image(&file(name, bytes)).unwrap_err().to_string();
        assert!(err.starts_with(&tmp.path().join(name).display().to_string()), "{err}");
        assert!(err.contains(want), "{name}: {err:?} does not say {want:?}");
    }
}
