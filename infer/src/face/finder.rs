//! Faces in still photos: BlazeFace's short-range model, the full-range one, or both
//! ([`RangeChoice::Auto`]).
//!
//! The short-range model (128 px input) is fast and sure of faces that fill a good part of the
//! picture, but misses faces 60–75 px wide in a 640×480 frame (about a tenth of the letterboxed
//! side), which the full-range model (256 px) finds. `Auto` runs the short-range model and, when
//! it finds nothing or its smallest face is narrower than [`SMALL_FACE`] of the letterboxed side,
//! the full-range model too; faces of the second run that overlap none of the first (IoU below
//! [`MERGE_IOU`]) are added. `docs/benchmarks.md` has the measurements behind the rule.

use std::path::PathBuf;

use image::RgbImage;
use serde::Serialize;

use super::{BlazeFace, Face, Range};
use crate::backend::BackendKind;
use crate::error::Result;

/// Which detector(s) look at a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeChoice {
    /// Short range first; full range too when it finds nothing or only small faces.
    Auto,
    /// The short-range model only (128 px; faces filling much of the picture).
    Short,
    /// The full-range model only (256 px; small and distant faces).
    Full,
}

/// `Auto` also runs the full-range model when the short-range model's smallest face is
/// narrower than this fraction of the letterboxed (longer) image side.
pub const SMALL_FACE: f32 = 0.2;

/// A full-range face overlapping a short-range one by at least this IoU is the same face.
pub const MERGE_IOU: f32 = 0.3;

/// A face and the model that found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// The detection, in image pixels.
    #[serde(flatten)]
    pub face: Face,
    /// The model that found it.
    pub range: Range,
}

/// Where the detector files are and how to run them.
#[derive(Debug, Clone)]
pub struct FinderOptions {
    /// Which models run.
    pub choice: RangeChoice,
    /// The short-range file (default [`Range::default_path`]).
    pub short_file: Option<PathBuf>,
    /// The full-range file (default [`Range::default_path`]).
    pub full_file: Option<PathBuf>,
    /// Runtime of the detectors.
    pub backend: BackendKind,
    /// Threads per operator.
    pub threads: Option<usize>,
    /// Minimum detection confidence.
    pub min_score: f32,
}

/// One or both BlazeFace models and the rule that combines them.
pub struct FaceFinder {
    short: Option<BlazeFace>,
    full: Option<BlazeFace>,
}

impl FaceFinder {
    /// Loads the models `o.choice` needs.
    pub fn open(o: &FinderOptions) -> Result<Self> {
        let load = |range: Range, file: &Option<PathBuf>| -> Result<BlazeFace> {
            let path = file.clone().unwrap_or_else(|| range.default_path());
            let mut d = BlazeFace::open(&path, range, o.backend, o.threads)?;
            d.score_threshold = o.min_score;
            Ok(d)
        };
        let short = (o.choice != RangeChoice::Full)
            .then(|| load(Range::Short, &o.short_file))
            .transpose()?;
        let full = (o.choice != RangeChoice::Short)
            .then(|| load(Range::Full, &o.full_file))
            .transpose()?;
        Ok(FaceFinder { short, full })
    }

    /// The faces of `img`: best first for one model; with both, the short-range faces (best
    /// first) and then the full-range faces they do not cover (best first).
    pub fn find(&mut self, img: &RgbImage) -> Result<Vec<Found>> {
        let tag = |faces: Vec<Face>, range| faces.into_iter().map(move |face| Found { face, range });
        let mut out: Vec<Found> = match &mut self.short {
            Some(d) => tag(d.detect(img)?, Range::Short).collect(),
            None => Vec::new(),
        };
        let Some(full) = &mut self.full else { return Ok(out) };
        if self.short.is_some() && !needs_full_range(&out, img.width().max(img.height())) {
            return Ok(out);
        }
        for f in tag(full.detect(img)?, Range::Full) {
            if out.iter().all(|g| iou(&g.face.bbox, &f.face.bbox) < MERGE_IOU) {
                out.push(f);
            }
        }
        Ok(out)
    }
}

/// Whether `Auto` runs the full-range model after the short-range one found `faces` in an
/// image whose longer side is `side`.
pub fn needs_full_range(faces: &[Found], side: u32) -> bool {
    let small = SMALL_FACE * side as f32;
    faces.is_empty() || faces.iter().any(|f| f.face.bbox[2] - f.face.bbox[0] < small)
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(x0: f32, w: f32) -> Found {
        Found {
            face: Face { score: 0.9, bbox: [x0, 0.0, x0 + w, w], keypoints: [[0.0; 2]; 6] },
            range: Range::Short,
        }
    }

    #[test]
    fn the_full_range_model_runs_when_nothing_or_a_small_face_was_found() {
        assert!(needs_full_range(&[], 640));
        assert!(!needs_full_range(&[found(0.0, 200.0)], 640));
        assert!(needs_full_range(&[found(0.0, 200.0), found(300.0, 100.0)], 640));
    }

    #[test]
    fn iou_of_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
    }
}
