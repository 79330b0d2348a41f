//! Datasets of whole photos seen through the face pipeline ([`crate::photo`]): `eval --faces`
//! and `data faces`.
//!
//! [`FaceCropped::build`] looks for faces in every image once (sequentially: the detector is
//! not shared between threads) and keeps, per image, where its crop comes from; loading an
//! image then decodes it again and cuts that crop, so the crops never sit in memory together.
//! An image with no face, or with several under [`Multi::Skip`], is left out and listed as a
//! skipped item with the reason (never silently); [`FaceSummary`] counts what happened.

use std::sync::Arc;

use fer_data::dataset::{Exclusion, SkippedItem};
use fer_data::face_crop::CropBox;
use fer_data::{Dataset, Sample};
use image::DynamicImage;
use serde::Serialize;

use crate::error::Result;
use crate::photo::{CropUsed, Photos};

/// What to do with an image in which several faces are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Multi {
    /// Keep the largest face (by box area).
    Largest,
    /// Leave the image out (listed with the skipped items).
    Skip,
}

/// What the face pass found over a dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaceSummary {
    /// Images looked at.
    pub images: usize,
    /// Kept whole (pre-cropped faces, or a model trained on whole images).
    pub whole: usize,
    /// Exactly one face found.
    pub one_face: usize,
    /// Several faces found (the largest kept, or the image left out with [`Multi::Skip`]).
    pub several: usize,
    /// No face found: left out.
    pub no_face: usize,
    /// Images that could not be read (left out with `--skip-bad`).
    pub unreadable: usize,
}

impl FaceSummary {
    /// Share of the images searched for faces in which at least one was found.
    pub fn found_rate(&self) -> f64 {
        let searched = self.one_face + self.several + self.no_face;
        if searched == 0 { 1.0 } else { (self.one_face + self.several) as f64 / searched as f64 }
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        format!(
            "{} images: {} whole, {} with one face, {} with several, {} without a face ({:.1} % of \
             the searched images had a face){}",
            self.images,
            self.whole,
            self.one_face,
            self.several,
            self.no_face,
            100.0 * self.found_rate(),
            if self.unreadable > 0 {
                format!(", {} unreadable", self.unreadable)
            } else {
                String::new()
            }
        )
    }
}

/// A dataset whose images are their face crops; images without a usable face are left out.
pub struct FaceCropped {
    inner: Arc<dyn Dataset>,
    /// Kept samples: the inner index, and the crop (`None`: the image whole).
    kept: Vec<(usize, Option<CropBox>)>,
    side: u32,
    skipped: Vec<SkippedItem>,
    /// What was found.
    pub summary: FaceSummary,
}

impl FaceCropped {
    /// Looks for faces in every sample of `inner` with `photos`; `progress(done, total)` after
    /// each image. Unreadable images stop the pass unless `skip_bad`.
    pub fn build(
        inner: Arc<dyn Dataset>,
        photos: &mut Photos,
        side: u32,
        multi: Multi,
        skip_bad: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let mut s = FaceCropped {
            skipped: inner.skipped().to_vec(),
            inner: inner.clone(),
            kept: Vec::with_capacity(inner.len()),
            side,
            summary: FaceSummary::default(),
        };
        for i in 0..inner.len() {
            s.summary.images += 1;
            let source = inner.source(i);
            let sample = match inner.load(i) {
                Ok(x) => x,
                Err(e) if skip_bad => {
                    s.summary.unreadable += 1;
                    s.skipped.push(SkippedItem { source, reason: e.to_string() });
                    continue;
                }
                Err(e) => return Err(crate::Error::Data { path: source.into(), source: e }),
            };
            let (w, h) = (sample.image.width(), sample.image.height());
            if photos.decide(w, h) == CropUsed::Whole {
                s.summary.whole += 1;
                s.kept.push((i, None));
            } else {
                s.place(i, source, &sample.image, photos, multi)?;
            }
            progress(i + 1, inner.len());
        }
        Ok(s)
    }

    fn place(
        &mut self,
        i: usize,
        source: String,
        img: &DynamicImage,
        photos: &mut Photos,
        multi: Multi,
    ) -> Result<()> {
        let faces = photos.find(&img.to_rgb8())?;
        let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
        let largest = faces.iter().max_by(|a, b| area(&a.face.bbox).total_cmp(&area(&b.face.bbox)));
        match (faces.len(), largest) {
            (0, _) | (_, None) => {
                self.summary.no_face += 1;
                self.skipped.push(SkippedItem { source, reason: "no face found".into() });
            }
            (1, Some(f)) => {
                self.summary.one_face += 1;
                self.kept.push((i, Some(photos.crop_box(f))));
            }
            (n, Some(f)) => {
                self.summary.several += 1;
                match multi {
                    Multi::Largest => self.kept.push((i, Some(photos.crop_box(f)))),
                    Multi::Skip => self.skipped.push(SkippedItem {
                        source,
                        reason: format!("{n} faces found (--multi skip)"),
                    }),
                }
            }
        }
        Ok(())
    }

    /// The crop of kept sample `i`, `None` for a whole image.
    pub fn crop_of(&self, i: usize) -> Option<&CropBox> {
        self.kept.get(i).and_then(|k| k.1.as_ref())
    }
}

impl Dataset for FaceCropped {
    fn classes(&self) -> &[fer_data::Emotion] {
        self.inner.classes()
    }
    fn len(&self) -> usize {
        self.kept.len()
    }
    fn label(&self, i: usize) -> usize {
        self.inner.label(self.kept[i].0)
    }
    fn group(&self, i: usize) -> Option<&str> {
        self.inner.group(self.kept[i].0)
    }
    fn source(&self, i: usize) -> String {
        self.inner.source(self.kept[i].0)
    }
    fn load(&self, i: usize) -> fer_data::Result<Sample> {
        let (j, b) = &self.kept[i];
        let mut s = self.inner.load(*j)?;
        if let Some(b) = b {
            let rgb = s.image.to_rgb8();
            s.image =
                DynamicImage::ImageRgb8(fer_data::face_crop::aligned_crop(&rgb, b, self.side));
        }
        Ok(s)
    }
    fn skipped(&self) -> &[SkippedItem] {
        &self.skipped
    }
    fn excluded(&self) -> &[Exclusion] {
        self.inner.excluded()
    }
}
