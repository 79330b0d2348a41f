//! The one preprocessing implementation, shared by training and inference.
//!
//! [`preprocess`] turns a decoded image into the model's input tensor `[C, H, W]` (float32)
//! as described by [`Preprocess`] (which travels in the ONNX metadata):
//!
//! 1. colour: [`ColorMode::Gray`] takes ITU-R 601 luma exactly as PIL's `convert("L")`
//!    (`(19595 R + 38470 G + 7471 B + 2^15) >> 16`); [`ColorMode::Rgb`] keeps colour images as
//!    RGB and replicates gray ones to three channels; [`ColorMode::GrayRgb`] takes the luma of
//!    every image and replicates it to three channels. Alpha is dropped; 16-bit and float images
//!    are first converted to 8-bit RGB(A).
//! 2. resize of the whole image to `input_size × input_size`: [`ResizeMethod::Bilinear`] is
//!    PIL's `Image.resize(..., BILINEAR)` (half-pixel centres, triangle kernel widened by the
//!    scale when shrinking, weights renormalised at the borders), computed in float32 without
//!    PIL's intermediate rounding to 8 bits; [`ResizeMethod::Nearest`] takes source pixel
//!    `floor((x + 0.5) · in / out)` as PIL's NEAREST does.
//! 3. `v / 255`, then `(v - mean[c]) / std[c]`.
//!
//! `docs/preprocessing.md` gives the measured differences to PIL and torchvision.

use std::borrow::Cow;

use fer_models_spec::{ColorMode, Preprocess, ResizeMethod};
use image::{DynamicImage, GrayImage};

use crate::error::{Error, Result};

/// Checks that `p` can be applied: a positive input size and one positive, finite `std` and
/// one finite `mean` per channel.
pub fn validate(p: &Preprocess) -> Result<()> {
    let c = p.channels();
    if p.input_size == 0 || p.input_size > 8192 {
        return Err(Error::invalid(
            "preprocess.input_size",
            format!("{} (expected 1..=8192)", p.input_size),
        ));
    }
    if p.mean.len() != c || p.mean.iter().any(|m| !m.is_finite()) {
        return Err(Error::invalid(
            "preprocess.mean",
            format!("{:?} (expected {c} finite values for {:?})", p.mean, p.color),
        ));
    }
    if p.std.len() != c || p.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(Error::invalid(
            "preprocess.std",
            format!("{:?} (expected {c} positive finite values for {:?})", p.std, p.color),
        ));
    }
    Ok(())
}

/// Number of floats one preprocessed image occupies: `C · H · W`.
pub fn output_len(p: &Preprocess) -> usize {
    p.channels() * p.input_size * p.input_size
}

/// Preprocesses `img` into a new `[C, H, W]` buffer.
pub fn preprocess(img: &DynamicImage, p: &Preprocess) -> Result<Vec<f32>> {
    let mut out = vec![0.0; output_len(p)];
    preprocess_into(img, p, &mut out)?;
    Ok(out)
}

/// Preprocesses `img` into `out`, which must hold exactly [`output_len`] floats (one slot of
/// a batch buffer, for example).
pub fn preprocess_into(img: &DynamicImage, p: &Preprocess, out: &mut [f32]) -> Result<()> {
    validate(p)?;
    check_out(p, out.len())?;
    check_size(img.width(), img.height())?;
    let planes = Planes::from_image(img, p.color);
    planes.resize_normalized(Crop::full(&planes), p, out);
    Ok(())
}

/// [`preprocess_into`] for a gray image, reading its pixels in place (no conversion copy).
pub fn preprocess_gray_into(img: &GrayImage, p: &Preprocess, out: &mut [f32]) -> Result<()> {
    validate(p)?;
    check_out(p, out.len())?;
    check_size(img.width(), img.height())?;
    let planes = Planes::from_gray(img);
    planes.resize_normalized(Crop::full(&planes), p, out);
    Ok(())
}

pub(crate) fn check_size(w: u32, h: u32) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(Error::invalid("image", format!("{w}×{h} has no pixels")));
    }
    Ok(())
}

pub(crate) fn check_out(p: &Preprocess, got: usize) -> Result<()> {
    let want = output_len(p);
    if got != want {
        return Err(Error::invalid(
            "preprocess output buffer",
            format!("holds {got} floats, the [C, H, W] image needs {want}"),
        ));
    }
    Ok(())
}

/// A rectangle of the source image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
}

impl Crop {
    pub(crate) fn full(p: &Planes<'_>) -> Crop {
        Crop { x: 0, y: 0, w: p.width, h: p.height }
    }
}

/// A decoded image as the preprocessing sees it before resizing: `planes` planes (1 for a gray
/// source, 3 for colour under [`ColorMode::Rgb`]) of `height × width` bytes, laid end to end.
/// This is what the trainer keeps resident on its device.
pub fn source_planes(
    img: &DynamicImage,
    color: ColorMode,
) -> Result<(Vec<u8>, usize, usize, usize)> {
    check_size(img.width(), img.height())?;
    let p = Planes::from_image(img, color);
    let n = p.planes.len();
    let data = p.planes.iter().flat_map(|q| q.iter().copied()).collect();
    Ok((data, n, p.width, p.height))
}

/// The colour-converted source: one plane (gray, replicated to every output channel) or
/// three (RGB), each `width × height` u8, row-major and tightly packed.
pub(crate) struct Planes<'a> {
    pub planes: Vec<Cow<'a, [u8]>>,
    pub width: usize,
    pub height: usize,
}

impl<'a> Planes<'a> {
    pub fn from_gray(img: &'a GrayImage) -> Planes<'a> {
        let (w, h) = img.dimensions();
        Planes { planes: vec![Cow::Borrowed(img.as_raw())], width: w as usize, height: h as usize }
    }

    pub fn from_image(img: &'a DynamicImage, mode: ColorMode) -> Planes<'a> {
        let (width, height) = (img.width() as usize, img.height() as usize);
        let plane = |v: Vec<u8>| Planes { planes: vec![Cow::Owned(v)], width, height };
        match img {
            DynamicImage::ImageLuma8(g) => Planes::from_gray(g),
            DynamicImage::ImageLumaA8(la) => {
                plane(la.as_raw().chunks_exact(2).map(|p| p[0]).collect())
            }
            DynamicImage::ImageRgb8(rgb) => from_interleaved(rgb.as_raw(), 3, width, height, mode),
            DynamicImage::ImageRgba8(rgba) => {
                from_interleaved(rgba.as_raw(), 4, width, height, mode)
            }
            other if other.color().has_color() => {
                let rgb = other.to_rgb8();
                let Planes { planes, .. } = from_interleaved(rgb.as_raw(), 3, width, height, mode);
                let planes = planes.into_iter().map(|p| Cow::Owned(p.into_owned())).collect();
                Planes { planes, width, height }
            }
            // 16-bit and float gray: scale to 8 bits as the image crate does.
            other => plane(other.to_luma8().into_raw()),
        }
    }

    /// Resizes `crop` of every plane to `p.input_size` and writes normalised `[C, H, W]`.
    pub fn resize_normalized(&self, crop: Crop, p: &Preprocess, out: &mut [f32]) {
        let s = p.input_size;
        let mut work = vec![0.0f32; self.planes.len() * s * s];
        self.resize_pixels(crop, s, p.resize, &mut work);
        normalize(&work, p, out);
    }

    /// Resizes `crop` of every plane to `size × size`, in pixel units (`[planes, size, size]`).
    pub fn resize_pixels(&self, crop: Crop, size: usize, method: ResizeMethod, out: &mut [f32]) {
        let wx = Weights::new(crop.w, size, method);
        let wy = Weights::new(crop.h, size, method);
        let mut tmp = vec![0.0f32; crop.h * size];
        for (plane, dst) in self.planes.iter().zip(out.chunks_exact_mut(size * size)) {
            horizontal(plane, self.width, crop, &wx, size, &mut tmp);
            vertical(&tmp, &wy, size, dst);
        }
    }
}

/// Maps pixel-unit planes (`[P, S, S]`, P = 1 for a gray source, else C) to the normalised
/// `[C, S, S]` output: channel `c` reads plane `min(c, P - 1)`, as `v · a[c] + b[c]`.
pub(crate) fn normalize(work: &[f32], p: &Preprocess, out: &mut [f32]) {
    let n = p.input_size * p.input_size;
    let planes = work.len() / n;
    let (a, b) = affine(p);
    for (c, dst) in out.chunks_exact_mut(n).enumerate() {
        let src = &work[c.min(planes - 1) * n..][..n];
        for (d, v) in dst.iter_mut().zip(src) {
            *d = *v * a[c] + b[c];
        }
    }
}

/// Scale `a` and bias `b` per channel such that `v · a + b` maps a pixel value `v` to
/// `(v / 255 - mean) / std`: `a = 1 / (255 · std)`, `b = -mean / std`, in float32.
pub fn affine(p: &Preprocess) -> (Vec<f32>, Vec<f32>) {
    let a = p.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
    let b = p.mean.iter().zip(&p.std).map(|(m, s)| -m / s).collect();
    (a, b)
}

fn from_interleaved(
    raw: &[u8],
    step: usize,
    width: usize,
    height: usize,
    mode: ColorMode,
) -> Planes<'static> {
    let px = raw.chunks_exact(step);
    let planes = match mode {
        // One luma plane; `normalize` reads it for every output channel under GrayRgb.
        ColorMode::Gray | ColorMode::GrayRgb => {
            vec![Cow::Owned(px.map(|p| luma(p[0], p[1], p[2])).collect())]
        }
        ColorMode::Rgb => {
            let mut planes: Vec<Vec<u8>> =
                (0..3).map(|_| Vec::with_capacity(width * height)).collect();
            for p in px {
                for (c, plane) in planes.iter_mut().enumerate() {
                    plane.push(p[c]);
                }
            }
            planes.into_iter().map(Cow::Owned).collect()
        }
    };
    Planes { planes, width, height }
}

/// ITU-R 601 luma as PIL computes it (16-bit fixed point, rounded).
pub(crate) fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Separable resampling weights along one axis: output `i` reads `taps` inputs from
/// `start[i]`.
pub(crate) struct Weights {
    start: Vec<usize>,
    taps: usize,
    w: Vec<f32>,
}

impl Weights {
    pub fn new(input: usize, output: usize, method: ResizeMethod) -> Weights {
        match method {
            ResizeMethod::Nearest => {
                // As PIL's ImagingScaleAffine: the source coordinate is accumulated in f64
                // (`x0 = scale / 2`, `x += scale`), so exact ties such as 64 → 56 round down
                // where the sum lands just below an integer.
                let scale = input as f64 / output as f64;
                let mut xo = scale * 0.5;
                let mut start = Vec::with_capacity(output);
                for _ in 0..output {
                    start.push((xo.max(0.0) as usize).min(input - 1));
                    xo += scale;
                }
                Weights { start, taps: 1, w: vec![1.0; output] }
            }
            ResizeMethod::Bilinear => Weights::bilinear(input, output),
        }
    }

    fn bilinear(input: usize, output: usize) -> Weights {
        let scale = input as f64 / output as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the triangle's support is 1 at scale 1
        let taps = ((support.ceil() as usize) * 2 + 1).min(input);
        let mut start = Vec::with_capacity(output);
        let mut w = vec![0.0f32; output * taps];
        let mut ws = Vec::with_capacity(taps + 2);
        for i in 0..output {
            let center = (i as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize;
            ws.clear();
            for x in xmin..xmax {
                let d = (x as f64 - center + 0.5) / filterscale;
                ws.push((1.0 - d.abs()).max(0.0));
            }
            let total: f64 = ws.iter().sum();
            let s = xmin.min(input - taps);
            for (k, v) in ws.iter().enumerate() {
                let slot = xmin + k - s;
                if slot < taps && total > 0.0 {
                    w[i * taps + slot] = (v / total) as f32;
                }
            }
            start.push(s);
        }
        Weights { start, taps, w }
    }
}

fn horizontal(src: &[u8], stride: usize, crop: Crop, wx: &Weights, ow: usize, tmp: &mut [f32]) {
    let t = wx.taps;
    for y in 0..crop.h {
        let row = &src[(crop.y + y) * stride + crop.x..][..crop.w];
        let dst = &mut tmp[y * ow..(y + 1) * ow];
        for (x, d) in dst.iter_mut().enumerate() {
            let s = wx.start[x];
            let ws = &wx.w[x * t..(x + 1) * t];
            let mut acc = 0.0f32;
            for (k, w) in ws.iter().enumerate() {
                acc += w * row[s + k] as f32;
            }
            *d = acc;
        }
    }
}

fn vertical(tmp: &[f32], wy: &Weights, ow: usize, out: &mut [f32]) {
    let t = wy.taps;
    for (y, dst) in out.chunks_exact_mut(ow).enumerate() {
        let s = wy.start[y];
        dst.fill(0.0);
        for k in 0..t {
            let w = wy.w[y * t + k];
            if w == 0.0 {
                continue;
            }
            let src = &tmp[(s + k) * ow..(s + k + 1) * ow];
            for (d, v) in dst.iter_mut().zip(src) {
                *d += w * v;
            }
        }
    }
}
