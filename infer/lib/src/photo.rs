//! Photos in, emotions per face out: the still-image pipeline behind `predict`, `eval --faces`
//! and `data faces`.
//!
//! Each image is either classified whole (a pre-cropped face, or a model whose `fer.crop` is
//! `whole`) or searched for faces ([`FaceFinder`]), each face cut with the live demo's aligned
//! crop ([`crate::face::align`], at the margin of the model's `fer.crop`) and classified. The
//! choice is [`FaceMode`]; what was done to an image is recorded as [`CropUsed`].
//!
//! In [`FaceMode::Auto`] an image is taken as a pre-cropped face when it is nearly square
//! (sides within [`PRECROP_ASPECT`]) and its longer side is at most the model's input size or
//! [`PRECROP_MAX_SIDE`], whichever is larger: the face datasets the toolkit reads ship crops of
//! 48 px (FER-2013, FER+, CK+48) and 100 px (RAF-DB aligned), and BlazeFace's short-range model
//! already sees a 128 px image at its own size, so a photo that small holds one face at most.
//! The detector is a poor judge of such crops: they show a face with little or no margin, while
//! BlazeFace was trained on faces with surroundings.

use fer_data::face_crop::CropBox;
use fer_models_spec::FaceCrop;
use image::{DynamicImage, RgbImage};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::face::align;
use crate::face::{FaceFinder, Found};
use crate::meta::InferMeta;

/// How images are turned into classifier inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum FaceMode {
    /// Pre-cropped faces whole, photos searched for faces (see the module documentation);
    /// every image whole when the model's `fer.crop` is `whole`.
    Auto,
    /// Search every image for faces.
    Detect,
    /// Classify every image whole.
    Whole,
}

/// What was classified for an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CropUsed {
    /// The whole image.
    Whole,
    /// The aligned crop of each detected face.
    Aligned,
}

impl CropUsed {
    /// The spelling in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            CropUsed::Whole => "whole",
            CropUsed::Aligned => "aligned",
        }
    }
}

/// Images whose longer side is at most this (or the model's input size, if larger) can be
/// pre-cropped faces.
pub const PRECROP_MAX_SIDE: u32 = 128;
/// Longer side / shorter side at most this for a pre-cropped face.
pub const PRECROP_ASPECT: f32 = 1.25;

/// Whether a `width × height` image is taken as a pre-cropped face for a model of input side
/// `input_size` (see the module documentation).
pub fn looks_precropped(width: u32, height: u32, input_size: usize) -> bool {
    let (lo, hi) = (width.min(height), width.max(height));
    let limit = PRECROP_MAX_SIDE.max(input_size as u32);
    lo > 0 && hi <= limit && hi as f32 <= lo as f32 * PRECROP_ASPECT
}

/// One image, ready for the classifier.
pub struct Prepared {
    /// What is classified.
    pub crop: CropUsed,
    /// The faces found (empty for [`CropUsed::Whole`]).
    pub faces: Vec<Found>,
    /// The classifier's inputs: the image itself, or one aligned crop per face.
    pub inputs: Vec<DynamicImage>,
    /// `[width, height]` of the image.
    pub size: [u32; 2],
}

/// The detector (when needed) and the model's crop.
pub struct Photos {
    finder: Option<FaceFinder>,
    mode: FaceMode,
    crop: FaceCrop,
    input_size: usize,
    side: u32,
}

impl Photos {
    /// Whether `mode` and the model's `crop` need a face detector.
    pub fn needs_finder(mode: FaceMode, crop: FaceCrop) -> bool {
        match mode {
            FaceMode::Whole => false,
            FaceMode::Detect => true,
            FaceMode::Auto => crop.detects(),
        }
    }

    /// The pipeline for a model with metadata `meta`; `finder` is required when
    /// [`Photos::needs_finder`] says so.
    pub fn new(finder: Option<FaceFinder>, meta: &InferMeta, mode: FaceMode) -> Result<Self> {
        let (size, side) = (meta.preprocess.input_size, align::crop_side(meta));
        Self::with_crop(finder, mode, meta.crop, size, side)
    }

    /// The pipeline for crops of kind `crop`, `side` pixels, for a model of input side
    /// `input_size` (which sets the pre-cropped rule of [`FaceMode::Auto`]).
    pub fn with_crop(
        finder: Option<FaceFinder>,
        mode: FaceMode,
        crop: FaceCrop,
        input_size: usize,
        side: u32,
    ) -> Result<Self> {
        if finder.is_none() && Self::needs_finder(mode, crop) {
            return Err(Error::invalid("--faces", "detecting faces needs the face detector"));
        }
        Ok(Photos { finder, mode, crop, input_size, side })
    }

    /// What will be classified for a `width × height` image.
    pub fn decide(&self, width: u32, height: u32) -> CropUsed {
        let whole = match self.mode {
            FaceMode::Whole => true,
            FaceMode::Detect => false,
            FaceMode::Auto => {
                !self.crop.detects() || looks_precropped(width, height, self.input_size)
            }
        };
        if whole { CropUsed::Whole } else { CropUsed::Aligned }
    }

    /// The faces of `rgb` (empty when the finder finds none).
    pub fn find(&mut self, rgb: &RgbImage) -> Result<Vec<Found>> {
        let finder = self
            .finder
            .as_mut()
            .ok_or_else(|| Error::invalid("--faces", "detecting faces needs the face detector"))?;
        finder.find(rgb)
    }

    /// Where the crop of `f` comes from, at the model's margin.
    pub fn crop_box(&self, f: &Found) -> CropBox {
        align::crop_box(&f.face, self.crop.margin())
    }

    /// The aligned crop `b` of `rgb`, at the classifier's side.
    pub fn cut(&self, rgb: &RgbImage, b: &CropBox) -> RgbImage {
        fer_data::face_crop::aligned_crop(rgb, b, self.side)
    }

    /// Detects and crops the faces of `img`, or keeps it whole.
    pub fn prepare(&mut self, img: DynamicImage) -> Result<Prepared> {
        let size = [img.width(), img.height()];
        let crop = self.decide(size[0], size[1]);
        if crop == CropUsed::Whole {
            return Ok(Prepared { crop, faces: Vec::new(), inputs: vec![img], size });
        }
        let rgb: RgbImage = img.into_rgb8();
        let faces = self.find(&rgb)?;
        let inputs = faces
            .iter()
            .map(|f| DynamicImage::ImageRgb8(self.cut(&rgb, &self.crop_box(f))))
            .collect();
        Ok(Prepared { crop, faces, inputs, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_square_images_are_precropped_and_photos_are_not() {
        assert!(looks_precropped(48, 48, 112), "FER-2013");
        assert!(looks_precropped(100, 100, 112), "RAF-DB aligned");
        assert!(looks_precropped(128, 110, 112));
        assert!(!looks_precropped(128, 90, 112), "too oblong");
        assert!(!looks_precropped(256, 256, 112), "a whole-head photo");
        assert!(looks_precropped(224, 224, 224), "the model's own input size");
        assert!(!looks_precropped(640, 480, 224));
        assert!(!looks_precropped(0, 48, 112));
    }
}
