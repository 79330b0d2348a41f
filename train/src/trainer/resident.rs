//! The device data path (`data.device_data`): the dataset resident on the training device,
//! augmentation batched there.
//!
//! Why it exists: on a GPU the graphed training step of a small student runs several times
//! faster than CPU loader workers can crop, rotate and jitter 48×48 faces, so the loader set the
//! pace of whole runs. Here the decoded 8-bit training images are uploaded once per run
//! (`[N, P, H, W]`, 66 MB for FER-2013) and each batch is made on the device from the same
//! per-sample parameters the CPU loader would draw for the same `(seed, epoch, sample)`
//! ([`Augmenter::draw`], drawn on the host for a whole epoch and uploaded once):
//!
//! 1. crop + resize to the input size + flip: one bilinear `grid_sampler_2d` per batch whose
//!    source coordinates are those of the loader's resize (half-pixel centres, clamped to the
//!    crop: what PIL's bilinear triangle filter computes when it enlarges);
//! 2. rotation: a second `grid_sampler_2d` on the resized image, the loader's inverse map about
//!    the centre, `rotate_fill` outside (sampled as `(v - fill)` with zero padding, plus fill);
//! 3. brightness then contrast around the mean luma, clamped to `[0, 255]` after each;
//! 4. rounding to whole gray levels (the loader's 8-bit pixel batches round once, here too);
//! 5. normalisation, gray planes expanded to the model's channels, random erasing
//!    (the same code as the loader's pixel batches, [`super::pixels`]).
//!
//! The images then equal the CPU loader's pixel batches within interpolation rounding (a gray
//! level on a few pixels; `train/tests/device_data.rs` checks it). What must hold for the path
//! to be taken: every image of the training split has the same size (they are stacked), none
//! is larger than the input size (enlarging needs no antialiasing; shrinking would, and the
//! grid sampler does not do it), the resize is bilinear, and under `auto` the device is a CUDA
//! device with room for the images in `data.device_data_share` of its memory. Otherwise the
//! CPU loader runs and a log line says why; `device_data = "on"` turns that into an error.
//!
//! Validation batches are preprocessed once by the validation loader (float32, exactly as
//! `fer-infer` preprocesses) and stay on the device as model input.

use fer_data::Target;
use fer_data::augment::{AugParams, Augmenter};
use fer_data::loader::Loader;
use fer_models_spec::{ColorMode, Preprocess, ResizeMethod};
use tch::{Device, Kind, Tensor};

use super::teacher::channel_vec;
use crate::error::{Error, Result};
use crate::extras::upload;

/// Floats per sample in an epoch's parameter table.
const PARAMS: usize = 12;

/// The training split on the device, and how to make its batches there.
pub struct ResidentTrain {
    /// `[N, P, H, W]` bytes, row `i` = dataset index `i`.
    images: Tensor,
    /// `[N]` hard labels.
    labels: Tensor,
    /// `[N, K]` target distributions, when the loader makes soft targets.
    soft: Option<Tensor>,
    height: usize,
    width: usize,
    loader: Loader,
    device: Device,
}

/// One epoch's samples and drawn parameters, on the device.
pub struct ResidentEpoch {
    /// `[M]` dataset indices in batch order.
    indices: Tensor,
    /// `[M, 12]` drawn parameters ([`param_row`]).
    params: Tensor,
    samples: usize,
    batches: usize,
}

impl ResidentEpoch {
    /// Batches in the epoch.
    pub fn len(&self) -> usize {
        self.batches
    }

    /// Whether the epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }

    /// `[M]` dataset indices in batch order (before a dropped last batch).
    pub fn indices(&self) -> &Tensor {
        &self.indices
    }

    /// `[M, 12]` parameter rows ([`param_row`]) in batch order.
    pub fn params(&self) -> &Tensor {
        &self.params
    }
}

/// A batch made on the device: model input, hard labels, soft targets.
pub type DeviceBatch = (Tensor, Tensor, Option<Tensor>);

/// Why the device path cannot take a dataset.
pub type Refusal = String;

/// Bytes the training images take resident (`N · P · H · W`), or why they cannot be stacked.
pub fn check_train(loader: &Loader) -> std::result::Result<(usize, [usize; 3]), Refusal> {
    let p = loader.preprocess();
    if p.resize != ResizeMethod::Bilinear {
        return Err(format!(
            "preprocess.resize is {:?}; the device path resizes bilinearly only",
            p.resize
        ));
    }
    let ds = loader.dataset();
    if ds.is_empty() {
        return Err("the training split is empty".into());
    }
    let first = ds.load(0).map_err(|e| format!("{e}"))?;
    let planes = if p.color == ColorMode::Rgb && first.image.color().has_color() { 3 } else { 1 };
    let (w, h) = (first.image.width() as usize, first.image.height() as usize);
    if w > p.input_size || h > p.input_size {
        return Err(format!(
            "the images ({w}×{h}, {}) are larger than the input size {}: shrinking needs the \
             loader's antialiased resize",
            ds.source(0),
            p.input_size
        ));
    }
    Ok((ds.len() * planes * w * h, [planes, h, w]))
}

impl ResidentTrain {
    /// Decodes every image of `loader`'s dataset (on `threads` threads) and uploads them.
    /// Fails with the reason when an image cannot be decoded or has another size or colour
    /// than the first.
    pub fn build(
        loader: &Loader,
        device: Device,
        threads: usize,
    ) -> std::result::Result<Self, Refusal> {
        let (_, [planes, h, w]) = check_train(loader)?;
        let ds = loader.dataset().clone();
        let (n, k) = (ds.len(), ds.classes().len());
        let color = loader.preprocess().color;
        let soft_targets = loader.config().soft_targets;
        let per = planes * h * w;
        let mut bytes = vec![0u8; n * per];
        let mut labels = vec![0i64; n];
        let mut soft = if soft_targets { vec![0f32; n * k] } else { Vec::new() };
        let threads = threads.clamp(1, 16);
        let chunk = n.div_ceil(threads);
        let soft_chunk = if soft_targets { chunk * k } else { 0 };
        let soft_parts: Vec<&mut [f32]> = if soft_targets {
            soft.chunks_mut(soft_chunk).collect()
        } else {
            (0..threads).map(|_| <&mut [f32]>::default()).collect()
        };
        let results: Vec<std::result::Result<(), Refusal>> = std::thread::scope(|scope| {
            let handles: Vec<_> = bytes
                .chunks_mut(chunk * per)
                .zip(labels.chunks_mut(chunk))
                .zip(soft_parts)
                .enumerate()
                .map(|(t, ((px, lab), sf))| {
                    let ds = &ds;
                    scope.spawn(move || -> std::result::Result<(), Refusal> {
                        for (j, l) in lab.iter_mut().enumerate() {
                            let i = t * chunk + j;
                            let s = ds.load(i).map_err(|e| e.to_string())?;
                            let (data, p, sw, sh) =
                                fer_data::preprocess::source_planes(&s.image, color)
                                    .map_err(|e| format!("{}: {e}", s.source))?;
                            if (p, sh, sw) != (planes, h, w) {
                                return Err(format!(
                                    "{} is {sw}×{sh} with {p} plane(s), the first image \
                                     {w}×{h} with {planes}: the images cannot be stacked",
                                    s.source
                                ));
                            }
                            px[j * per..(j + 1) * per].copy_from_slice(&data);
                            *l = s.target.hard() as i64;
                            if soft_targets {
                                let row = &mut sf[j * k..(j + 1) * k];
                                match &s.target {
                                    Target::Class(c) if *c < k => row[*c] = 1.0,
                                    Target::Soft(d) if d.len() == k => row.copy_from_slice(d),
                                    t => {
                                        return Err(format!(
                                            "{}: {t:?} does not fit {k} classes",
                                            s.source
                                        ));
                                    }
                                }
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a decoding thread panicked".into())))
                .collect()
        });
        results.into_iter().collect::<std::result::Result<Vec<()>, _>>()?;
        let [n, pl, hh, ww] = [n, planes, h, w].map(|d| d as i64);
        Ok(ResidentTrain {
            images: upload(&bytes, &[n, pl, hh, ww], device),
            labels: upload(&labels, &[n], device),
            soft: soft_targets.then(|| upload(&soft, &[n, k as i64], device)),
            height: h,
            width: w,
            loader: loader.clone(),
            device,
        })
    }

    /// Bytes the resident images take on the device.
    pub fn bytes(&self) -> usize {
        self.images.numel()
    }

    /// Batches per epoch (the loader's count).
    pub fn batches(&self) -> usize {
        self.loader.len()
    }

    /// Draws the parameters of `epoch` (the loader's order and [`Augmenter::draw`] per
    /// sample) and uploads them with the order.
    pub fn epoch(&self, epoch: u64) -> ResidentEpoch {
        let plan = self.loader.plan(epoch);
        let aug = self.loader.augmenter();
        let mut params = Vec::with_capacity(plan.len() * PARAMS);
        let mut indices = Vec::with_capacity(plan.len());
        for (i, key) in &plan {
            indices.push(*i as i64);
            params.extend(param_row(&aug.draw(*key, self.width, self.height)));
        }
        let m = plan.len();
        ResidentEpoch {
            indices: upload(&indices, &[m as i64], self.device),
            params: upload(&params, &[m as i64, PARAMS as i64], self.device),
            samples: m,
            batches: self.loader.len(),
        }
    }

    /// Batch `b` of `epoch`: `(input [B, C, S, S], labels [B], soft targets)`.
    pub fn batch(&self, epoch: &ResidentEpoch, b: usize) -> Result<DeviceBatch> {
        let (start, n) = self.batch_range(epoch.samples, b);
        let idx = epoch.indices.narrow(0, start, n);
        let x = self.input(&idx, &epoch.params.narrow(0, start, n))?;
        let y = self.labels.index_select(0, &idx);
        let soft = self.soft.as_ref().map(|s| s.index_select(0, &idx));
        Ok((x, y, soft))
    }

    /// The device the images are on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Images in the dataset the resident images index (the training part and the rest).
    pub fn dataset_len(&self) -> usize {
        self.images.size()[0] as usize
    }

    /// The dataset indices `[B]` of batch `b` of `epoch` (on the device; a view, no copy).
    pub fn batch_indices(&self, epoch: &ResidentEpoch, b: usize) -> Tensor {
        let (start, n) = self.batch_range(epoch.samples, b);
        epoch.indices.narrow(0, start, n)
    }

    /// Every sample of `epoch` (a final partial batch included, whatever `drop_last`) in
    /// batches of the loader's size: `(dataset indices [B], input [B, C, S, S])`.
    pub fn all_samples<'a>(
        &'a self,
        epoch: &'a ResidentEpoch,
    ) -> impl Iterator<Item = Result<(Tensor, Tensor)>> + 'a {
        let bs = self.loader.config().batch_size;
        (0..epoch.samples.div_ceil(bs)).map(move |b| {
            let (start, n) = self.batch_range(epoch.samples, b);
            let idx = epoch.indices.narrow(0, start, n);
            let x = self.input(&idx, &epoch.params.narrow(0, start, n))?;
            Ok((idx, x))
        })
    }

    /// `(start, length)` of batch `b` among `samples`.
    fn batch_range(&self, samples: usize, b: usize) -> (i64, i64) {
        let bs = self.loader.config().batch_size;
        let start = b * bs;
        (start as i64, bs.min(samples - start) as i64)
    }

    /// Model input of the images `idx` augmented by parameter rows `params`.
    fn input(&self, idx: &Tensor, params: &Tensor) -> Result<Tensor> {
        augment(&self.images.index_select(0, idx), params, self.loader.augmenter())
    }
}

/// A sample's parameters as the device reads them: crop `x, y, w, h`, flip (0/1), angle in
/// radians, brightness, contrast, erase `y, x, h, w` (`h = 0`: nothing erased).
pub fn param_row(a: &AugParams) -> [f32; PARAMS] {
    let c = a.crop;
    let e = a.erase.map_or([0.0; 4], |e| [e.y, e.x, e.h, e.w].map(|v| v as f32));
    [
        c.x as f32,
        c.y as f32,
        c.w as f32,
        c.h as f32,
        if a.flip { 1.0 } else { 0.0 },
        a.angle_degrees.to_radians(),
        a.brightness,
        a.contrast,
        e[0],
        e[1],
        e[2],
        e[3],
    ]
}

fn torch_err(context: &str) -> impl FnOnce(tch::TchError) -> Error + '_ {
    move |source| Error::Torch { context: context.to_string(), source }
}

/// Makes model input `[B, C, S, S]` from source bytes `[B, P, H, W]` and parameter rows
/// `[B, 12]` (see the module doc for the steps).
pub fn augment(src: &Tensor, params: &Tensor, aug: &Augmenter) -> Result<Tensor> {
    let p = aug.preprocess();
    let x = pixel_ops(src, params, p, aug)?;
    normalize_erase(&x, params, p)
}

/// Steps 1–4 of the module doc: `[B, P, S, S]` float pixel values (whole gray levels).
fn pixel_ops(src: &Tensor, params: &Tensor, p: &Preprocess, aug: &Augmenter) -> Result<Tensor> {
    let cfg = aug.config();
    let (dev, s) = (src.device(), p.input_size as i64);
    let size = src.size();
    let (b, planes, h, w) = (size[0], size[1], size[2], size[3]);
    let f = (Kind::Float, dev);
    let col = |k: i64| params.select(1, k).view([b, 1]);
    let centres = (Tensor::arange(s, f) + 0.5).view([1, s]);
    // Loader's resize: source coordinate (i + 0.5) · crop / S - 0.5 within the crop, clamped
    // to its pixels (PIL renormalises the triangle there), offset by the crop's corner.
    let axis = |start: Tensor, len: Tensor| {
        let u = &centres * &len / s as f64 - 0.5;
        u.clamp_min(0.0).minimum(&(len - 1.0)) + start
    };
    let mut u = axis(col(0), col(2));
    let v = axis(col(1), col(3));
    if cfg.enabled {
        let flipped = u.flip([1]);
        u = u.where_self(&col(4).lt(0.5), &flipped);
    }
    let gx = ((u * 2.0 + 1.0) / w as f64 - 1.0).view([b, 1, s]).expand([b, s, s], false);
    let gy = ((v * 2.0 + 1.0) / h as f64 - 1.0).view([b, s, 1]).expand([b, s, s], false);
    let grid = Tensor::stack(&[gx, gy], 3);
    let mut x = src
        .to_kind(Kind::Float)
        .f_grid_sampler_2d(&grid, 0, 1, false)
        .map_err(torch_err("resizing on the device"))?;
    if cfg.enabled && cfg.rotate_degrees > 0.0 {
        let theta = col(5).view([b, 1, 1]);
        let (cos, sin) = (theta.cos(), theta.sin());
        let c = s as f64 / 2.0;
        let d = Tensor::arange(s, f) + (0.5 - c);
        let (dx, dy) = (d.view([1, 1, s]), d.view([1, s, 1]));
        let sx = &cos * &dx - &sin * &dy + (c - 0.5);
        let sy = &sin * &dx + &cos * &dy + (c - 0.5);
        let norm = |t: Tensor| (t * 2.0 + 1.0) / s as f64 - 1.0;
        let grid = Tensor::stack(&[norm(sx), norm(sy)], 3);
        let fill = f64::from(cfg.rotate_fill);
        x = (x - fill)
            .f_grid_sampler_2d(&grid, 0, 0, false)
            .map_err(torch_err("rotating on the device"))?
            + fill;
    }
    if cfg.enabled && (cfg.brightness > 0.0 || cfg.contrast > 0.0) {
        let factor = |k: i64| params.select(1, k).view([b, 1, 1, 1]);
        x = (x * factor(6)).clamp(0.0, 255.0);
        let mean = if planes == 3 {
            let luma = Tensor::from_slice(&[0.299f32, 0.587, 0.114]).to_device(dev);
            (&x * luma.view([1, 3, 1, 1])).sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
        } else {
            x.shallow_clone()
        }
        .mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float);
        let mean = if planes == 3 { mean } else { mean.view([b, 1, 1, 1]) };
        x = (&mean + factor(7) * (x - &mean)).clamp(0.0, 255.0);
    }
    Ok((x.clamp(0.0, 255.0) + 0.5).floor())
}

/// Step 5: `v · a[c] + b[c]` with channel `c` reading plane `min(c, P - 1)`, then the erased
/// rectangles of the parameter rows set to 0.
fn normalize_erase(x: &Tensor, params: &Tensor, p: &Preprocess) -> Result<Tensor> {
    let size = x.size();
    let (b, planes, s) = (size[0], size[1], size[2]);
    let c = p.channels() as i64;
    if planes > c {
        return Err(Error::Input(format!(
            "{planes} source planes do not fit a {c}-channel model input"
        )));
    }
    let x = if planes < c { x.expand([b, c, s, s], false) } else { x.shallow_clone() };
    let (scale, shift) = fer_data::preprocess::affine(p);
    let x = &x * channel_vec(&scale, &x) + channel_vec(&shift, &x);
    let col = |k: i64| params.select(1, k).view([b, 1, 1, 1]);
    let (y0, x0) = (col(8), col(9));
    let (y1, x1) = (&y0 + col(10), &x0 + col(11));
    let f = (Kind::Float, x.device());
    let ys = Tensor::arange(s, f).view([1, 1, s, 1]);
    let xs = Tensor::arange(s, f).view([1, 1, 1, s]);
    let inside = ys
        .ge_tensor(&y0)
        .logical_and(&ys.lt_tensor(&y1))
        .logical_and(&xs.ge_tensor(&x0))
        .logical_and(&xs.lt_tensor(&x1));
    Ok(x.masked_fill(&inside, 0.0).contiguous())
}

/// The validation split preprocessed once by its loader, on the device.
pub struct ResidentVal {
    /// `[N, C, S, S]` model input.
    pub input: Tensor,
    /// Labels in dataset order.
    pub labels: Vec<usize>,
    /// Images per forward pass.
    pub batch: usize,
}

impl ResidentVal {
    /// Runs the validation loader once and keeps its batches on `device`.
    pub fn build(loader: &Loader, device: Device) -> Result<Self> {
        let mut parts = Vec::new();
        let mut labels = Vec::new();
        for batch in loader.epoch(0) {
            let batch = batch.map_err(|source| Error::Data {
                context: "preprocessing the validation split".into(),
                source,
            })?;
            parts.push(super::pixels::input(&batch, loader.preprocess(), device)?);
            labels.extend(batch.labels.iter().map(|&l| l as usize));
            loader.recycle(batch);
        }
        let input = if parts.is_empty() {
            let [c, h, w] = loader.image_shape().map(|d| d as i64);
            Tensor::zeros([0, c, h, w], (Kind::Float, device))
        } else {
            Tensor::cat(&parts, 0)
        };
        Ok(ResidentVal { input, labels, batch: loader.config().batch_size })
    }

    /// Bytes the validation input takes on the device.
    pub fn bytes(&self) -> usize {
        self.input.numel() * 4
    }

    /// Bytes the validation input of `loader` would take.
    pub fn bytes_for(loader: &Loader) -> usize {
        let [c, h, w] = loader.image_shape();
        loader.dataset().len() * c * h * w * 4
    }
}
