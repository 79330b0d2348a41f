//! Mixed precision on CUDA: autocast regions with an explicit dtype (through the C++ shim in
//! `csrc/extras.cpp`) and a dynamic loss scaler for float16, with the update rules of
//! `torch.amp.GradScaler` (initial scale 2¹⁶, ×2 after 2,000 finite steps, ×½ and the step
//! skipped on an overflow).

use tch::Tensor;

use crate::config::Precision;
use crate::error::Result;

use crate::extras::{check, fer_amp_enabled, fer_amp_enter, fer_amp_exit, fer_amp_set_enabled};

/// Runs `f` with CUDA autocast to the reduced dtype of `precision`; for `Fp32`, runs `f` as is.
/// Ops on CPU tensors are not affected (autocast here is for the CUDA device type only).
pub fn autocast<T>(precision: Precision, f: impl FnOnce() -> T) -> Result<T> {
    let dtype = match precision {
        Precision::Fp32 => return Ok(f()),
        Precision::Bf16 => 0,
        Precision::Fp16 => 1,
    };
    // SAFETY: the shim takes an int and catches every C++ exception.
    check(unsafe { fer_amp_enter(dtype) }, "enabling CUDA autocast")?;
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            // SAFETY: as above; leaving a region entered just before.
            let _ = unsafe { fer_amp_exit() };
        }
    }
    let _exit = Exit;
    Ok(f())
}

/// Runs `f` with CUDA autocast off (inside an autocast region: ops compute in the dtype of their
/// inputs), then restores the previous state. The losses use it to stay in float32.
pub fn without_autocast<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: an int argument; exceptions are caught in the shim (-1: leave the state alone).
    let prev = unsafe { fer_amp_set_enabled(0) };
    struct Restore(i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            if self.0 == 1 {
                // SAFETY: as above.
                let _ = unsafe { fer_amp_set_enabled(1) };
            }
        }
    }
    let _restore = Restore(prev);
    f()
}

/// Whether CUDA autocast is currently on.
pub fn autocast_enabled() -> bool {
    // SAFETY: a query without arguments; exceptions are caught in the shim.
    unsafe { fer_amp_enabled() == 1 }
}

/// Dynamic loss scaling for float16 training.
#[derive(Debug, Clone)]
pub struct LossScaler {
    /// The current scale.
    pub scale: f64,
    good_steps: u32,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler { scale: 65536.0, good_steps: 0 }
    }
}

impl LossScaler {
    /// Finite steps after which the scale doubles.
    pub const GROWTH_INTERVAL: u32 = 2000;

    /// `loss × scale`.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides the gradients by the scale and reports whether all are finite (one host read).
    /// On an overflow the scale halves and the caller skips the update.
    pub fn unscale(&mut self, grads: &[Tensor]) -> bool {
        let inv = 1.0 / self.scale;
        let finite = tch::no_grad(|| {
            let mut flags = Vec::with_capacity(grads.len());
            for g in grads.iter().filter(|g| g.defined()) {
                let _ = g.shallow_clone().g_mul_scalar_(inv);
                flags.push(g.isfinite().all());
            }
            flags.is_empty() || Tensor::stack(&flags, 0).all().int64_value(&[]) != 0
        });
        if finite {
            self.good_steps += 1;
            if self.good_steps >= Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale /= 2.0;
            self.good_steps = 0;
        }
        finite
    }
}
