//! The ONNX Runtime runner (cargo feature `ort`): the process-wide environment and one session
//! per model on the execution provider asked for.

use std::path::PathBuf;
use std::sync::Mutex;

use ndarray::{ArrayD, ArrayViewD};
use ort::environment::Environment;
use ort::ep::{CUDA, ExecutionProvider as _};
use ort::session::Session;
use ort::value::TensorRef;

use super::{DYLIB_ENV, find_library};
use crate::backend::{ExecutionProvider, Runner, Signature};
use crate::error::{Error, Result};
use crate::onnx_file::OnnxFile;

/// The process-wide environment and the library it was loaded from.
static ENV: Mutex<Option<(Environment, PathBuf)>> = Mutex::new(None);

/// Loads the library (once per process) and returns the shared environment.
pub fn environment() -> Result<Environment> {
    let mut guard = ENV.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((env, _)) = guard.as_ref() {
        return Ok(env.clone());
    }
    let path = find_library()?;
    let builder = ort::init_from(&path).map_err(|e| Error::OrtLibrary {
        msg: format!(
            "cannot load {}: {e}; run scripts/setup.sh or set {DYLIB_ENV}",
            path.display()
        ),
    })?;
    let env = builder
        .with_name("fer-infer")
        .build()
        .map_err(|e| Error::ort(format!("creating the environment from {}", path.display()), e))?;
    tracing::debug!(library = %path.display(), "loaded ONNX Runtime");
    *guard = Some((env.clone(), path));
    Ok(env)
}

/// A session of ONNX Runtime on one execution provider, for any graph.
pub struct OrtRunner {
    session: Session,
    name: String,
    sig: Signature,
    path: PathBuf,
}

impl OrtRunner {
    /// Builds a session for `file` on `ep` with `threads` intra-op threads (ONNX Runtime's
    /// default when `None`), fed and read as `sig` says. `Cuda` fails when the CUDA provider
    /// cannot be registered; `Auto` tries CUDA, then the CPU, and says once per process why
    /// CUDA was not used.
    pub fn new(
        file: &OnnxFile,
        sig: Signature,
        ep: ExecutionProvider,
        threads: Option<usize>,
    ) -> Result<Self> {
        sig.check(file)?;
        let env = environment()?;
        let what = |dev: &str| format!("creating a {dev} session for {}", file.path.display());
        let (session, dev) = match ep {
            ExecutionProvider::Cpu => {
                (session(&env, file, threads, false).map_err(|e| e.at(what("CPU")))?, "cpu")
            }
            ExecutionProvider::Cuda => match session(&env, file, threads, true) {
                Ok(s) => (s, "cuda"),
                Err(e) => return Err(e.cuda()),
            },
            ExecutionProvider::Auto => match session(&env, file, threads, true) {
                Ok(s) => (s, "cuda"),
                Err(e) => {
                    static SAID: std::sync::Once = std::sync::Once::new();
                    let mut first = false;
                    SAID.call_once(|| first = true);
                    if first {
                        tracing::info!(
                            "CUDA execution provider unavailable ({}); using the CPU",
                            e.msg()
                        );
                    } else {
                        tracing::debug!(model = %file.path.display(), "CPU provider, as before");
                    }
                    (session(&env, file, threads, false).map_err(|e| e.at(what("CPU")))?, "cpu")
                }
            },
        };
        tracing::info!(model = %file.path.display(), provider = dev, "ONNX Runtime session ready");
        Ok(OrtRunner { session, name: format!("ort-{dev}"), sig, path: file.path.clone() })
    }
}

/// A session-building failure, before we know how to word it.
enum BuildError {
    /// CUDA could not be registered.
    Register(ort::Error),
    /// Anything else (bad model, unsupported op, ...).
    Other(ort::Error),
}

impl BuildError {
    fn msg(&self) -> String {
        match self {
            BuildError::Register(e) | BuildError::Other(e) => e.to_string(),
        }
    }
    fn at(self, what: String) -> Error {
        match self {
            BuildError::Register(e) | BuildError::Other(e) => Error::ort(what, e),
        }
    }
    fn cuda(self) -> Error {
        match self {
            BuildError::Register(e) => Error::ExecutionProvider {
                ep: "cuda".into(),
                msg: format!(
                    "{e}; this needs a CUDA build of ONNX Runtime (set {DYLIB_ENV}) and an \
                     NVIDIA GPU with its driver, or use --ep cpu"
                ),
            },
            BuildError::Other(e) => Error::ort("creating a CUDA session", e),
        }
    }
}

fn session(
    env: &Environment,
    file: &OnnxFile,
    threads: Option<usize>,
    cuda: bool,
) -> std::result::Result<Session, BuildError> {
    let other = |e: ort::Error<_>| BuildError::Other(ort::Error::from(e));
    let mut b = Session::builder(env).map_err(BuildError::Other)?;
    if let Some(t) = threads {
        b = b.with_intra_threads(t).map_err(other)?;
    }
    // Idle pool threads sleep instead of spinning: a photo or a video frame runs the detector's
    // session and then the classifier's, and with spinning each pool burns the cores the other
    // one needs (on 2 cores, 2 threads: 42 ms a photo against 8 ms with 1 thread).
    b = b.with_intra_op_spinning(false).map_err(other)?;
    if cuda {
        if !CUDA::is_available().map_err(BuildError::Register)? {
            return Err(BuildError::Register(ort::Error::new(
                "the loaded ONNX Runtime library was built without CUDA support",
            )));
        }
        b = b
            // TF32 off: the file is fp32, and with TF32 (ORT's default) the CUDA logits drift
            // ~3e-4 relative from the CPU provider's, outside the parity tolerance (seen on an
            // H100 with ResNet-18).
            .with_execution_providers([CUDA::default().with_tf32(false).build().error_on_failure()])
            .map_err(|e| BuildError::Register(ort::Error::from(e)))?;
    }
    b.commit_from_memory(&file.bytes).map_err(BuildError::Other)
}

impl Runner for OrtRunner {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn run(&mut self, inputs: &[ArrayViewD<'_, f32>]) -> Result<Vec<ArrayD<f32>>> {
        self.sig.check_inputs(inputs)?;
        let owned: Vec<_> = inputs.iter().map(|x| x.as_standard_layout()).collect();
        let mut feed = Vec::with_capacity(owned.len());
        for (decl, x) in self.sig.inputs.iter().zip(&owned) {
            let tensor = TensorRef::from_array_view(x.view())
                .map_err(|e| Error::ort(format!("wrapping the input `{}`", decl.name), e))?;
            feed.push((decl.name.as_str(), tensor));
        }
        let outs = self
            .session
            .run(feed)
            .map_err(|e| Error::ort(format!("running {}", self.path.display()), e))?;
        self.sig
            .outputs
            .iter()
            .map(|name| {
                let value = outs.get(name).ok_or_else(|| Error::Output {
                    name: name.clone(),
                    msg: "not produced by the session".into(),
                })?;
                let arr = value
                    .try_extract_array::<f32>()
                    .map_err(|e| Error::ort(format!("reading output `{name}`"), e))?;
                Ok(arr.to_owned())
            })
            .collect()
    }
}
