//! The face crop a model was trained on: the ONNX metadata key `fer.crop`.
//!
//! Training uses every dataset image whole, so what a model has learnt to look at is whatever
//! crop its dataset's images have. Inference must cut the same crop out of a photo. Three cases:
//!
//! - [`FaceCrop::Whole`]: the images were not face crops (or the model is meant for whole
//!   images): every image is classified whole, no face is detected.
//! - [`FaceCrop::Dataset`]: the dataset's own face crops (FER-2013's 48×48, CK+48, …), made by a
//!   detector the toolkit does not know. Images that look like such crops are classified whole;
//!   in photos, faces are detected and cut with the toolkit's aligned crop at
//!   [`DEFAULT_MARGIN`], its closest approximation. This is also what a file without the key
//!   gets ([`FaceCrop::ABSENT`]), which is how every model behaved before the key existed.
//! - [`FaceCrop::Aligned`]: crops made by the toolkit (`fer-infer data faces`): BlazeFace's box
//!   and eyes, the crop rotated so the eyes are level, its side `margin` × the box's longer side.
//!
//! `docs/onnx-metadata.md` documents the key for users of other languages.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::meta::MetaError;

/// The metadata key.
pub const KEY_CROP: &str = "fer.crop";

/// Crop side relative to the detection box's longer side, when nothing else says (the box hugs
/// the face; FER crops include the forehead and chin).
pub const DEFAULT_MARGIN: f32 = 1.25;

/// Margins accepted: a crop at least as large as the box, at most four times.
pub const MARGIN_RANGE: std::ops::RangeInclusive<f32> = 1.0..=4.0;

/// The face detector whose boxes and eye landmarks define an aligned crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CropDetector {
    /// MediaPipe's BlazeFace (short- or full-range; the two agree on the box convention).
    Blazeface,
}

/// Which crop of an image the model was trained on (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaceCrop {
    /// Whole images, not face crops: nothing is detected.
    Whole,
    /// The dataset's own face crops; photos get the aligned crop at [`DEFAULT_MARGIN`].
    Dataset,
    /// The toolkit's aligned crop: eyes level, square side `margin` × the box's longer side.
    Aligned {
        /// Whose boxes and eyes.
        detector: CropDetector,
        /// Crop side / box side.
        margin: f32,
    },
}

impl FaceCrop {
    /// What a model file without `fer.crop` is taken to say.
    pub const ABSENT: FaceCrop = FaceCrop::Dataset;

    /// The toolkit's aligned crop with `margin`.
    pub fn aligned(margin: f32) -> Self {
        FaceCrop::Aligned { detector: CropDetector::Blazeface, margin }
    }

    /// Whether faces are detected in photos (everything but [`FaceCrop::Whole`]).
    pub fn detects(&self) -> bool {
        !matches!(self, FaceCrop::Whole)
    }

    /// The margin to cut detected faces with.
    pub fn margin(&self) -> f32 {
        match self {
            FaceCrop::Aligned { margin, .. } => *margin,
            _ => DEFAULT_MARGIN,
        }
    }

    /// The metadata value: a JSON object, e.g. `{"kind":"aligned","detector":"blazeface","margin":1.25}`.
    pub fn to_prop(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses and checks a metadata value written by [`FaceCrop::to_prop`].
    pub fn from_prop(raw: &str) -> Result<Self, MetaError> {
        let bad = |msg: String| MetaError { key: KEY_CROP.into(), msg };
        let c: FaceCrop = serde_json::from_str(raw).map_err(|e| bad(format!("{e}: {raw:?}")))?;
        // serde ignores extra fields beside a unit variant's tag; refuse them here.
        let given: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
        let known = serde_json::to_value(c).unwrap_or_default();
        if let (Some(g), Some(k)) = (given.as_object(), known.as_object())
            && let Some(extra) = g.keys().find(|key| !k.contains_key(*key))
        {
            return Err(bad(format!("unknown field `{extra}` for kind `{c}`: {raw:?}")));
        }
        c.check().map_err(bad)?;
        Ok(c)
    }

    /// The margin is finite and within [`MARGIN_RANGE`].
    pub fn check(&self) -> Result<(), String> {
        match self {
            FaceCrop::Aligned { margin, .. } if !MARGIN_RANGE.contains(margin) => Err(format!(
                "margin {margin} is outside {}–{}",
                MARGIN_RANGE.start(),
                MARGIN_RANGE.end()
            )),
            _ => Ok(()),
        }
    }
}

/// The command-line spelling: `whole`, `dataset`, `aligned` (margin [`DEFAULT_MARGIN`]) or
/// `aligned:MARGIN`.
impl FromStr for FaceCrop {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let c = match s.split_once(':') {
            None if s == "whole" => FaceCrop::Whole,
            None if s == "dataset" => FaceCrop::Dataset,
            None if s == "aligned" => FaceCrop::aligned(DEFAULT_MARGIN),
            Some(("aligned", m)) => FaceCrop::aligned(
                m.parse().map_err(|_| format!("`{s}`: the margin `{m}` is not a number"))?,
            ),
            _ => return Err(format!("`{s}`: expected whole, dataset, aligned or aligned:MARGIN")),
        };
        c.check().map_err(|e| format!("`{s}`: {e}"))?;
        Ok(c)
    }
}

impl std::fmt::Display for FaceCrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaceCrop::Whole => f.write_str("whole"),
            FaceCrop::Dataset => f.write_str("dataset"),
            FaceCrop::Aligned { margin, .. } => write!(f, "aligned:{margin}"),
        }
    }
}

/// The file `fer-infer data faces` writes at the root of a dataset of crops, saying which crop
/// its images are (and what happened to each source photo).
pub const DATASET_MANIFEST: &str = "faces.json";

/// The part of [`DATASET_MANIFEST`] that says which crop the images are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetCrop {
    /// The crop of every image of the dataset.
    pub crop: FaceCrop,
    /// Side of the crops in pixels.
    pub side: u32,
}

impl DatasetCrop {
    /// Reads `root/faces.json`: `Ok(None)` when the dataset has none (its images are its own
    /// crops), an error naming the file when it cannot be read or parsed.
    pub fn of_dataset(root: &std::path::Path) -> Result<Option<Self>, String> {
        let path = root.join(DATASET_MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let d: DatasetCrop =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        d.crop.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_the_metadata_value_and_the_flag() {
        for c in [FaceCrop::Whole, FaceCrop::Dataset, FaceCrop::aligned(1.4)] {
            assert_eq!(FaceCrop::from_prop(&c.to_prop()).unwrap(), c);
            assert_eq!(c.to_string().parse::<FaceCrop>().unwrap(), c);
        }
        assert_eq!(
            FaceCrop::aligned(1.25).to_prop(),
            r#"{"kind":"aligned","detector":"blazeface","margin":1.25}"#
        );
        assert_eq!(FaceCrop::Whole.to_prop(), r#"{"kind":"whole"}"#);
    }

    #[test]
    fn bad_values_are_refused_with_the_key_or_the_spelling() {
        let e = FaceCrop::from_prop(r#"{"kind":"aligned","detector":"blazeface","margin":9}"#);
        assert_eq!(
            e.unwrap_err().to_string(),
            "model metadata `fer.crop`: margin 9 is outside 1–4"
        );
        assert!(FaceCrop::from_prop(r#"{"kind":"oval"}"#).is_err());
        assert!(FaceCrop::from_prop(r#"{"kind":"whole","margin":1}"#).is_err());
        assert!("aligned:x".parse::<FaceCrop>().unwrap_err().contains("not a number"));
        assert!("aligned:0.5".parse::<FaceCrop>().is_err());
        assert!("face".parse::<FaceCrop>().is_err());
    }

    #[test]
    fn only_whole_skips_detection_and_the_default_margin_applies_to_dataset_crops() {
        assert!(!FaceCrop::Whole.detects());
        assert!(FaceCrop::ABSENT.detects());
        assert_eq!(FaceCrop::Dataset.margin(), DEFAULT_MARGIN);
        assert_eq!(FaceCrop::aligned(1.5).margin(), 1.5);
    }
}
