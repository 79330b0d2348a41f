//! Safe wrappers over `csrc/extras.cpp`: libtorch functions that tch 0.24 does not bind (the
//! fused SGD step and channels-last layout here; CUDA autocast in [`crate::amp`]).

use std::ffi::{CStr, c_char, c_void};

use tch::Tensor;

use crate::error::{Error, Result};

unsafe extern "C" {
    fn fer_last_error() -> *const c_char;
    pub(crate) fn fer_amp_enter(dtype: i32) -> i32;
    pub(crate) fn fer_amp_exit() -> i32;
    pub(crate) fn fer_amp_enabled() -> i32;
    pub(crate) fn fer_amp_set_enabled(enabled: i32) -> i32;
    fn fer_fused_sgd(
        params: *mut *mut c_void,
        grads: *mut *mut c_void,
        bufs: *mut *mut c_void,
        n: i32,
        weight_decay: f64,
        momentum: f64,
        lr: f64,
        nesterov: i32,
        first: i32,
    ) -> i32;
    fn fer_fused_sgd_tensor_lr(
        params: *mut *mut c_void,
        grads: *mut *mut c_void,
        bufs: *mut *mut c_void,
        n: i32,
        weight_decay: f64,
        momentum: f64,
        lr: *mut c_void,
        nesterov: i32,
        first: i32,
    ) -> i32;
    fn fer_foreach_lerp_(
        self_: *mut *mut c_void,
        ends: *mut *mut c_void,
        n: i32,
        weight: f64,
    ) -> i32;
    fn fer_channels_last_(t: *mut c_void) -> i32;
    fn fer_set_deterministic_cudnn(on: i32) -> i32;
    fn fer_is_channels_last(t: *mut c_void) -> i32;
    fn fer_empty_pinned(dims: *const i64, ndim: i32, kind: i32) -> *mut c_void;
}

/// The first non-blank line of the shim's last message (libtorch's messages go on with a
/// backtrace), for the calling thread.
pub(crate) fn last_error_line() -> String {
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated message.
    let msg = unsafe { CStr::from_ptr(fer_last_error()) }.to_string_lossy().into_owned();
    msg.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown error").to_string()
}

/// Turns a shim return code into a result carrying libtorch's message.
pub(crate) fn check(rc: i32, what: &str) -> Result<()> {
    if rc == 0 {
        return Ok(());
    }
    Err(Error::Input(format!("{what}: {}", last_error_line())))
}

/// tch's tensor handles, as the shim takes them.
pub(crate) fn handles(ts: &[Tensor]) -> Vec<*mut c_void> {
    ts.iter().map(|t| t.as_ptr() as *mut c_void).collect()
}

/// Chooses deterministic cuDNN algorithms only (`torch.backends.cudnn.deterministic`), for the
/// whole process.
pub fn set_deterministic_cudnn(on: bool) -> Result<()> {
    // SAFETY: a plain call; the shim catches every C++ exception.
    check(unsafe { fer_set_deterministic_cudnn(i32::from(on)) }, "setting cuDNN's determinism")
}

/// A learning rate: a host value, or a one-element tensor on the device (read by the kernel,
/// so a captured graph follows the schedule when the tensor is rewritten).
#[derive(Debug, Clone, Copy)]
pub enum Lr<'a> {
    /// Fixed at the call.
    Value(f64),
    /// Read from the tensor when the kernel runs.
    Tensor(&'a Tensor),
}

/// One fused SGD update (libtorch's `_fused_sgd_`, one kernel launch for all tensors on CUDA):
/// `params`, `grads` and `bufs` in the same order and on one device. `first` initialises the
/// momentum buffers from the gradients, as `torch.optim.SGD` does on its first step.
#[allow(clippy::too_many_arguments)]
pub fn fused_sgd(
    params: &[Tensor],
    grads: &[Tensor],
    bufs: &[Tensor],
    weight_decay: f64,
    momentum: f64,
    lr: Lr,
    nesterov: bool,
    first: bool,
) -> Result<()> {
    assert!(params.len() == grads.len() && (momentum == 0.0 || params.len() == bufs.len()));
    if params.is_empty() {
        return Ok(());
    }
    let (mut p, mut g, mut b) = (handles(params), handles(grads), handles(bufs));
    let (n, nesterov, first) = (params.len() as i32, i32::from(nesterov), i32::from(first));
    let (p, g, b) = (p.as_mut_ptr(), g.as_mut_ptr(), b.as_mut_ptr());
    // SAFETY: arrays of live tch handles (kept alive by the slices) with the stated length; the
    // learning-rate tensor is a live handle too.
    let rc = unsafe {
        match lr {
            Lr::Value(lr) => fer_fused_sgd(p, g, b, n, weight_decay, momentum, lr, nesterov, first),
            Lr::Tensor(t) => {
                let t = t.as_ptr() as *mut c_void;
                fer_fused_sgd_tensor_lr(p, g, b, n, weight_decay, momentum, t, nesterov, first)
            }
        }
    };
    check(rc, "fused SGD step")
}

/// `targets[i] += weight · (sources[i] − targets[i])` in place for every pair (libtorch's
/// `_foreach_lerp_`: a few multi-tensor kernel launches on CUDA, whatever the number of tensors).
/// The pairs must match in shape, dtype and device.
pub fn foreach_lerp_(targets: &[Tensor], sources: &[Tensor], weight: f64) -> Result<()> {
    assert_eq!(targets.len(), sources.len(), "foreach_lerp_: unpaired tensors");
    if targets.is_empty() {
        return Ok(());
    }
    let (mut t, mut s) = (handles(targets), handles(sources));
    // SAFETY: arrays of live tch handles of the stated length, kept alive by the slices.
    let rc = unsafe { fer_foreach_lerp_(t.as_mut_ptr(), s.as_mut_ptr(), t.len() as i32, weight) };
    check(rc, "weight average update")
}

/// Re-lays `t` (4-d) out as channels-last in place; the handle, and a variable's identity for
/// autograd and the optimizer, stay the same.
pub fn channels_last_(t: &Tensor) -> Result<()> {
    // SAFETY: a live handle.
    check(unsafe { fer_channels_last_(t.as_ptr() as *mut c_void) }, "channels-last conversion")
}

/// Whether `t` is laid out channels-last.
pub fn is_channels_last(t: &Tensor) -> bool {
    // SAFETY: a live handle; the query catches its exceptions.
    unsafe { fer_is_channels_last(t.as_ptr() as *mut c_void) == 1 }
}

/// Copies `data` to `device` with the given shape. For CUDA the data goes through a pinned
/// buffer from libtorch's caching host allocator and a non-blocking copy, so the host does not
/// wait for the GPU to finish earlier work; anywhere else (or when pinning fails) it is a plain
/// copy.
pub fn upload<T: PinnedElement>(data: &[T], shape: &[i64], device: tch::Device) -> Tensor {
    if device.is_cuda() {
        // SAFETY: dims outlives the call; a non-null result is a new owned tensor handle.
        let ptr = unsafe { fer_empty_pinned(shape.as_ptr(), shape.len() as i32, T::CODE) };
        if !ptr.is_null() {
            // SAFETY: `ptr` is a fresh at::Tensor* that we now own.
            let host = unsafe { Tensor::from_ptr(ptr as *mut torch_sys::C_tensor) };
            assert_eq!(host.numel(), data.len(), "upload: shape does not match the data");
            // SAFETY: the pinned tensor is contiguous with exactly `data.len()` elements of T.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), host.data_ptr() as *mut T, data.len())
            };
            return host.to_device_(device, <T as tch::kind::Element>::KIND, true, false);
        }
    }
    Tensor::from_slice(data).view(shape).to_device(device)
}

/// Element types [`upload`] can pin.
pub trait PinnedElement: tch::kind::Element + Copy {
    /// The shim's kind code.
    const CODE: i32;
}

impl PinnedElement for f32 {
    const CODE: i32 = 0;
}

impl PinnedElement for i64 {
    const CODE: i32 = 1;
}

impl PinnedElement for u8 {
    const CODE: i32 = 2;
}
