//! ONNX Runtime through `ort`, loading the shared library at run time.
//!
//! Where the library comes from, first match wins:
//! 1. the `--ort-library` flag ([`use_library`]) or the `ORT_DYLIB_PATH` environment variable
//!    (an error if either names a missing file);
//! 2. a `libonnxruntime.so*` next to the executable, or in `../lib` beside its folder (an
//!    installed copy with its library beside it);
//! 3. the active Python environment (`$VIRTUAL_ENV`): the `onnxruntime` wheel's `capi/` folder;
//! 4. the path `scripts/setup.sh` links at build time (`FER_ORT_DYLIB_DEFAULT`, the checkout's
//!    `.deps/libonnxruntime.so`), if it still exists;
//! 5. the system: the folders of `LD_LIBRARY_PATH`, then `/usr/local/lib`,
//!    `/usr/lib/x86_64-linux-gnu` (or the machine's multiarch folder) and `/usr/lib`.
//!
//! `ort` panics when it has no library, so [`find_library`] checks before anything calls into
//! `ort`, and a missing library is an [`Error::OrtLibrary`] that says where we looked
//! (`fer-infer` then falls back to tract unless `--backend ort` was asked for).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ndarray::{ArrayD, ArrayViewD};
use ort::environment::Environment;
use ort::ep::{CUDA, ExecutionProvider as _};
use ort::session::Session;
use ort::value::TensorRef;

use super::{ExecutionProvider, Runner, Signature};
use crate::error::{Error, Result};
use crate::onnx_file::OnnxFile;

/// The environment variable naming the library explicitly.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// The library path fixed at build time by `.cargo/config.toml` (`.deps/libonnxruntime.so`).
const BUILD_DEFAULT: Option<&str> = option_env!("FER_ORT_DYLIB_DEFAULT");

/// The library named on the command line, if any (set once, before the first session).
static FLAG: OnceLock<PathBuf> = OnceLock::new();

/// Names the library explicitly (the `--ort-library` flag); it wins over every other place.
/// Only the first call counts.
pub fn use_library(path: PathBuf) {
    let _ = FLAG.set(path);
}

/// Set to `1` by tests to ignore the paths fixed at build time, as if the checkout that built
/// the binary had been moved away.
pub const NO_BUILD_PATHS_ENV: &str = "FER_NO_BUILD_PATHS";

/// Whether paths fixed at build time may be used (see [`NO_BUILD_PATHS_ENV`]).
pub fn build_paths_allowed() -> bool {
    std::env::var_os(NO_BUILD_PATHS_ENV).is_none_or(|v| v.is_empty() || v == "0")
}

/// Whether the library was named explicitly (`--ort-library` or `ORT_DYLIB_PATH`): then its
/// absence is an error, never a reason to run on another runtime.
pub fn library_named() -> bool {
    FLAG.get().is_some() || std::env::var_os(DYLIB_ENV).is_some_and(|p| !p.is_empty())
}

/// Finds the ONNX Runtime shared library (see the module doc for the order).
pub fn find_library() -> Result<PathBuf> {
    let named = FLAG.get().map(|p| ("--ort-library", p.clone())).or_else(|| {
        std::env::var_os(DYLIB_ENV).filter(|p| !p.is_empty()).map(|p| (DYLIB_ENV, PathBuf::from(p)))
    });
    if let Some((by, p)) = named {
        if p.is_file() {
            return Ok(p);
        }
        let msg = if by == DYLIB_ENV {
            format!(
                "{DYLIB_ENV}={} does not exist; point {DYLIB_ENV} at libonnxruntime.so \
                 (scripts/setup.sh installs one in .venv) or unset it",
                p.display()
            )
        } else {
            format!("{by} {} does not exist; give the path of libonnxruntime.so", p.display())
        };
        return Err(Error::OrtLibrary { msg });
    }
    let mut looked = Vec::new();
    for d in search_dirs() {
        if let Some(found) = library_in(&d) {
            return Ok(found);
        }
        looked.push(format!("{}/libonnxruntime.so*", d.display()));
    }
    Err(Error::OrtLibrary {
        msg: format!(
            "libonnxruntime.so not found ({DYLIB_ENV} is not set; looked in {}); run \
             scripts/setup.sh, or set {DYLIB_ENV} to the library's path",
            looked.join(", ")
        ),
    })
}

/// The folders searched after the flag and the environment variable, in order.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir.clone());
        dirs.push(dir.join("..").join("lib"));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        let lib = PathBuf::from(venv).join("lib");
        let pythons = std::fs::read_dir(&lib).into_iter().flatten().flatten();
        let mut found: Vec<PathBuf> = pythons
            .map(|e| e.path().join("site-packages/onnxruntime/capi"))
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        dirs.extend(found);
    }
    if let Some(parent) =
        BUILD_DEFAULT.filter(|_| build_paths_allowed()).and_then(|p| Path::new(p).parent())
    {
        dirs.push(parent.to_path_buf());
    }
    if let Some(ld) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&ld).filter(|p| !p.as_os_str().is_empty()));
    }
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    dirs.extend(["/usr/local/lib", &multiarch, "/usr/lib"].map(PathBuf::from));
    dirs
}

/// The library's version, read from its (resolved) file name `libonnxruntime.so.1.32.0`;
/// `None` when the name carries none.
pub fn version_of(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = real.file_name()?.to_str()?;
    let v = name.strip_prefix("libonnxruntime.so.")?;
    (!v.is_empty()).then(|| v.to_string())
}

fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

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
