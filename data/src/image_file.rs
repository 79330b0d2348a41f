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

/// The formats [`decode_image`] reads, as said in errors.
pub const READ_FORMATS: &str = "PNG, JPEG, BMP, WebP, TIFF, PGM/PPM";

/// Decodes the image file at `path`, guessing the format from its content. An empty file, or a
/// JPEG that does not end with its end-of-image marker, is an [`Error::Truncated`]; a file in
/// another format is an [`Error::UnsupportedImage`] that names the format when it is a common
/// one (HEIC, the default of phone cameras; AVIF; GIF; …) and what to do.
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    check_readable(path, &bytes, reader.format())?;
    reader.limits(limits());
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            why: "the JPEG does not end with its end-of-image marker 0xFFD9".into(),
        });
    }
    reader.decode().map_err(|source| Error::Image { path: path.to_path_buf(), source })
}

/// Reads only the header of the image file at `path` and returns its size; a file
/// [`decode_image`] would refuse for its format (or emptiness) is refused the same way.
pub fn image_dims(path: &Path) -> Result<(u32, u32)> {
    let reader = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| Error::io(path, e))?;
    if !reader.format().is_some_and(|f| f.reading_enabled()) {
        let mut head = Vec::with_capacity(16);
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        std::io::Read::read_to_end(&mut std::io::Read::take(file, 16), &mut head)
            .map_err(|e| Error::io(path, e))?;
        check_readable(path, &head, reader.format())?;
    }
    reader.into_dimensions().map_err(|source| Error::Image { path: path.to_path_buf(), source })
}

/// Refuses an empty file ([`Error::Truncated`]) and one of a format the decoder cannot read
/// ([`Error::UnsupportedImage`]); `head` holds at least the file's first 16 bytes.
fn check_readable(path: &Path, head: &[u8], format: Option<ImageFormat>) -> Result<()> {
    if head.is_empty() {
        let why = "the file is empty (0 bytes)".into();
        return Err(Error::Truncated { path: path.to_path_buf(), why });
    }
    match format {
        Some(f) if f.reading_enabled() => Ok(()),
        known => Err(Error::UnsupportedImage {
            path: path.to_path_buf(),
            what: unsupported(head, known),
        }),
    }
}

/// What a file the decoder cannot read is, from its first bytes, or from the format the
/// decoder recognised (`known`) but was built without.
fn unsupported(bytes: &[u8], known: Option<ImageFormat>) -> String {
    let convert = "convert it to PNG or JPEG first";
    // ISO base media files name their brand at bytes 8..12, after the `ftyp` box header.
    let brand = (bytes.get(4..8) == Some(b"ftyp")).then(|| bytes.get(8..12)).flatten();
    let named = match brand {
        Some(b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1") => {
            Some("a HEIC/HEIF image (the iPhone's photo format)")
        }
        Some(b"avif" | b"avis") => Some("an AVIF image"),
        Some(_) => {
            return "an MP4/MOV file, not a still image: name it directly as a video (.mp4, \
                    .m4v or .mov) to read its frames"
                .into();
        }
        None if bytes.starts_with(b"GIF8") => Some("a GIF image"),
        None if bytes.starts_with(b"8BPS") => Some("a Photoshop (PSD) file"),
        None if bytes.starts_with(&[0xFF, 0x0A]) || bytes.get(4..8) == Some(b"JXL ") => {
            Some("a JPEG XL image")
        }
        None => None,
    };
    let known = known.map(|f| format!("a {f:?} image"));
    match named.map(str::to_owned).or(known) {
        Some(kind) => format!("{kind}, which is not read here ({READ_FORMATS} are); {convert}"),
        None => format!("not an image in a format read here ({READ_FORMATS})"),
    }
}

/// Whether JPEG `bytes` end with the end-of-image marker, ignoring trailing zero bytes (some
/// writers pad files).
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&JPEG_EOI)
}
