//! Training batches as 8-bit pixels, normalised where they land.
//!
//! With [`crate::loader::LoaderConfig::pixels`], a loader worker stops after the pixel
//! operations of [`crate::augment`] (crop, resize, flip, rotation, jitter, all in float32) and
//! rounds the result to 8 bits once (torchvision's PIL pipeline rounds after every step, so
//! this stays closer to the float path: within half a gray level). What is left of the
//! preprocessing (`v / 255`, mean and std, a gray plane replicated to the model's channels,
//! random erasing) is cheap elementwise work that the consumer does on its own device: the
//! trainer on the GPU. A gray source at 3 channels then crosses to the device as 1 byte per
//! pixel instead of 12, and the worker skips the normalisation pass.
//!
//! [`PixelBatch::normalize`] is the host reference of that last step.

use fer_models_spec::Preprocess;

use crate::error::{Error, Result};
use crate::preprocess;

/// A rectangle of the model input set to 0 after normalisation (torchvision's
/// `RandomErasing(value=0)`), in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraseBox {
    /// Top row.
    pub y: usize,
    /// Left column.
    pub x: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl EraseBox {
    /// Sets the rectangle to 0 in each `size × size` plane of `planes`.
    pub fn apply(&self, planes: &mut [f32], size: usize) {
        for plane in planes.chunks_exact_mut(size * size) {
            for row in plane.chunks_exact_mut(size).skip(self.y).take(self.h) {
                row[self.x..self.x + self.w].fill(0.0);
            }
        }
    }
}

/// One augmented sample in pixel units: `planes · size²` bytes (one plane for a gray source,
/// three for RGB), and the box to erase, if one was drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelSample {
    /// `[P, S, S]` row-major pixels.
    pub data: Vec<u8>,
    /// Number of planes `P` (1 or 3).
    pub planes: usize,
    /// The erased rectangle.
    pub erase: Option<EraseBox>,
}

/// A batch of [`PixelSample`]s: `[N, P, S, S]` bytes with one plane count for the batch (gray
/// samples in a batch that also holds RGB ones are replicated to three planes).
#[derive(Debug, Clone, PartialEq)]
pub struct PixelBatch {
    /// `[N, P, S, S]` row-major pixels.
    pub data: Vec<u8>,
    /// Planes per sample `P` (1 or 3).
    pub planes: usize,
    /// Image side `S`.
    pub size: usize,
    /// Each sample's erased rectangle.
    pub erase: Vec<Option<EraseBox>>,
}

impl PixelBatch {
    /// Packs samples of side `size` into one batch.
    pub fn pack(samples: &[PixelSample], size: usize) -> PixelBatch {
        let data = samples.iter().flat_map(|s| s.data.iter().copied()).collect();
        let planes: Vec<usize> = samples.iter().map(|s| s.planes).collect();
        PixelBatch::assemble(data, &planes, size, samples.iter().map(|s| s.erase).collect())
    }

    /// A batch from its samples' pixels laid end to end in `data` (sample `i` has
    /// `planes[i]` planes of `size²` bytes). When the plane counts differ, the one-plane
    /// samples are replicated to the batch's largest count.
    pub fn assemble(
        data: Vec<u8>,
        planes: &[usize],
        size: usize,
        erase: Vec<Option<EraseBox>>,
    ) -> PixelBatch {
        let most = planes.iter().copied().max().unwrap_or(1);
        if planes.iter().all(|&p| p == most) {
            return PixelBatch { data, planes: most, size, erase };
        }
        let n = size * size;
        let mut out = Vec::with_capacity(planes.len() * most * n);
        let mut at = 0;
        for &p in planes {
            let sample = &data[at..at + p * n];
            if p == most {
                out.extend_from_slice(sample);
            } else {
                (0..most).for_each(|_| out.extend_from_slice(&sample[..n]));
            }
            at += p * n;
        }
        PixelBatch { data: out, planes: most, size, erase }
    }

    /// Number of samples `N`.
    pub fn len(&self) -> usize {
        self.erase.len()
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.erase.is_empty()
    }

    /// The erased rectangles as `[N, 4]` rows of `(y, x, h, w)`, `(0, 0, 0, 0)` where none.
    pub fn erase_rows(&self) -> Vec<i64> {
        self.erase
            .iter()
            .flat_map(|b| b.map_or([0; 4], |b| [b.y, b.x, b.h, b.w].map(|v| v as i64)))
            .collect()
    }

    /// The model input `[N, C, S, S]` as [`crate::augment::Augmenter::apply_into`] would have
    /// written it from the rounded pixels: channel `c` reads plane `min(c, P - 1)` as
    /// `v · a[c] + b[c]` with `a = 1 / (255 · std)`, `b = -mean / std`, then the erased
    /// rectangles are set to 0. Fails when `p` has fewer channels than the batch has planes or
    /// another input size.
    pub fn normalize(&self, p: &Preprocess) -> Result<Vec<f32>> {
        self.check_fits(p)?;
        let (c, s) = (p.channels(), self.size);
        let (a, b) = preprocess::affine(p);
        let n = s * s;
        let mut out = vec![0.0f32; self.len() * c * n];
        for (i, img) in out.chunks_exact_mut(c * n).enumerate() {
            let src = &self.data[i * self.planes * n..][..self.planes * n];
            for (ch, dst) in img.chunks_exact_mut(n).enumerate() {
                let plane = &src[ch.min(self.planes - 1) * n..][..n];
                for (d, &v) in dst.iter_mut().zip(plane) {
                    *d = v as f32 * a[ch] + b[ch];
                }
            }
            if let Some(e) = self.erase[i] {
                e.apply(img, s);
            }
        }
        Ok(out)
    }

    /// Fails when the batch cannot become input of preprocessing `p`: another input size, or
    /// more planes than `p` has channels.
    pub fn check_fits(&self, p: &Preprocess) -> Result<()> {
        let (c, s) = (p.channels(), self.size);
        if p.input_size != s || c < self.planes {
            return Err(Error::invalid(
                "pixel batch",
                format!(
                    "{} planes of {s}×{s} do not fit the model input [{c}, {i}, {i}]",
                    self.planes,
                    i = p.input_size
                ),
            ));
        }
        Ok(())
    }
}

/// Appends pixel-unit values rounded to bytes (half up, clamped to `[0, 255]`).
pub(crate) fn quantize(work: &[f32], out: &mut Vec<u8>) {
    out.extend(work.iter().map(|&v| (v.clamp(0.0, 255.0) + 0.5) as u8));
}
