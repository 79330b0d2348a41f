//! Temperature scaling (Guo et al. 2017): one scalar `T > 0` fitted on a held-out set by
//! minimising the NLL of `softmax(logits / T)`, stored in the ONNX file's metadata.
//!
//! The temperature lives in `metadata_props` (`fer.temperature`); the graph is not changed
//! and its `logits` output stays raw. Everything that turns logits into probabilities
//! (`predict`, `eval`, the webcam demo) divides by it. Dividing by `T` never changes the
//! arg-max, so accuracy is unchanged.
//!
//! The fit: logits are computed once; the NLL is convex in `1/T`, hence unimodal in
//! `log T`, and a golden-section search over `log T ∈ [log 0.01, log 100]` finds its minimum
//! to a relative precision of about `1e-7` in `T`. If the minimum were not below the NLL at
//! `T = 1`, `T = 1` is kept, so calibration never raises the NLL on the fitting set.

use std::path::Path;

use prost::Message;
use tract_onnx::pb;

use crate::error::{Error, Result};

/// The metadata key holding the temperature (named by the one metadata codec,
/// [`fer_models_spec::meta::props`]).
pub const TEMPERATURE_KEY: &str = fer_models_spec::meta::keys::TEMPERATURE;

/// Search interval of `T`.
pub const T_RANGE: (f64, f64) = (0.01, 100.0);

/// The result of a temperature fit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TemperatureFit {
    /// The fitted temperature.
    pub temperature: f64,
    /// NLL of the fitting set at `T = 1`.
    pub nll_t1: f64,
    /// NLL at the fitted temperature (never above `nll_t1`).
    pub nll: f64,
    /// Golden-section iterations used.
    pub iterations: usize,
}

/// Mean NLL of `labels` under `softmax(logits / t)`; `logits` is `[N, k]` row-major.
pub fn nll_at(logits: &[f32], labels: &[usize], k: usize, t: f64) -> f64 {
    let mut sum = 0.0;
    for (row, &l) in logits.chunks_exact(k).zip(labels) {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v as f64)) / t;
        let lse = row.iter().map(|v| (*v as f64 / t - max).exp()).sum::<f64>().ln() + max;
        sum += lse - row[l] as f64 / t;
    }
    sum / labels.len() as f64
}

/// Fits `T` on `logits` (`[N, k]`) and `labels` (in `0..k`).
pub fn fit_temperature(logits: &[f32], labels: &[usize], k: usize) -> Result<TemperatureFit> {
    if labels.is_empty() || k == 0 || logits.len() != labels.len() * k {
        return Err(Error::invalid(
            "calibration set",
            format!("{} logits for {} labels and {k} classes", logits.len(), labels.len()),
        ));
    }
    if let Some(l) = labels.iter().find(|l| **l >= k) {
        return Err(Error::invalid("calibration set", format!("label {l} outside 0..{k}")));
    }
    if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "calibration set",
            format!("logit {} of sample {} is {}", i % k, i / k, logits[i]),
        ));
    }
    let f = |u: f64| nll_at(logits, labels, k, u.exp());
    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (T_RANGE.0.ln(), T_RANGE.1.ln());
    let mut c = b - inv_phi * (b - a);
    let mut d = a + inv_phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    let mut iterations = 0;
    while b - a > 1e-7 && iterations < 200 {
        if fc <= fd {
            (b, d, fd) = (d, c, fc);
            c = b - inv_phi * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + inv_phi * (b - a);
            fd = f(d);
        }
        iterations += 1;
    }
    let u = (a + b) / 2.0;
    let (t, nll) = (u.exp(), f(u));
    let nll_t1 = f(0.0);
    let (temperature, nll) = if nll <= nll_t1 { (t, nll) } else { (1.0, nll_t1) };
    Ok(TemperatureFit { temperature, nll_t1, nll, iterations })
}

/// Resamples of the hold-out behind [`temperature_interval`].
pub const BOOTSTRAP_ROUNDS: usize = 200;
/// Hold-outs smaller than this get [`holdout_warning`]'s warning whatever their interval.
pub const MIN_HOLDOUT: usize = 1000;
/// The widest 95 % interval of `T` taken to carry over to new data: ±10 % of `T`.
pub const MAX_T_SPREAD: f64 = 0.1;

/// 95 % percentile-bootstrap interval of the fitted temperature: the rows of `logits` and
/// `labels` resampled with replacement [`BOOTSTRAP_ROUNDS`] times (seeded), `T` refitted on
/// each. It says how far a fit on another hold-out of the same size could land.
pub fn temperature_interval(
    logits: &[f32],
    labels: &[usize],
    k: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    // Checked once here; a resample of valid rows is valid, so the fits below cannot fail.
    fit_temperature(logits, labels, k)?;
    let refit = |l: &[f32], y: &[usize], k: usize| {
        Ok(fit_temperature(l, y, k).map_or(f64::NAN, |f| f.temperature))
    };
    fer_metrics::bootstrap_ci(logits, labels, k, BOOTSTRAP_ROUNDS, seed, refit)
        .map_err(|source| Error::Metrics { what: "bootstrap of the temperature".into(), source })
}

/// Why a temperature `t` fitted on `n` samples, with 95 % interval `ci`, may not carry over to
/// new data: fewer than [`MIN_HOLDOUT`] samples, or an interval wider than ±[`MAX_T_SPREAD`]
/// of `t`. `None` when neither holds.
pub fn holdout_warning(n: usize, t: f64, ci: (f64, f64)) -> Option<String> {
    let spread = (ci.1 - ci.0) / 2.0 / t;
    let why = match (n < MIN_HOLDOUT, spread > MAX_T_SPREAD) {
        (false, false) => return None,
        (true, false) => format!("the hold-out has {n} samples (fewer than {MIN_HOLDOUT})"),
        (small, true) => format!(
            "T's 95 % interval {:.3}–{:.3} spans ±{:.0} % of T on {n} samples{}",
            ci.0,
            ci.1,
            spread * 100.0,
            if small { format!(" (fewer than {MIN_HOLDOUT})") } else { String::new() }
        ),
    };
    Some(format!(
        "{why}: a temperature fitted on so few samples may not carry over to new data; hold out \
         more (data.calib_fraction when training) and calibrate again"
    ))
}

/// A copy of the ONNX bytes with `fer.temperature` set to `t`, encoded by the metadata codec
/// ([`fer_models_spec::meta::temperature_prop`]).
///
/// Only the `metadata_props` entry of that key is re-encoded; every other top-level field of
/// the `ModelProto` is copied byte for byte (unknown fields included), so the graph, the
/// weights and the other metadata are untouched. The key is appended when missing.
pub fn with_temperature(path: &Path, bytes: &[u8], t: f64) -> Result<Vec<u8>> {
    if !(t > 0.0 && t.is_finite()) {
        return Err(Error::invalid("temperature", format!("{t} is not positive and finite")));
    }
    let bad = |msg: String| Error::Model { path: path.to_path_buf(), msg };
    let (key, value) = fer_models_spec::meta::temperature_prop(t);
    let entry = pb::StringStringEntryProto { key: key.into(), value };
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut pos = 0;
    let mut replaced = false;
    while pos < bytes.len() {
        let start = pos;
        let key = varint(bytes, &mut pos).ok_or_else(|| bad(format!("bad tag at byte {start}")))?;
        let (field, wire) = (key >> 3, key & 7);
        let payload = pos;
        match wire {
            0 => {
                varint(bytes, &mut pos).ok_or_else(|| bad(format!("bad varint at {payload}")))?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = varint(bytes, &mut pos)
                    .ok_or_else(|| bad(format!("bad length at byte {payload}")))?;
                pos = pos.checked_add(len as usize).ok_or_else(|| bad("length overflow".into()))?;
            }
            w => return Err(bad(format!("unsupported protobuf wire type {w} at byte {start}"))),
        }
        if pos > bytes.len() {
            return Err(bad(format!("field {field} at byte {start} runs past the end")));
        }
        if field == 14 && wire == 2 {
            let mut p = payload;
            let len = varint(bytes, &mut p).unwrap_or(0) as usize;
            let e = pb::StringStringEntryProto::decode(&bytes[p..p + len])
                .map_err(|source| Error::NotOnnx { path: path.to_path_buf(), source })?;
            if e.key == TEMPERATURE_KEY {
                if !replaced {
                    push_entry(&mut out, &entry);
                }
                replaced = true;
                continue;
            }
        }
        out.extend_from_slice(&bytes[start..pos]);
    }
    if !replaced {
        push_entry(&mut out, &entry);
    }
    crate::onnx_file::decode_proto(path, &out)?;
    Ok(out)
}

fn push_entry(out: &mut Vec<u8>, e: &pb::StringStringEntryProto) {
    let body = e.encode_to_vec();
    prost::encoding::encode_key(14, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(&body);
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_the_temperature_of_tempered_labels() {
        // Labels drawn from softmax(z / 2.5) make T ≈ 2.5 the NLL minimiser.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (n, k) = (4000, 5);
        let logits: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-6.0..6.0)).collect();
        let probs = fer_metrics::softmax(&logits, k, 2.5);
        let labels: Vec<usize> = probs
            .chunks(k)
            .map(|p| {
                let mut u: f32 = rng.r#gen();
                p.iter()
                    .position(|q| {
                        u -= q;
                        u < 0.0
                    })
                    .unwrap_or(k - 1)
            })
            .collect();
        let fit = fit_temperature(&logits, &labels, k).unwrap();
        assert!((fit.temperature - 2.5).abs() < 0.2, "{fit:?}");
        assert!(fit.nll <= fit.nll_t1);
        // A minimum: nudging T either way does not lower the NLL.
        for s in [0.98, 1.02] {
            assert!(nll_at(&logits, &labels, k, fit.temperature * s) >= fit.nll - 1e-12);
        }
    }

    #[test]
    fn the_temperature_interval_narrows_with_the_hold_out_and_small_ones_are_warned() {
        // Logits of a 4-class model whose labels follow softmax(logits / 2), drawn by a fixed
        // inverse-CDF walk so the test is deterministic.
        let k = 4;
        let set = |n: usize| {
            let mut logits = Vec::with_capacity(n * k);
            let mut labels = Vec::with_capacity(n);
            for i in 0..n {
                let row: Vec<f32> =
                    (0..k).map(|c| ((i * 7 + c * 13) % 11) as f32 * 0.6 - 3.0).collect();
                let p = fer_metrics::softmax(&row, k, 2.0);
                let u = ((i as f64 * 0.618_033_988_75) % 1.0) as f32;
                let mut acc = 0.0;
                let label = (0..k).find(|&c| {
                    acc += p[c];
                    u < acc
                });
                labels.push(label.unwrap_or(k - 1));
                logits.extend(row);
            }
            (logits, labels)
        };
        let (small_l, small_y) = set(150);
        let (big_l, big_y) = set(6000);
        let small = temperature_interval(&small_l, &small_y, k, 0).unwrap();
        let big = temperature_interval(&big_l, &big_y, k, 0).unwrap();
        let t_big = fit_temperature(&big_l, &big_y, k).unwrap().temperature;
        assert!(big.0 <= t_big && t_big <= big.1, "{big:?} holds the fit {t_big}");
        assert!((big.0..=big.1).contains(&2.0) || (t_big - 2.0).abs() < 0.2, "{big:?}");
        assert!(small.1 - small.0 > 2.0 * (big.1 - big.0), "{small:?} vs {big:?}");
        let t_small = fit_temperature(&small_l, &small_y, k).unwrap().temperature;
        let w = holdout_warning(150, t_small, small).expect("150 samples are warned");
        assert!(w.contains("150 samples") && w.contains("calib_fraction"), "{w}");
        assert_eq!(holdout_warning(6000, t_big, big), None, "{big:?}");
        assert!(holdout_warning(6000, 2.0, (1.5, 2.5)).unwrap().contains("±25 %"));
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(fit_temperature(&[], &[], 3).is_err());
        assert!(fit_temperature(&[1.0, 2.0], &[2], 2).is_err());
        assert!(fit_temperature(&[f32::NAN, 2.0], &[0], 2).is_err());
        assert!(with_temperature("m.onnx".as_ref(), &[], 0.0).is_err());
    }

    #[test]
    fn temperature_is_replaced_or_appended_and_the_rest_kept() {
        let mut m =
            pb::ModelProto { ir_version: 8, producer_name: "x".into(), ..Default::default() };
        m.metadata_props.push(pb::StringStringEntryProto { key: "a".into(), value: "1".into() });
        let plain = m.encode_to_vec();
        let out = with_temperature("m.onnx".as_ref(), &plain, 1.5).unwrap();
        let back = pb::ModelProto::decode(out.as_slice()).unwrap();
        assert_eq!(back.metadata_props.len(), 2);
        assert_eq!(back.metadata_props[1].value, "1.5");
        assert!(out.starts_with(&plain), "other fields are copied byte for byte");
        let again = with_temperature("m.onnx".as_ref(), &out, 0.75).unwrap();
        let back = pb::ModelProto::decode(again.as_slice()).unwrap();
        assert_eq!(back.metadata_props.len(), 2);
        assert_eq!(back.metadata_props[1].value, "0.75");
        assert_eq!(back.producer_name, "x");
    }
}
