//! Decoding an image file: the one function every reader, `fer-infer` and
//! `fer-train data inspect --decode` go through.
//!
//! The `image` crate's JPEG decoder fills the rows missing from a truncated file with grey and
//! reports success, so a JPEG cut short (an interrupted download or copy) would be trained on
//! or scored as if whole. A complete JPEG ends with the end-of-image marker `0xFFD9`
//! (ITU-T T.81, B.2.1); a file without it at its end (trailing zero padding allowed) is
//! refused as truncated.

use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader};

use crate::error::{Error, Result};

/// The JPEG end-of-image marker.
const JPEG_EOI: [u8; 2] = [0xFF, 0xD9];

/// Decodes the image file at `path`, guessing the format from its content; a JPEG that does
/// not end with its end-of-image marker is an [`Error::Truncated`] naming the file.
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let reader = ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            why: "the JPEG does not end with its end-of-image marker 0xFFD9".into(),
        });
    }
    reader.decode().map_err(|source| Error::Image { path: path.to_path_buf(), source })
}

/// Whether JPEG `bytes` end with the end-of-image marker, ignoring trailing zero bytes (some
/// writers pad files).
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&JPEG_EOI)
}
