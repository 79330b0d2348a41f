//! The live demo as a library (`fer-infer live` is its front end): frames from a
//! [`source::FrameSource`] (a camera with the cargo feature `camera`, MJPEG [`video`] files,
//! images, a synthetic scene), faces from BlazeFace, eye-levelled crops
//! ([`fer_infer::face::align`]), the classifier with the preprocessing of its ONNX metadata,
//! per-face temporal smoothing ([`track`]), annotated frames ([`draw`], text in the bitmap
//! [`font`]) and one JSON record per frame with the time spent in every stage; [`headless`]
//! writes them out (JSON lines, PNG frames, an MJPEG video), [`window`] shows them. The crop follows the model's
//! `fer.crop`: detected faces at its margin, or the whole frame for a model trained on whole
//! images. Stills (a folder of photos) are classified one by one ([`Live::set_stills`]).

pub mod draw;
pub mod error;
pub mod font;
pub mod headless;
pub mod source;
pub mod track;
pub mod video;
pub mod window;

use std::time::Instant;

use image::DynamicImage;
use serde::Serialize;

pub use error::{Error, Result};
use fer_infer::face::BlazeFace;
use fer_infer::face::align;
use fer_infer::model::Model;
use fer_infer::predict::{preprocess_batch, softmax};
use source::Frame;
use track::Tracker;

/// One face of a frame's record.
#[derive(Debug, Clone, Serialize)]
pub struct FaceResult {
    /// Track id: the same face keeps its id across frames.
    pub id: u64,
    /// Detector confidence.
    pub score: f32,
    /// `[x0, y0, x1, y1]` in frame pixels.
    pub bbox: [f32; 4],
    /// The most probable class (after smoothing and temperature).
    pub label: String,
    /// Its probability.
    pub confidence: f32,
    /// Every class's probability, in the model's label order (sum 1).
    pub probs: Vec<f32>,
}

/// Milliseconds per stage for one frame.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Getting the frame (decoding a file, rendering the synthetic scene, camera capture).
    pub decode: f64,
    /// Face detection (letterbox, network, decoding, NMS).
    pub detect: f64,
    /// Aligned crops.
    pub align: f64,
    /// Classifier preprocessing and network, smoothing.
    pub classify: f64,
    /// Drawing the annotations.
    pub draw: f64,
}

/// One frame's record (a JSON line in headless mode).
#[derive(Debug, Clone, Serialize)]
pub struct FrameResult {
    /// Frame index.
    pub frame: usize,
    /// The image file the frame was read from (stills: an image or a folder of images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `[width, height]`.
    pub size: [u32; 2],
    /// Faces found, best detection first.
    pub faces: Vec<FaceResult>,
    /// The class names, in probability order.
    pub labels: Vec<String>,
    /// Where a synthetic source put the face (ground truth), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<[f32; 4]>,
    /// Time per stage.
    pub ms: Timings,
}

/// Detector, classifier and tracker.
pub struct Live {
    detector: BlazeFace,
    model: Model,
    tracker: Tracker,
    /// Weight of the newest logits (1: no smoothing).
    smoothing: f32,
    /// Frames are unrelated stills: no tracking, no smoothing.
    stills: bool,
    /// Side of the aligned crop handed to the classifier's preprocessing.
    crop_side: u32,
}

/// The whole frame as one "face", for a model trained on whole images (`fer.crop` `whole`).
fn whole_frame(img: &image::RgbImage) -> fer_infer::face::Face {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let c = [w / 2.0, h / 2.0];
    fer_infer::face::Face { score: 1.0, bbox: [0.0, 0.0, w, h], keypoints: [c; 6] }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Live {
    /// A pipeline; `smoothing` is the weight of the newest logits (1 = none).
    pub fn new(detector: BlazeFace, model: Model, smoothing: f32) -> Self {
        let crop_side = align::crop_side(model.meta());
        let smoothing = smoothing.clamp(0.01, 1.0);
        let tracker = Self::tracker(smoothing);
        Live { detector, model, tracker, smoothing, stills: false, crop_side }
    }

    fn tracker(alpha: f32) -> Tracker {
        let mut t = Tracker::default();
        t.alpha = alpha;
        t
    }

    /// Treats frames as unrelated stills (a folder of photos): each frame is classified on its
    /// own, without smoothing, and its faces are numbered from 0 (no tracking across frames).
    pub fn set_stills(&mut self, stills: bool) {
        self.stills = stills;
        self.tracker = Self::tracker(if stills { 1.0 } else { self.smoothing });
    }

    /// The classifier.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Detects, aligns, classifies and smooths the faces of `frame`; `decode_ms` is the time the
    /// source took to produce it.
    pub fn process(&mut self, frame: &Frame, decode_ms: f64) -> Result<FrameResult> {
        let mut t = Timings { decode: decode_ms, ..Timings::default() };
        let crop = self.model.meta().crop;
        let start = Instant::now();
        let faces = if crop.detects() {
            self.detector.detect(&frame.image)?
        } else {
            vec![whole_frame(&frame.image)]
        };
        t.detect = ms(start);

        let start = Instant::now();
        let crops: Vec<DynamicImage> = if crop.detects() {
            let (m, side) = (crop.margin(), self.crop_side);
            faces
                .iter()
                .map(|f| {
                    DynamicImage::ImageRgb8(align::aligned_crop_with(&frame.image, f, m, side))
                })
                .collect()
        } else {
            vec![DynamicImage::ImageRgb8(frame.image.clone())]
        };
        t.align = ms(start);
        if self.stills {
            self.tracker = Self::tracker(1.0);
        }

        let start = Instant::now();
        let logits: Vec<Vec<f32>> = if crops.is_empty() {
            Vec::new()
        } else {
            let batch = preprocess_batch(&crops, &[], &self.model.meta().preprocess)?;
            let out = self.model.run(batch.view())?;
            out.logits.rows().into_iter().map(|r| r.to_vec()).collect()
        };
        let tracked = self.tracker.update(&faces, &logits);
        let meta = self.model.meta();
        let results = faces
            .iter()
            .zip(tracked)
            .map(|(f, (id, smoothed))| {
                let k = smoothed.len();
                let row = ndarray::Array2::from_shape_vec((1, k), smoothed).expect("one row");
                let probs = softmax(row.view(), meta.temperature).row(0).to_vec();
                let best = fer_infer::predict::top_k(&probs, 1)[0];
                FaceResult {
                    id,
                    score: f.score,
                    bbox: f.bbox,
                    label: meta.labels[best.0].clone(),
                    confidence: best.1,
                    probs,
                }
            })
            .collect();
        t.classify = ms(start);
        Ok(FrameResult {
            frame: frame.index,
            path: frame.path.as_ref().map(|p| p.display().to_string()),
            size: [frame.image.width(), frame.image.height()],
            faces: results,
            labels: meta.labels.clone(),
            truth: frame.truth,
            ms: t,
        })
    }
}
