//! Runtimes: one generic [`Runner`] per runtime, ONNX Runtime ([`ort`](self::ort)) and tract
//! ([`tract`](self::tract)), built by [`open_runner`] for any ONNX graph; the classifier
//! ([`Classifier`], behind the small [`Backend`] trait) and the face detector
//! ([`crate::face::BlazeFace`]) are built on it, so both honour the runtime, the execution
//! provider and the threads the user chose.

pub mod classifier;
pub mod ort;
pub mod runner;
#[cfg(feature = "tract")]
pub mod tract;

pub use classifier::Classifier;
pub use runner::{Runner, Signature};

use ndarray::{Array2, ArrayView4};

use crate::error::{Error, Result};
use crate::onnx_file::OnnxFile;

/// What one forward pass returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// `[N, num_classes]` raw scores.
    pub logits: Array2<f32>,
    /// `[N, features]` pooled features, when the model exports them.
    pub embedding: Option<Array2<f32>>,
}

/// A loaded model in one runtime.
pub trait Backend: Send {
    /// Runtime and device, for example `ort-cpu`, `ort-cuda` or `tract`.
    fn name(&self) -> &str;
    /// Runs a normalised `[N, C, H, W]` batch.
    fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Outputs>;
}

/// Which runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BackendKind {
    /// ONNX Runtime (the shared library found as described in `backend::ort`); CPU or CUDA.
    Ort,
    /// tract: pure Rust, CPU only, nothing to install.
    Tract,
}

impl BackendKind {
    /// Whether this build has the runtime (cargo features `ort` and `tract`, both default).
    pub fn built(self) -> bool {
        match self {
            BackendKind::Ort => cfg!(feature = "ort"),
            BackendKind::Tract => cfg!(feature = "tract"),
        }
    }
}

/// Where ONNX Runtime runs the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ExecutionProvider {
    /// The CPU provider.
    #[default]
    Cpu,
    /// The CUDA provider; an error (not a CPU fallback) when it cannot be used.
    Cuda,
    /// CUDA when it can be used, else CPU; the provider that runs is logged.
    Auto,
}

impl ExecutionProvider {
    /// Lowercase name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::Auto => "auto",
        }
    }
}

/// How to build a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    /// Which runtime.
    pub kind: BackendKind,
    /// ONNX Runtime's execution provider (ignored by tract, which runs on the CPU).
    pub ep: ExecutionProvider,
    /// Threads for one operator (ONNX Runtime's intra-op pool, tract's matrix products);
    /// `None`: ONNX Runtime's default (one per physical core), tract single-threaded.
    pub threads: Option<usize>,
}

impl BackendOptions {
    /// ONNX Runtime on the CPU with default threads.
    pub fn ort_cpu() -> Self {
        BackendOptions { kind: BackendKind::Ort, ep: ExecutionProvider::Cpu, threads: None }
    }

    /// tract with default threads.
    pub fn tract() -> Self {
        BackendOptions { kind: BackendKind::Tract, ep: ExecutionProvider::Cpu, threads: None }
    }

    /// Same options with `threads` intra-op threads.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }
}

/// Builds the classifier `opts` describes for `file`.
pub fn open(file: &OnnxFile, opts: &BackendOptions) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Classifier::open(file, opts)?))
}

/// Builds the runner `opts` describes for `file`, fed and read as `sig` says: the one place
/// where the runtime, the execution provider (`Cuda` never falls back; `Auto` falls back to
/// the CPU and says so once) and the threads are applied, for every model.
pub fn open_runner(
    file: &OnnxFile,
    sig: Signature,
    opts: &BackendOptions,
) -> Result<Box<dyn Runner>> {
    if opts.threads == Some(0) {
        return Err(Error::invalid("--threads", "must be at least 1"));
    }
    if opts.kind == BackendKind::Tract && opts.ep == ExecutionProvider::Cuda {
        return Err(Error::ExecutionProvider {
            ep: "cuda".into(),
            msg: "tract runs on the CPU only; use --backend ort for CUDA".into(),
        });
    }
    match opts.kind {
        #[cfg(feature = "ort")]
        BackendKind::Ort => {
            Ok(Box::new(self::ort::OrtRunner::new(file, sig, opts.ep, opts.threads)?))
        }
        #[cfg(feature = "tract")]
        BackendKind::Tract => Ok(Box::new(self::tract::TractRunner::new(file, sig, opts.threads)?)),
        #[allow(unreachable_patterns)]
        kind => {
            let _ = sig;
            Err(Error::NotBuilt { runtime: kind })
        }
    }
}

/// Checks a batch against the declared input shape before a runtime sees it.
pub(crate) fn check_input(file: &OnnxFile, shape: &[usize]) -> Result<()> {
    let ok = shape.len() == 4
        && shape[0] > 0
        && (1..4).all(|i| file.input.fixed(i).is_none_or(|n| n == shape[i]))
        && file.input.fixed(0).is_none_or(|n| n == shape[0]);
    if ok {
        Ok(())
    } else {
        Err(Error::InputShape { expected: file.input.shape_text(), got: shape.to_vec() })
    }
}

/// Turns a flat output into `[N, K]`, checking its shape.
pub(crate) fn to_2d(name: &str, shape: &[usize], data: Vec<f32>, n: usize) -> Result<Array2<f32>> {
    // Accept [N, K] and [N, K, 1, 1] (a classifier that forgot to flatten).
    let k = match shape {
        [b, k] if *b == n => *k,
        [b, k, rest @ ..] if *b == n && rest.iter().all(|d| *d == 1) => *k,
        _ => {
            return Err(Error::Output {
                name: name.into(),
                msg: format!("shape {shape:?}, expected [{n}, classes]"),
            });
        }
    };
    Array2::from_shape_vec((n, k), data)
        .map_err(|e| Error::Output { name: name.into(), msg: e.to_string() })
}
