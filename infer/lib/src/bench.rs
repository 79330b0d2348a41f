//! Latency and throughput of a backend on synthetic input.

use std::time::Instant;

use ndarray::Array4;
use serde::Serialize;

use crate::backend::Backend;
use crate::error::{Error, Result};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchConfig {
    /// Images per forward pass.
    pub batch: usize,
    /// Timed forward passes.
    pub iters: usize,
    /// Untimed forward passes first (plan building, allocator and cache warm-up).
    pub warmup: usize,
}

/// Timings of one backend at one batch size (milliseconds per forward pass).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchResult {
    /// Backend name, for example `ort-cpu`.
    pub backend: String,
    /// Images per forward pass.
    pub batch: usize,
    /// Timed passes.
    pub iters: usize,
    /// Mean latency.
    pub mean_ms: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile latency.
    pub p90_ms: f64,
    /// Fastest pass.
    pub min_ms: f64,
    /// Images per second at the mean latency.
    pub images_per_s: f64,
}

/// Deterministic pseudo-random input in `[-2, 2)` (xorshift; the values do not matter for
/// timing, but zeros could take fast paths).
pub fn synthetic_input(shape: [usize; 4], seed: u64) -> Array4<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Array4::from_shape_simple_fn(shape, || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
    })
}

/// Times `backend` on a `[batch, C, H, W]` input of `chw`.
pub fn bench(backend: &mut dyn Backend, chw: [usize; 3], cfg: BenchConfig) -> Result<BenchResult> {
    if cfg.batch == 0 || cfg.iters == 0 {
        return Err(Error::invalid("bench", "batch and iterations must be at least 1"));
    }
    let input = synthetic_input([cfg.batch, chw[0], chw[1], chw[2]], 42);
    for _ in 0..cfg.warmup {
        backend.run(input.view())?;
    }
    let mut ms = Vec::with_capacity(cfg.iters);
    for _ in 0..cfg.iters {
        let t = Instant::now();
        let out = backend.run(input.view())?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(out);
    }
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    ms.sort_by(f64::total_cmp);
    Ok(BenchResult {
        backend: backend.name().to_string(),
        batch: cfg.batch,
        iters: cfg.iters,
        mean_ms: mean,
        p50_ms: percentile(&ms, 0.5),
        p90_ms: percentile(&ms, 0.9),
        min_ms: ms[0],
        images_per_s: cfg.batch as f64 / (mean / 1e3),
    })
}

/// Linear-interpolated percentile of sorted values (`q` in `[0, 1]`).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A markdown table of results.
pub fn markdown(results: &[BenchResult]) -> String {
    let mut s = String::from(
        "| backend | batch | mean ms | p50 ms | p90 ms | images/s |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        s += &format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
            r.backend, r.batch, r.mean_ms, r.p50_ms, r.p90_ms, r.images_per_s
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert!((percentile(&v, 0.9) - 4.6).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 0.9), 7.0);
    }

    #[test]
    fn synthetic_input_is_deterministic_and_bounded() {
        let a = synthetic_input([2, 3, 4, 4], 1);
        assert_eq!(a, synthetic_input([2, 3, 4, 4], 1));
        assert!(a.iter().all(|v| (-2.0..2.0).contains(v)));
        assert!(a.iter().any(|v| *v != a[[0, 0, 0, 0]]));
    }
}
