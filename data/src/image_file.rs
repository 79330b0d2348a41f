//! Decoding an image file: the one function every reader, `fer-infer` and
//! `fer-train data inspect --decode` go through.
//!
//! The `image` crate's JPEG decoder fills the rows missing from a truncated file with grey and
//! reports success, so a JPEG cut short (an interrupted download or copy) would be trained on
//! or scored as if whole. A complete JPEG ends with the end-of-image marker `0xFFD9`
//! (ITU-T T.81, B.2.1); a file without it at its end (trailing zero padding allowed) is
//! refused as truncated.
//!
//! A few hundred bytes of JPEG or PNG can declare a 20,000 × 20,000 image, whose decoding takes
//! seconds and gigabytes (fuzzing found such a frame in an MJPEG video). Every decode goes
//! through [`limits`]: sides up to [`MAX_DECODE_SIDE`] and at most [`MAX_DECODE_BYTES`] of
//! pixels, checked from the header before any pixel is decoded.

use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

/// The JPEG end-of-image marker.
const JPEG_EOI: [u8; 2] = [0xFF, 0xD9];

/// The longest side decoded, in pixels (a 48-megapixel phone photo is 8,000 wide).
pub const MAX_DECODE_SIDE: u32 = 16_384;
/// The most bytes a decoded image may take (an 8,000 × 6,000 RGB photo takes 144 MB).
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// The decoder limits every image goes through.
pub fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_DECODE_SIDE);
    l.max_image_height = Some(MAX_DECODE_SIDE);
    l.max_alloc = Some(MAX_DECODE_BYTES);
    l
}

/// Writes `img` to `path` in the format its extension names (PNG, JPEG, …), atomically with
/// the toolkit's one writer ([`fer_checkpoint::write_atomic`]): a reader never sees half an
/// image, and a FIFO or device at `path` is refused.
pub fn save_image(img: &DynamicImage, path: &Path) -> Result<()> {
    let encode = |e| Error::Encode { path: path.to_path_buf(), source: Box::new(e) };
    let format = ImageFormat::from_path(path).map_err(encode)?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format).map_err(encode)?;
    Ok(fer_checkpoint::write_atomic(path, &bytes)?)
}

/// Decodes in-memory image `bytes` of `format` (guessed from the content when `None`) under
/// [`limits`]; the error is the decoder's.
pub fn decode_bytes(bytes: &[u8], format: Option<ImageFormat>) -> image::ImageResult<DynamicImage> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes));
    match format {
        Some(f) => reader.set_format(f),
        None => reader = reader.with_guessed_format()?,
    }
    reader.limits(limits());
    reader.decode()
}

/// Decodes the image file at `path`, guessing the format from its content; a JPEG that does
/// not end with its end-of-image marker is an [`Error::Truncated`] naming the file.
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    reader.limits(limits());
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
