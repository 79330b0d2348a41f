//! The end of the preprocessing on the device: 8-bit pixel batches
//! ([`fer_data::pixels::PixelBatch`]) become the model input where the model runs.

use fer_data::loader::{Batch, Images};
use fer_data::pixels::PixelBatch;
use fer_models_spec::Preprocess;
use tch::{Device, Kind, Tensor};

use super::teacher::channel_vec;
use crate::error::{Error, Result};
use crate::extras::upload;

/// A batch's model input `[N, C, H, W]` float32 on `device`: uploaded as it is, or, for pixel
/// batches, uploaded as bytes and normalised there ([`normalize`]).
pub(crate) fn input(b: &Batch, p: &Preprocess, device: Device) -> Result<Tensor> {
    let [n, c, h, w] = b.shape.map(|d| d as i64);
    match &b.images {
        Images::Normalized(v) => Ok(upload(v, &[n, c, h, w], device)),
        Images::Pixels(px) => normalize(px, p, device),
    }
}

/// [`PixelBatch::normalize`] on `device`: the bytes cross as `[N, P, S, S]`, then
/// `v · a[c] + b[c]` with channel `c` reading plane `min(c, P - 1)`, then the erased
/// rectangles are set to 0. The same float operations as the host reference, in the same
/// order.
pub fn normalize(px: &PixelBatch, p: &Preprocess, device: Device) -> Result<Tensor> {
    px.check_fits(p)
        .map_err(|source| Error::Data { context: "a training batch".into(), source })?;
    let (n, planes, s, c) =
        (px.len() as i64, px.planes as i64, px.size as i64, p.channels() as i64);
    let bytes = upload(&px.data, &[n, planes, s, s], device);
    let mut x = bytes.to_kind(Kind::Float);
    if planes < c {
        x = x.expand([n, c, s, s], false);
    }
    let (scale, shift) = fer_data::preprocess::affine(p);
    let (a, b) = (channel_vec(&scale, &x), channel_vec(&shift, &x));
    let x = x * a + b;
    if px.erase.iter().all(Option::is_none) {
        return Ok(x);
    }
    let rows = upload(&px.erase_rows(), &[n, 4], device);
    let col = |k: i64| rows.select(1, k).view([n, 1, 1, 1]);
    let (y0, x0) = (col(0), col(1));
    let (y1, x1) = (&y0 + col(2), &x0 + col(3));
    let ys = Tensor::arange(s, (Kind::Int64, device)).view([1, 1, s, 1]);
    let xs = Tensor::arange(s, (Kind::Int64, device)).view([1, 1, 1, s]);
    let inside = ys
        .ge_tensor(&y0)
        .logical_and(&ys.lt_tensor(&y1))
        .logical_and(&xs.ge_tensor(&x0))
        .logical_and(&xs.lt_tensor(&x1));
    Ok(x.masked_fill(&inside, 0.0))
}
