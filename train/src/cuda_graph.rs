//! CUDA graph capture (`csrc/graph.cpp`): record a whole training step's kernels once, then
//! launch them with one call per step, which removes the per-kernel launch cost that bounds small
//! models on a fast GPU.
//!
//! The shim links libtorch_cuda, so it is a shared library of its own, embedded in the binary
//! and loaded on first use (only ever on a CUDA device): fer-train keeps starting on machines
//! without the CUDA libraries.

use std::ffi::{CStr, c_char, c_void};
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The shim, or an empty slice when the build found no CUDA headers.
static SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libfer_cuda_graph.so"));

type Last = unsafe extern "C" fn() -> *const c_char;
type Enter = unsafe extern "C" fn(i32) -> *mut c_void;
type WithHandle = unsafe extern "C" fn(*mut c_void) -> i32;
type New = unsafe extern "C" fn() -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void);
type TotalMemory = unsafe extern "C" fn(i32, *mut u64) -> i32;

/// The shim's entry points.
struct Api {
    last_error: Last,
    stream_enter: Enter,
    stream_exit: WithHandle,
    new: New,
    free: Free,
    begin: WithHandle,
    end: WithHandle,
    replay: WithHandle,
    total_memory: TotalMemory,
    /// `fer_nccl_backend` of `csrc/dist_nccl.cpp` (as an address), when the shim has it.
    nccl: Option<usize>,
}

fn unavailable(why: String) -> Error {
    Error::Input(format!("CUDA graph capture is unavailable: {why}"))
}

/// Writes the embedded shim to the temporary directory (once per content) and loads it.
fn load() -> std::result::Result<Api, String> {
    if SHIM.is_empty() {
        return Err("this fer-train was built without it (no CUDA headers or libtorch_cuda at \
                    build time; see the build warning)"
            .into());
    }
    if !crate::device::load_cuda_backend() {
        return Err("libtorch_cuda.so could not be loaded".into());
    }
    let hash = SHIM
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    let path: PathBuf = std::env::temp_dir().join(format!("fer-cuda-graph-{hash:016x}.so"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(SHIM.len() as u64) {
        // The toolkit's one atomic writer: concurrent processes never load half a library.
        fer_checkpoint::write_atomic(&path, SHIM).map_err(|e| e.to_string())?;
    }
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "temporary path contains a NUL byte".to_string())?;
    // SAFETY: a valid NUL-terminated path; the handle is kept for the life of the process.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns null or a NUL-terminated message.
        let msg = unsafe { libc::dlerror() };
        let msg = if msg.is_null() {
            "unknown error".into()
        } else {
            // SAFETY: non-null, NUL-terminated.
            unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned()
        };
        return Err(format!("loading {}: {msg}", path.display()));
    }
    let sym = |name: &CStr| -> std::result::Result<*mut c_void, String> {
        // SAFETY: a live handle and a NUL-terminated symbol name.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if p.is_null() { Err(format!("{} lacks {name:?}", path.display())) } else { Ok(p) }
    };
    // SAFETY: each symbol is the extern "C" function of graph.cpp with the matching signature.
    unsafe {
        Ok(Api {
            last_error: std::mem::transmute::<*mut c_void, Last>(sym(c"fer_graph_last_error")?),
            stream_enter: std::mem::transmute::<*mut c_void, Enter>(sym(c"fer_side_stream_enter")?),
            stream_exit: std::mem::transmute::<*mut c_void, WithHandle>(sym(
                c"fer_side_stream_exit",
            )?),
            new: std::mem::transmute::<*mut c_void, New>(sym(c"fer_graph_new")?),
            free: std::mem::transmute::<*mut c_void, Free>(sym(c"fer_graph_free")?),
            begin: std::mem::transmute::<*mut c_void, WithHandle>(sym(c"fer_graph_capture_begin")?),
            end: std::mem::transmute::<*mut c_void, WithHandle>(sym(c"fer_graph_capture_end")?),
            replay: std::mem::transmute::<*mut c_void, WithHandle>(sym(c"fer_graph_replay")?),
            total_memory: std::mem::transmute::<*mut c_void, TotalMemory>(sym(
                c"fer_device_total_memory",
            )?),
            nccl: sym(c"fer_nccl_backend").ok().map(|p| p as usize),
        })
    }
}

fn api() -> Result<&'static Api> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(|e| unavailable(e.clone()))
}

fn check(api: &Api, rc: i32, what: &str) -> Result<()> {
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: the shim returns its thread-local, NUL-terminated message.
    let msg = unsafe { CStr::from_ptr((api.last_error)()) }.to_string_lossy().into_owned();
    Err(Error::Input(format!("{what}: {}", msg.lines().next().unwrap_or("unknown error"))))
}

/// Whether graph capture can be used here (the shim is built and loads).
pub fn available() -> std::result::Result<(), String> {
    api().map(|_| ()).map_err(|e| e.to_string())
}

/// The NCCL backend factory of data-parallel training (`csrc/dist_nccl.cpp`), for
/// [`crate::dist::Group::init`]; `None` when the shim was built without it or cannot load.
pub fn nccl_factory() -> Option<*mut c_void> {
    api().ok()?.nccl.map(|p| p as *mut c_void)
}

/// Total memory of CUDA device `device` in bytes (through the shim, which links libtorch_cuda).
pub fn device_total_memory(device: usize) -> Result<u64> {
    let api = api()?;
    let mut total = 0u64;
    // SAFETY: a valid out pointer; the shim catches every C++ exception.
    let rc = unsafe { (api.total_memory)(device as i32, &mut total) };
    check(api, rc, "reading the device's memory size")?;
    Ok(total)
}

/// While alive, a stream from libtorch's pool is the current stream of a CUDA device (capture
/// needs a stream other than the default one). Work is synchronised on entry and exit.
pub struct SideStream {
    api: &'static Api,
    saved: *mut c_void,
}

impl SideStream {
    /// Switches `device` to a side stream.
    pub fn enter(device: usize) -> Result<Self> {
        let api = api()?;
        // SAFETY: plain call; null means failure.
        let saved = unsafe { (api.stream_enter)(device as i32) };
        if saved.is_null() {
            check(api, 1, "switching to a side stream")?;
        }
        Ok(SideStream { api, saved })
    }
}

impl Drop for SideStream {
    fn drop(&mut self) {
        // SAFETY: the handle from stream_enter, used once.
        let rc = unsafe { (self.api.stream_exit)(self.saved) };
        if let Err(e) = check(self.api, rc, "leaving the side stream") {
            eprintln!("warning: {e}");
        }
    }
}

/// A captured sequence of CUDA work, replayed on the current stream.
pub struct Graph {
    api: &'static Api,
    handle: *mut c_void,
}

impl Graph {
    /// Captures the CUDA work `f` issues on the current stream (which must be a side stream,
    /// see [`SideStream`]). The work is recorded, not executed: call [`Graph::replay`] to run it.
    /// Tensors `f` allocates stay valid and are rewritten by every replay.
    pub fn capture<T>(f: impl FnOnce() -> Result<T>) -> Result<(Graph, T)> {
        let api = api()?;
        // SAFETY: plain call; null means failure.
        let handle = unsafe { (api.new)() };
        if handle.is_null() {
            check(api, 1, "creating a CUDA graph")?;
        }
        let graph = Graph { api, handle };
        // SAFETY: a live graph handle.
        check(api, unsafe { (api.begin)(handle) }, "starting CUDA graph capture")?;
        let value = f();
        // SAFETY: as above; always ends the capture, also after a failure inside `f`.
        let ended = check(api, unsafe { (api.end)(handle) }, "CUDA graph capture");
        let value = value?;
        ended?;
        Ok((graph, value))
    }

    /// Runs the captured work again.
    pub fn replay(&self) -> Result<()> {
        // SAFETY: a live, captured graph.
        check(self.api, unsafe { (self.api.replay)(self.handle) }, "replaying the CUDA graph")
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: the handle from fer_graph_new, freed once.
        unsafe { (self.api.free)(self.handle) }
    }
}
