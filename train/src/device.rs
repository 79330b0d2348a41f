//! Device selection, and making libtorch's CUDA half available to a binary linked `--as-needed`.

use std::sync::OnceLock;

/// Loads `libtorch_cuda.so` into the process (once) so that libtorch registers its CUDA backend.
///
/// rustc links with `--as-needed`, which drops `libtorch_cuda` because no symbol of it is
/// referenced directly; without this call `tch::Cuda::is_available()` is false even on a GPU
/// machine. On a machine without CUDA libraries the `dlopen` fails and nothing happens.
/// Returns whether the library was loaded.
pub fn load_cuda_backend() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        // SAFETY: dlopen with a valid NUL-terminated name; the handle is deliberately kept for
        // the life of the process (the library must stay loaded).
        let handle = unsafe {
            libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL)
        };
        !handle.is_null()
    })
}

/// Where tensors live: `auto` picks CUDA when it is available. Its names are declared once,
/// for configs (serde) and for `fer-train --device` (clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// CUDA when libtorch sees a GPU, else the CPU.
    Auto,
    /// The CPU (deterministic: the same config and seed give the same metrics).
    Cpu,
    /// CUDA device 0; an error when CUDA is not available.
    Cuda,
}

/// Resolves a [`DeviceChoice`] to a tch device.
pub fn resolve(choice: DeviceChoice) -> crate::Result<tch::Device> {
    load_cuda_backend();
    match choice {
        DeviceChoice::Cpu => Ok(tch::Device::Cpu),
        DeviceChoice::Auto => Ok(tch::Device::cuda_if_available()),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        DeviceChoice::Cuda => Err(crate::Error::NoCuda),
    }
}
