//! Face alignment for the classifier: a detected [`Face`] becomes the toolkit's aligned crop
//! ([`fer_data::face_crop`], shared with `predict`, `eval --faces` and `data faces`), at the
//! margin the model's `fer.crop` metadata says.

use fer_data::face_crop::{self, CropBox};
use image::RgbImage;

use crate::face::Face;
use crate::meta::InferMeta;

/// Crop side relative to the detection box side, when the model does not say
/// (`fer_models_spec::crop::DEFAULT_MARGIN`).
pub const MARGIN: f32 = fer_models_spec::crop::DEFAULT_MARGIN;

/// Where the crop of `face` comes from, at `margin`.
pub fn crop_box(face: &Face, margin: f32) -> CropBox {
    CropBox::of_face(face.bbox, face.keypoints[0], face.keypoints[1], margin)
}

/// The aligned square crop of `face` in `frame`, `side` pixels, with the eyes level, at the
/// default [`MARGIN`]. Pixels outside the frame are black.
pub fn aligned_crop(frame: &RgbImage, face: &Face, side: u32) -> RgbImage {
    face_crop::aligned_crop(frame, &crop_box(face, MARGIN), side)
}

/// The aligned crop of `face` at `margin`.
pub fn aligned_crop_with(frame: &RgbImage, face: &Face, margin: f32, side: u32) -> RgbImage {
    face_crop::aligned_crop(frame, &crop_box(face, margin), side)
}

/// Side of the crop handed to the classifier's preprocessing: its input size (at least 32 px),
/// so the preprocessing's resize is the identity.
pub fn crop_side(meta: &InferMeta) -> u32 {
    (meta.preprocess.input_size as u32).max(32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn a_face_is_cut_at_the_given_margin_around_its_box() {
        let frame = RgbImage::from_fn(80, 80, |x, y| Rgb([x as u8 * 3, y as u8 * 3, 0]));
        let face = Face {
            score: 1.0,
            bbox: [20.0, 20.0, 60.0, 60.0],
            keypoints: [[30.0, 35.0], [50.0, 35.0], [40.0; 2], [40.0; 2], [30.0, 35.0], [50.0; 2]],
        };
        // Margin 1.25: 50 frame pixels from x = 15; margin 1: 40 from x = 20.
        assert_eq!(aligned_crop(&frame, &face, 50).get_pixel(0, 25).0[0], 15 * 3);
        assert_eq!(aligned_crop_with(&frame, &face, 1.0, 40).get_pixel(0, 20).0[0], 20 * 3);
    }
}
