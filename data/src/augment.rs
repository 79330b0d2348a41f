//! Seeded training augmentation, fused with [`crate::preprocess`].
//!
//! The randomness of a sample depends only on `(seed, epoch, index)` ([`SampleKey`]): each
//! operation draws from its own ChaCha8 stream of a key hashed from the triple, so batches are
//! identical whatever the worker count or order, and changing one option does not change the
//! draws of the others.
//!
//! Order (torchvision's usual training pipeline, on the decoded image):
//! random resized crop (then resize to the input size, as [`crate::preprocess`] resizes) →
//! horizontal flip → rotation (bilinear, constant fill) → brightness and contrast jitter →
//! normalisation → random erasing (erased pixels are 0 after normalisation, as torchvision's
//! `RandomErasing(value=0)`). With `enabled = false` the output is exactly
//! [`crate::preprocess::preprocess_into`]'s.

use fer_models_spec::Preprocess;
use image::DynamicImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pixels::{EraseBox, PixelSample, quantize};
use crate::preprocess::{self, Crop, Planes};

/// Augmentation options (TOML/JSON: every field optional, unknown fields rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Augment at all. Default true; false gives exactly the preprocessing.
    pub enabled: bool,
    /// Probability of a random resized crop (else the whole image). Default 1.0.
    pub crop_prob: f32,
    /// Crop area as a fraction of the image, `[min, max]` within `(0, 1]`. Default
    /// `[0.8, 1.0]`.
    pub crop_scale: [f32; 2],
    /// Crop aspect ratio (width / height) range, sampled log-uniformly. Default
    /// `[0.75, 1.3333]` (torchvision's).
    pub crop_ratio: [f32; 2],
    /// Probability of a horizontal flip. Default 0.5.
    pub hflip_prob: f32,
    /// Rotation angle range in degrees: uniform in `[-d, d]`, 0 disables. Default 10.
    pub rotate_degrees: f32,
    /// Pixel value (0–255, before normalisation) of areas rotated in from outside. Default 0.
    pub rotate_fill: f32,
    /// Brightness factor range: uniform in `[1 - b, 1 + b]`, 0 disables. Default 0.2.
    pub brightness: f32,
    /// Contrast factor range around the image mean: uniform in `[1 - c, 1 + c]`, 0 disables.
    /// Default 0.2.
    pub contrast: f32,
    /// Probability of erasing one rectangle (set to 0 after normalisation). Default 0.25.
    pub erase_prob: f32,
    /// Erased area as a fraction of the image, `[min, max]`. Default `[0.02, 0.2]`.
    pub erase_scale: [f32; 2],
    /// Erased rectangle aspect ratio range (height / width). Default `[0.3, 3.3]`.
    pub erase_ratio: [f32; 2],
    /// Mixup (Zhang et al. 2018), applied by the trainer to whole batches after the per-image
    /// operations above: the batch is blended with a permutation of itself by
    /// `λ ~ Beta(α, α)`, and so are the targets. `α ≥ 0`; 0 disables. Default 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub mixup_alpha: f32,
    /// CutMix (Yun et al. 2019), per batch like mixup: a rectangle of area `1 − λ`,
    /// `λ ~ Beta(α, α)`, is pasted from a permutation of the batch and the targets are mixed by
    /// the pasted area. `α ≥ 0`; 0 disables. Default 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub cutmix_alpha: f32,
    /// Probability that a batch is mixed at all (when mixup or CutMix is on). Default 1.0.
    #[serde(skip_serializing_if = "is_one")]
    pub mix_prob: f32,
    /// With both mixup and CutMix on, the probability that a mixed batch uses CutMix rather
    /// than mixup. Default 0.5.
    #[serde(skip_serializing_if = "is_half")]
    pub mix_switch_prob: f32,
    /// Distinct augmentations per image: with `views = K ≥ 1`, the per-image draws above
    /// (crop, flip, rotation, jitter, erasing) of epoch `e` are those of epoch `e mod K`, so
    /// every image is seen in at most `K` versions while the batch order still changes every
    /// epoch (mixup and CutMix are drawn per batch and are not affected). What makes a
    /// teacher's outputs cacheable exactly (`stages.teacher_cache`). Default 0: fresh draws
    /// every epoch.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub views: u32,
}

// Mixing options at their defaults are left out of a resolved config, so that configs
// without mixing serialise (and hash) as before the options existed.
fn is_zero(v: &f32) -> bool {
    *v == 0.0
}
fn is_one(v: &f32) -> bool {
    *v == 1.0
}
fn is_half(v: &f32) -> bool {
    *v == 0.5
}
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            enabled: true,
            crop_prob: 1.0,
            crop_scale: [0.8, 1.0],
            crop_ratio: [0.75, 4.0 / 3.0],
            hflip_prob: 0.5,
            rotate_degrees: 10.0,
            rotate_fill: 0.0,
            brightness: 0.2,
            contrast: 0.2,
            erase_prob: 0.25,
            erase_scale: [0.02, 0.2],
            erase_ratio: [0.3, 3.3],
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            mix_prob: 1.0,
            mix_switch_prob: 0.5,
            views: 0,
        }
    }
}

impl AugmentConfig {
    /// The epoch whose per-image draws epoch `epoch` uses (see [`AugmentConfig::views`]).
    pub fn draw_epoch(&self, epoch: u64) -> u64 {
        if self.views == 0 { epoch } else { epoch % u64::from(self.views) }
    }

    /// No augmentation: the output equals [`crate::preprocess::preprocess_into`]'s.
    pub fn off() -> Self {
        AugmentConfig { enabled: false, ..AugmentConfig::default() }
    }

    /// Every operation enabled at its identity setting (no crop, flip, rotation, jitter or
    /// erasing): useful to check that the enabled path reproduces the preprocessing.
    pub fn identity() -> Self {
        AugmentConfig {
            enabled: true,
            crop_prob: 0.0,
            hflip_prob: 0.0,
            rotate_degrees: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            erase_prob: 0.0,
            ..AugmentConfig::default()
        }
    }

    /// Checks every field, naming the first bad one and the allowed values.
    pub fn validate(&self) -> Result<()> {
        let prob = |name: &str, v: f32| check(name, v, (0.0..=1.0).contains(&v), "in [0, 1]");
        prob("augment.crop_prob", self.crop_prob)?;
        prob("augment.hflip_prob", self.hflip_prob)?;
        prob("augment.erase_prob", self.erase_prob)?;
        prob("augment.mix_prob", self.mix_prob)?;
        prob("augment.mix_switch_prob", self.mix_switch_prob)?;
        let alpha =
            |name: &str, v: f32| check(name, v, v.is_finite() && v >= 0.0, "finite and >= 0");
        alpha("augment.mixup_alpha", self.mixup_alpha)?;
        alpha("augment.cutmix_alpha", self.cutmix_alpha)?;
        let range = |name: &str, r: [f32; 2], hi: f32| {
            let ok = r[0] > 0.0 && r[0] <= r[1] && r[1] <= hi && r.iter().all(|v| v.is_finite());
            check(name, r, ok, &format!("[min, max] with 0 < min <= max <= {hi}"))
        };
        range("augment.crop_scale", self.crop_scale, 1.0)?;
        range("augment.crop_ratio", self.crop_ratio, f32::MAX)?;
        range("augment.erase_scale", self.erase_scale, 1.0)?;
        range("augment.erase_ratio", self.erase_ratio, f32::MAX)?;
        let d = self.rotate_degrees;
        check("augment.rotate_degrees", d, (0.0..=180.0).contains(&d), "in [0, 180]")?;
        let f = self.rotate_fill;
        check("augment.rotate_fill", f, (0.0..=255.0).contains(&f), "in [0, 255]")?;
        check(
            "augment.brightness",
            self.brightness,
            (0.0..=1.0).contains(&self.brightness),
            "in [0, 1]",
        )?;
        check("augment.contrast", self.contrast, (0.0..=1.0).contains(&self.contrast), "in [0, 1]")
    }
}

fn check<T: std::fmt::Debug>(name: &str, v: T, ok: bool, allowed: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::invalid(name, format!("{v:?} (expected {allowed})"))) }
}

/// What a sample's random draws depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleKey {
    /// The run's seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: u64,
    /// The sample's index in its dataset (not its position in the epoch).
    pub index: u64,
}

impl SampleKey {
    /// A ChaCha8 generator for operation stream `stream` of this key.
    pub fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut state = splitmix(self.seed ^ 0x6a09_e667_f3bc_c908);
        state = splitmix(state ^ self.epoch);
        state = splitmix(state ^ self.index);
        let mut seed = [0u8; 32];
        for chunk in seed.chunks_exact_mut(8) {
            state = splitmix(state);
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(stream);
        rng
    }
}

/// SplitMix64's finaliser: a bijective 64-bit mix, the toolkit's one seed mixer (augmentation
/// draws, the loader's epoch order, synthetic faces, the trainer's MixUp/CutMix keys).
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const CROP: u64 = 1;
const FLIP: u64 = 2;
const ROTATE: u64 = 3;
const JITTER: u64 = 4;
const ERASE: u64 = 5;

/// Preprocessing plus augmentation, validated once.
#[derive(Debug, Clone)]
pub struct Augmenter {
    preprocess: Preprocess,
    config: AugmentConfig,
}

impl Augmenter {
    /// Validates both parameter sets.
    pub fn new(preprocess: Preprocess, config: AugmentConfig) -> Result<Self> {
        preprocess::validate(&preprocess)?;
        config.validate()?;
        Ok(Augmenter { preprocess, config })
    }

    /// The preprocessing parameters.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The augmentation options.
    pub fn config(&self) -> &AugmentConfig {
        &self.config
    }

    /// Floats per output image (`C · H · W`).
    pub fn output_len(&self) -> usize {
        preprocess::output_len(&self.preprocess)
    }

    /// Augments and preprocesses `img` into a new `[C, H, W]` buffer.
    pub fn apply(&self, img: &DynamicImage, key: SampleKey) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.output_len()];
        self.apply_into(img, key, &mut out)?;
        Ok(out)
    }

    /// Augments and preprocesses `img` into `out` (exactly [`Augmenter::output_len`] floats).
    pub fn apply_into(&self, img: &DynamicImage, key: SampleKey, out: &mut [f32]) -> Result<()> {
        let p = &self.preprocess;
        if !self.config.enabled {
            return preprocess::preprocess_into(img, p, out);
        }
        preprocess::check_out(p, out.len())?;
        let (work, _, erase) = self.pixel_ops(img, key)?;
        preprocess::normalize(&work, p, out);
        if let Some(e) = erase {
            e.apply(out, p.input_size);
        }
        Ok(())
    }

    /// The pixel operations of [`Augmenter::apply_into`] (or, disabled, the resize of the
    /// preprocessing) rounded to bytes, with the box to erase: what [`PixelBatch::normalize`]
    /// or the trainer's device turns into the model input.
    ///
    /// [`PixelBatch::normalize`]: crate::pixels::PixelBatch::normalize
    pub fn apply_pixels(&self, img: &DynamicImage, key: SampleKey) -> Result<PixelSample> {
        let mut data = Vec::new();
        let (planes, erase) = self.apply_pixels_into(img, key, &mut data)?;
        Ok(PixelSample { data, planes, erase })
    }

    /// [`Augmenter::apply_pixels`] appending the `[P, S, S]` bytes to `out` (a batch buffer;
    /// nothing is appended on error): returns `(P, erase box)`.
    pub fn apply_pixels_into(
        &self,
        img: &DynamicImage,
        key: SampleKey,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<EraseBox>)> {
        let (work, planes, erase) = self.pixel_ops(img, key)?;
        quantize(&work, out);
        Ok((planes, erase))
    }

    /// Draws the random parameters of sample `key` for a source of `width × height` pixels:
    /// what [`Augmenter::apply_pixels`] applies, and what the trainer's device path applies
    /// to a whole batch at once. Each operation reads its own stream of `key`, so the draws are
    /// the same whichever path consumes them. Disabled augmentation draws the identity.
    pub fn draw(&self, key: SampleKey, width: usize, height: usize) -> AugParams {
        let (cfg, s) = (&self.config, self.preprocess.input_size);
        let full = Crop { x: 0, y: 0, w: width, h: height };
        let mut params = AugParams {
            crop: full,
            flip: false,
            angle_degrees: 0.0,
            brightness: 1.0,
            contrast: 1.0,
            jitter: false,
            erase: None,
        };
        if !cfg.enabled {
            return params;
        }
        let mut rng = key.rng(CROP);
        if rng.gen_bool(cfg.crop_prob as f64) {
            params.crop = random_resized_crop(&mut rng, width, height, cfg);
        }
        params.flip = key.rng(FLIP).gen_bool(cfg.hflip_prob as f64);
        if cfg.rotate_degrees > 0.0 {
            params.angle_degrees =
                key.rng(ROTATE).gen_range(-cfg.rotate_degrees..=cfg.rotate_degrees);
        }
        if cfg.brightness > 0.0 || cfg.contrast > 0.0 {
            let mut rng = key.rng(JITTER);
            params.brightness = rng.gen_range(1.0 - cfg.brightness..=1.0 + cfg.brightness);
            params.contrast = rng.gen_range(1.0 - cfg.contrast..=1.0 + cfg.contrast);
            params.jitter = true;
        }
        let mut rng = key.rng(ERASE);
        if rng.gen_bool(cfg.erase_prob as f64) {
            params.erase = erase_box(&mut rng, s, cfg).map(|(y, x, h, w)| EraseBox { y, x, h, w });
        }
        params
    }

    /// Crop, resize, flip, rotation and jitter in pixel units on the source planes (one for a
    /// gray source, even for RGB models): `(planes [P, S, S], P, erase box)`; disabled, the
    /// preprocessing's resize of the whole image only.
    fn pixel_ops(
        &self,
        img: &DynamicImage,
        key: SampleKey,
    ) -> Result<(Vec<f32>, usize, Option<EraseBox>)> {
        let p = &self.preprocess;
        preprocess::check_size(img.width(), img.height())?;
        let planes = Planes::from_image(img, p.color);
        let a = self.draw(key, planes.width, planes.height);
        let s = p.input_size;
        let np = planes.planes.len();
        let mut work = vec![0.0f32; np * s * s];
        planes.resize_pixels(a.crop, s, p.resize, &mut work);
        if !self.config.enabled {
            // The preprocessing's resize only.
            return Ok((work, np, None));
        }
        if a.flip {
            work.chunks_exact_mut(s).for_each(<[f32]>::reverse);
        }
        if self.config.rotate_degrees > 0.0 {
            rotate(&mut work, s, a.angle_degrees.to_radians(), self.config.rotate_fill);
        }
        if a.jitter {
            jitter(&mut work, np, s, a.brightness, a.contrast);
        }
        Ok((work, np, a.erase))
    }
}

/// One sample's drawn augmentation ([`Augmenter::draw`]), applied in this order: crop of the
/// source resized to the input size, horizontal flip, rotation, brightness then contrast,
/// and (after normalisation) erasing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugParams {
    /// The source rectangle resized to the input size (the whole image when no crop is drawn).
    pub crop: Crop,
    /// Mirror left to right.
    pub flip: bool,
    /// Rotation angle, counter-clockwise on screen, about the image centre.
    pub angle_degrees: f32,
    /// Brightness factor.
    pub brightness: f32,
    /// Contrast factor around the mean luma.
    pub contrast: f32,
    /// Whether jitter runs at all (also clamps to `[0, 255]`); false when the config disables
    /// both factors.
    pub jitter: bool,
    /// The rectangle set to 0 after normalisation.
    pub erase: Option<EraseBox>,
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a box of the sampled area and
/// log-uniform aspect ratio, else a centre crop with the ratio clamped to the range.
fn random_resized_crop(
    rng: &mut ChaCha8Rng,
    width: usize,
    height: usize,
    cfg: &AugmentConfig,
) -> Crop {
    let (wf, hf) = (width as f64, height as f64);
    let area = wf * hf;
    let (lr0, lr1) = ((cfg.crop_ratio[0] as f64).ln(), (cfg.crop_ratio[1] as f64).ln());
    for _ in 0..10 {
        let target = area * rng.gen_range(cfg.crop_scale[0] as f64..=cfg.crop_scale[1] as f64);
        let ratio = rng.gen_range(lr0..=lr1).exp();
        let w = (target * ratio).sqrt().round() as usize;
        let h = (target / ratio).sqrt().round() as usize;
        if w > 0 && h > 0 && w <= width && h <= height {
            let y = rng.gen_range(0..=height - h);
            let x = rng.gen_range(0..=width - w);
            return Crop { x, y, w, h };
        }
    }
    let in_ratio = wf / hf;
    let (w, h) = if in_ratio < cfg.crop_ratio[0] as f64 {
        (width, ((wf / cfg.crop_ratio[0] as f64).round() as usize).clamp(1, height))
    } else if in_ratio > cfg.crop_ratio[1] as f64 {
        (((hf * cfg.crop_ratio[1] as f64).round() as usize).clamp(1, width), height)
    } else {
        (width, height)
    };
    Crop { x: (width - w) / 2, y: (height - h) / 2, w, h }
}

/// torchvision's `RandomErasing.get_params` on an `s × s` image: `(y, x, h, w)` or `None`
/// when ten tries find no box that fits.
fn erase_box(
    rng: &mut ChaCha8Rng,
    s: usize,
    cfg: &AugmentConfig,
) -> Option<(usize, usize, usize, usize)> {
    let area = (s * s) as f64;
    let (lr0, lr1) = ((cfg.erase_ratio[0] as f64).ln(), (cfg.erase_ratio[1] as f64).ln());
    for _ in 0..10 {
        let target = area * rng.gen_range(cfg.erase_scale[0] as f64..=cfg.erase_scale[1] as f64);
        let ratio = rng.gen_range(lr0..=lr1).exp();
        let h = (target * ratio).sqrt().round() as usize;
        let w = (target / ratio).sqrt().round() as usize;
        if h >= 1 && w >= 1 && h < s && w < s {
            return Some((rng.gen_range(0..=s - h), rng.gen_range(0..=s - w), h, w));
        }
    }
    None
}

/// Rotates each `s × s` plane by `theta` (counter-clockwise on screen) about the image centre,
/// bilinear, with `fill` where the source lies outside.
fn rotate(work: &mut [f32], s: usize, theta: f32, fill: f32) {
    let (sin, cos) = theta.sin_cos();
    let c = s as f32 / 2.0;
    let mut src = vec![0.0f32; s * s];
    let last = s as isize - 1;
    // Source points lie within `s` pixels of the image (rotation about the centre).
    let off = 2.0 * s as f32;
    for plane in work.chunks_exact_mut(s * s) {
        src.copy_from_slice(plane);
        let at = |x: isize, y: isize| {
            if x < 0 || y < 0 || x > last || y > last {
                fill
            } else {
                src[y as usize * s + x as usize]
            }
        };
        for (y, row) in plane.chunks_exact_mut(s).enumerate() {
            let dy = y as f32 + 0.5 - c;
            for (x, d) in row.iter_mut().enumerate() {
                let dx = x as f32 + 0.5 - c;
                // Inverse map: the source point that lands on (x, y).
                let sx = cos * dx - sin * dy + c - 0.5;
                let sy = sin * dx + cos * dy + c - 0.5;
                // floor() without a libm call: shift into positive range, truncate.
                let (x0, y0) =
                    ((sx + off) as isize - off as isize, (sy + off) as isize - off as isize);
                let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                let (p00, p01, p10, p11) = if x0 >= 0 && y0 >= 0 && x0 < last && y0 < last {
                    let i = y0 as usize * s + x0 as usize;
                    (src[i], src[i + 1], src[i + s], src[i + s + 1])
                } else {
                    (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1))
                };
                let top = p00 + (p01 - p00) * fx;
                let bottom = p10 + (p11 - p10) * fx;
                *d = top + (bottom - top) * fy;
            }
        }
    }
}

/// Brightness (`v · bf`) then contrast (`m + cf · (v - m)`, `m` the mean luma), as
/// torchvision's `adjust_brightness` and `adjust_contrast`, clamped to `[0, 255]`.
fn jitter(out: &mut [f32], planes: usize, s: usize, bf: f32, cf: f32) {
    let n = s * s;
    out.iter_mut().for_each(|v| *v = (*v * bf).clamp(0.0, 255.0));
    let mean = if planes == 3 {
        let (r, rest) = out.split_at(n);
        let (g, b) = rest.split_at(n);
        let sum: f64 = (0..n).map(|i| (0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]) as f64).sum();
        (sum / n as f64) as f32
    } else {
        (out.iter().map(|&v| v as f64).sum::<f64>() / out.len() as f64) as f32
    };
    out.iter_mut().for_each(|v| *v = (mean + cf * (*v - mean)).clamp(0.0, 255.0));
}
