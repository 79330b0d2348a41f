//! The built-in synthetic expression set: procedurally drawn faces, no download.
//!
//! Each sample is a gray face (ellipse head, hair, eyes with pupils, brows, nose, mouth) drawn
//! with 4×4 supersampling. Its class among FER-2013's seven expressions is carried only by
//! geometry: mouth curve, opening, width and tilt, brow height, slope and arch, eye opening
//! (and nose wrinkles for disgust). Everything else is a nuisance drawn at random per sample:
//! identity (face shape and size, skin and hair tone, eye spacing, feature positions), pose
//! (in-plane rotation ±15°, translation ±8 %, scale ±15 %), lighting (a linear gradient),
//! background (gradient and blobs) and pixel noise. That makes the set hard for a linear
//! classifier on pixels and easy for a small CNN.
//!
//! A sample is a pure function of `(seed, split, class, index, size)`: same inputs, same bytes.

use std::path::{Path, PathBuf};

use image::GrayImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::augment::splitmix;
use crate::dataset::{Dataset, Sample, SplitName, Target};
use crate::error::{Error, Result};
use crate::labels::Emotion;

/// The seven classes in FER-2013's id order (0 angry … 6 neutral).
pub const CLASSES: [Emotion; 7] = [
    Emotion::Anger,
    Emotion::Disgust,
    Emotion::Fear,
    Emotion::Happiness,
    Emotion::Sadness,
    Emotion::Surprise,
    Emotion::Neutral,
];

/// FER-2013's folder name of each of [`CLASSES`].
pub const FER_NAMES: [&str; 7] =
    ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Seed of everything. Default 0.
    pub seed: u64,
    /// Training images per class. Default 200.
    pub train_per_class: usize,
    /// Validation images per class. Default 50.
    pub val_per_class: usize,
    /// Square image side in pixels (16–1024). Default 48, as FER-2013.
    pub size: u32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig { seed: 0, train_per_class: 200, val_per_class: 50, size: 48 }
    }
}

impl SynthConfig {
    /// Checks the image size.
    pub fn validate(&self) -> Result<()> {
        if !(16..=1024).contains(&self.size) {
            return Err(Error::invalid(
                "synth.size",
                format!("{} (expected 16..=1024)", self.size),
            ));
        }
        Ok(())
    }
}

/// Writes the FER-2013 folder layout under `root`: `train/<class>/synth_00000.png` …, and
/// `val/<class>/…`, class folders named as [`FER_NAMES`]. Returns the number of files written.
pub fn write_fer_folder(root: &Path, cfg: &SynthConfig) -> Result<usize> {
    cfg.validate()?;
    let mut written = 0;
    for (split, per_class) in
        [(SplitName::Train, cfg.train_per_class), (SplitName::Val, cfg.val_per_class)]
    {
        for (class, name) in FER_NAMES.iter().enumerate() {
            let dir = root.join(split.name()).join(name);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            for index in 0..per_class {
                let path: PathBuf = dir.join(format!("synth_{index:05}.png"));
                let img = render(cfg.seed, split, class, index, cfg.size);
                crate::image_file::save_image(&img.into(), &path)?;
                written += 1;
            }
        }
    }
    Ok(written)
}

/// The synthetic set as an in-memory [`Dataset`] (images are drawn on [`Dataset::load`]).
/// Sample `i` has class `i % 7` (index into [`CLASSES`]) and is that class's `i / 7`-th image.
#[derive(Debug, Clone)]
pub struct SynthDataset {
    seed: u64,
    split: SplitName,
    per_class: usize,
    size: u32,
}

impl SynthDataset {
    /// `per_class` images of each class of split `split`, as [`write_fer_folder`] writes them.
    pub fn new(seed: u64, split: SplitName, per_class: usize, size: u32) -> Result<Self> {
        SynthConfig { seed, size, ..SynthConfig::default() }.validate()?;
        Ok(SynthDataset { seed, split, per_class, size })
    }
}

impl Dataset for SynthDataset {
    fn classes(&self) -> &[Emotion] {
        &CLASSES
    }
    fn len(&self) -> usize {
        self.per_class * CLASSES.len()
    }
    fn label(&self, i: usize) -> usize {
        i % CLASSES.len()
    }
    fn source(&self, i: usize) -> String {
        let (class, k) = (i % CLASSES.len(), i / CLASSES.len());
        format!("synth:{}/{}/synth_{k:05}.png", self.split, FER_NAMES[class])
    }
    fn load(&self, i: usize) -> Result<Sample> {
        if i >= self.len() {
            return Err(Error::Index { index: i, len: self.len() });
        }
        let (class, k) = (i % CLASSES.len(), i / CLASSES.len());
        let image =
            image::DynamicImage::ImageLuma8(render(self.seed, self.split, class, k, self.size));
        Ok(Sample { image, target: Target::Class(class), source: self.source(i) })
    }
}

/// Expression geometry in face units (head half-width ≈ 1, y down).
#[derive(Debug, Clone, Copy)]
struct Expr {
    /// Mouth corners above the centre (smile > 0, frown < 0).
    curve: f64,
    /// Mouth opening (lower lip drop at the centre).
    open: f64,
    /// Mouth half-width.
    width: f64,
    /// Mouth tilt: one corner up (disgust's sneer).
    tilt: f64,
    /// Brow height above the eye centre.
    brow: f64,
    /// Inner brow ends raised (> 0: sad, fear) or lowered (< 0: anger).
    slope: f64,
    /// Brow arch.
    arch: f64,
    /// Eye opening: vertical / horizontal radius.
    eye: f64,
    /// Nose wrinkles (disgust).
    wrinkle: bool,
}

/// Class means; every sample jitters them.
fn expression(class: usize) -> Expr {
    let e = |curve, open, width, tilt, brow, slope, arch, eye, wrinkle| Expr {
        curve,
        open,
        width,
        tilt,
        brow,
        slope,
        arch,
        eye,
        wrinkle,
    };
    match class {
        0 => e(-0.04, 0.0, 0.30, 0.0, 0.17, -0.13, 0.0, 0.42, false), // angry
        1 => e(-0.02, 0.05, 0.32, 0.13, 0.21, -0.06, 0.0, 0.32, true), // disgust
        2 => e(-0.07, 0.13, 0.46, 0.0, 0.40, 0.13, 0.0, 0.85, false), // fear
        3 => e(0.17, 0.07, 0.46, 0.0, 0.30, 0.0, 0.03, 0.40, false),  // happy
        4 => e(-0.13, 0.0, 0.34, 0.0, 0.31, 0.13, 0.0, 0.45, false),  // sad
        5 => e(0.0, 0.34, 0.21, 0.0, 0.46, 0.0, 0.09, 0.90, false),   // surprise
        _ => e(0.0, 0.0, 0.38, 0.0, 0.29, 0.0, 0.02, 0.58, false),    // neutral
    }
}

/// Draws sample `index` of `class` (index into [`CLASSES`]) for `split`, `size × size` pixels.
pub fn render(seed: u64, split: SplitName, class: usize, index: usize, size: u32) -> GrayImage {
    let mut h = splitmix(seed ^ 0x5157_4e54_4841_u64);
    h = splitmix(h ^ split as u64);
    h = splitmix(h ^ class as u64);
    h = splitmix(h ^ index as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(h);
    let face = Face::random(&mut rng, class);
    let s = size as f64;
    let pose = Pose {
        cx: s / 2.0 + rng.gen_range(-0.07..0.07) * s,
        cy: s / 2.0 + rng.gen_range(-0.07..0.07) * s,
        k: s * 0.30 * rng.gen_range(0.88..1.12),
        angle: rng.gen_range(-12f64..12.0).to_radians(),
    };
    let bg = Background::random(&mut rng, s);
    let light_dir = rng.gen_range(0.0..std::f64::consts::TAU);
    let light = (
        rng.gen_range(0.0..0.35) * light_dir.cos() / s,
        rng.gen_range(0.0..0.35) * light_dir.sin() / s,
    );
    let noise = rng.gen_range(3.0..9.0);
    const SS: usize = 4;
    let (sin, cos) = pose.angle.sin_cos();
    GrayImage::from_fn(size, size, |px, py| {
        let mut acc = 0.0;
        for sy in 0..SS {
            for sx in 0..SS {
                let x = px as f64 + (sx as f64 + 0.5) / SS as f64;
                let y = py as f64 + (sy as f64 + 0.5) / SS as f64;
                let (dx, dy) = ((x - pose.cx) / pose.k, (y - pose.cy) / pose.k);
                let (fx, fy) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                acc += face.shade(fx, fy).unwrap_or_else(|| bg.shade(x, y));
            }
        }
        let (x, y) = (px as f64 - s / 2.0, py as f64 - s / 2.0);
        let lit = acc / (SS * SS) as f64 * (1.0 + light.0 * x * 2.0 + light.1 * y * 2.0);
        let n: f64 = rng.gen_range(-1.0..1.0) + rng.gen_range(-1.0..1.0);
        image::Luma([(lit + n * noise).round().clamp(0.0, 255.0) as u8])
    })
}

struct Pose {
    cx: f64,
    cy: f64,
    k: f64,
    angle: f64,
}

struct Background {
    base: f64,
    grad: (f64, f64),
    blobs: Vec<(f64, f64, f64, f64, f64)>,
}

impl Background {
    fn random(rng: &mut ChaCha8Rng, s: f64) -> Self {
        let blobs = (0..rng.gen_range(0..4))
            .map(|_| {
                let r = rng.gen_range(0.1..0.35) * s;
                (
                    rng.gen_range(0.0..s),
                    rng.gen_range(0.0..s),
                    r,
                    r * rng.gen_range(0.5..1.5),
                    rng.gen_range(20.0..235.0),
                )
            })
            .collect();
        let g = 120.0 / s;
        Background {
            base: rng.gen_range(20.0..235.0),
            grad: (rng.gen_range(-g..g), rng.gen_range(-g..g)),
            blobs,
        }
    }

    fn shade(&self, x: f64, y: f64) -> f64 {
        for &(bx, by, rx, ry, v) in &self.blobs {
            if sq((x - bx) / rx) + sq((y - by) / ry) < 1.0 {
                return v;
            }
        }
        self.base + self.grad.0 * x + self.grad.1 * y
    }
}

struct Face {
    rx: f64,
    ry: f64,
    skin: f64,
    hair: f64,
    hairline: f64,
    eye_x: f64,
    eye_y: f64,
    eye_w: f64,
    gaze: f64,
    mouth_y: f64,
    nose_len: f64,
    brow_w: f64,
    e: Expr,
    side: f64,
}

impl Face {
    fn random(rng: &mut ChaCha8Rng, class: usize) -> Face {
        let mut e = expression(class);
        let j = |rng: &mut ChaCha8Rng, v: f64, a: f64| v + rng.gen_range(-a..a);
        e.curve = j(rng, e.curve, 0.03);
        e.open = (j(rng, e.open, 0.04) * if e.open > 0.0 { 1.0 } else { 0.0 }).max(0.0);
        e.width = j(rng, e.width, 0.04);
        e.tilt = j(rng, e.tilt, 0.03);
        e.brow = j(rng, e.brow, 0.04);
        e.slope = j(rng, e.slope, 0.03);
        e.arch = j(rng, e.arch, 0.03);
        e.eye = j(rng, e.eye, 0.08).max(0.15);
        Face {
            rx: rng.gen_range(0.85..1.05),
            ry: rng.gen_range(1.15..1.4),
            skin: rng.gen_range(110.0..215.0),
            hair: rng.gen_range(15.0..200.0),
            hairline: rng.gen_range(-0.95..-0.6),
            eye_x: rng.gen_range(0.34..0.46),
            eye_y: rng.gen_range(-0.22..-0.05),
            eye_w: rng.gen_range(0.16..0.22),
            gaze: rng.gen_range(-0.04..0.04),
            mouth_y: rng.gen_range(0.5..0.62),
            nose_len: rng.gen_range(0.3..0.45),
            brow_w: rng.gen_range(0.08..0.12),
            e,
            side: if rng.gen_bool(0.5) { 1.0 } else { -1.0 },
        }
    }

    /// The face's gray value at face coordinates `(x, y)`, or `None` outside the head.
    fn shade(&self, x: f64, y: f64) -> Option<f64> {
        let r2 = sq(x / self.rx) + sq(y / self.ry);
        if r2 > 1.0 {
            // Hair volume slightly outside the head, above the hairline.
            let hr = sq(x / (self.rx * 1.08)) + sq((y + 0.05) / (self.ry * 1.08));
            return (hr <= 1.0 && y < self.hairline + 0.5).then_some(self.hair);
        }
        if y < self.hairline + 0.15 * sq(x) {
            return Some(self.hair);
        }
        let skin = self.skin * (1.0 - 0.12 * r2);
        let dark = skin * 0.45;
        let e = &self.e;
        // Eyes: lid ring, sclera, pupil.
        for side in [-1.0, 1.0] {
            let (ex, ey) = (side * self.eye_x, self.eye_y);
            let (ax, ay) = (self.eye_w, self.eye_w * e.eye);
            let d = sq((x - ex) / ax) + sq((y - ey) / ay);
            if d <= 1.0 {
                let pd = sq(x - ex - self.gaze) + sq(y - ey);
                return Some(if pd < sq(0.075) { 25.0 } else { (skin + 60.0).min(240.0) });
            }
            if sq((x - ex) / (ax + 0.04)) + sq((y - ey) / (ay + 0.04)) <= 1.0 {
                return Some(dark);
            }
            // Brow: inner end raised by `slope`, arched at the middle.
            let inner = (side * 0.12, ey - e.brow - e.slope);
            let outer = (side * (self.eye_x + self.eye_w + 0.08), ey - e.brow + 0.3 * e.slope);
            let mid = ((inner.0 + outer.0) / 2.0, (inner.1 + outer.1) / 2.0 - e.arch * 2.0);
            if curve_dist((x, y), inner, mid, outer) < self.brow_w / 2.0 {
                return Some(dark * 0.8);
            }
        }
        // Nose: bridge and base.
        let tip = self.eye_y + self.nose_len;
        if seg_dist((x, y), (0.02, self.eye_y + 0.12), (0.05, tip)) < 0.025
            || seg_dist((x, y), (-0.09, tip + 0.03), (0.09, tip + 0.03)) < 0.03
        {
            return Some(skin * 0.72);
        }
        if e.wrinkle
            && (seg_dist((x, y), (-0.13, tip - 0.15), (-0.05, tip - 0.1)) < 0.022
                || seg_dist((x, y), (0.13, tip - 0.15), (0.05, tip - 0.1)) < 0.022)
        {
            return Some(skin * 0.7);
        }
        // Mouth: a centre line y_c(t) with corners raised by `curve`, one side by `tilt`; an
        // opening between upper and lower lip.
        let t = x / e.width;
        if t.abs() <= 1.05 {
            let tc = t.clamp(-1.0, 1.0);
            let yc = self.mouth_y - e.curve * tc * tc - self.side * e.tilt * tc;
            let bulge = (1.0 - tc * tc).max(0.0);
            let upper = yc - e.open * 0.3 * bulge;
            let lower = yc + e.open * bulge.sqrt();
            if e.open > 0.02 && y > upper && y < lower {
                let teeth = e.curve > 0.08 && y < upper + (lower - upper) * 0.4;
                return Some(if teeth { 215.0 } else { 35.0 });
            }
            let lip = if y < upper { upper - y } else { y - lower };
            if lip.abs() < 0.045 && t.abs() <= 1.0 {
                return Some(dark * 0.9);
            }
        }
        Some(skin)
    }
}

fn sq(v: f64) -> f64 {
    v * v
}

fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let t =
        (((p.0 - a.0) * vx + (p.1 - a.1) * vy) / (vx * vx + vy * vy).max(1e-12)).clamp(0.0, 1.0);
    (sq(p.0 - a.0 - t * vx) + sq(p.1 - a.1 - t * vy)).sqrt()
}

/// Distance to the quadratic Bézier curve through `a`, (control) `c`, `b`, as 6 segments.
fn curve_dist(p: (f64, f64), a: (f64, f64), c: (f64, f64), b: (f64, f64)) -> f64 {
    let at = |t: f64| {
        let u = 1.0 - t;
        (
            u * u * a.0 + 2.0 * u * t * c.0 + t * t * b.0,
            u * u * a.1 + 2.0 * u * t * c.1 + t * t * b.1,
        )
    };
    (0..6)
        .map(|i| seg_dist(p, at(i as f64 / 6.0), at((i + 1) as f64 / 6.0)))
        .fold(f64::MAX, f64::min)
}
