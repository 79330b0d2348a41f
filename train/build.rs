//! Gives every binary and test of this crate an rpath to libtorch, so they run without
//! `LD_LIBRARY_PATH` (which, being consulted before RUNPATH, still overrides it elsewhere),
//! records the libtorch version for run directories, and compiles the small C++ shim
//! (`csrc/extras.cpp`) for what tch 0.24 does not bind: CUDA autocast's dtype, the fused SGD
//! step, channels-last tensors. A second shim (`csrc/graph.cpp`, CUDA graph capture) needs the
//! CUDA runtime headers and libtorch_cuda: it becomes a shared library of its own in `OUT_DIR`,
//! which the crate embeds and loads only on a CUDA device (an empty file when it cannot be built).

use std::path::PathBuf;

fn main() {
    // Exposed by torch-sys (`links = "tch"`) to its direct dependents.
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").ok();
    // `../lib` beside the binary's folder first: an installed copy finds a libtorch put there.
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib");
    if let Some(lib) = &lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    let root = std::env::var("LIBTORCH")
        .ok()
        .map(PathBuf::from)
        .or_else(|| lib.as_ref().and_then(|l| PathBuf::from(l).parent().map(PathBuf::from)));
    let version = root
        .as_ref()
        .and_then(|dir| std::fs::read_to_string(dir.join("version.py")).ok())
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("__version__ = ").map(|v| v.trim_matches(['\'', '"']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FER_LIBTORCH_VERSION={version}");

    let root = root.expect("LIBTORCH is not set and torch-sys did not report libtorch's lib dir");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    match gloo_include() {
        Some(dir) => {
            build.include(dir).define("FER_HAVE_GLOO", None).define("USE_C10D_GLOO", None);
        }
        None => println!(
            "cargo:warning=data-parallel training not built: no Gloo headers (gloo/algorithm.h; \
             Debian: apt-get install libgloo-dev, or set GLOO_INCLUDE)"
        ),
    }
    build
        .cpp(true)
        .file("csrc/extras.cpp")
        .file("csrc/dist.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("fer_extras");
    build_graph_shim(&root, &abi);
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/extras.cpp");
    println!("cargo:rerun-if-changed=csrc/graph.cpp");
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    println!("cargo:rerun-if-changed=csrc/shim.hpp");
    println!("cargo:rerun-if-changed=csrc/dist_nccl.cpp");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
}

/// The folder holding Gloo's headers (`gloo/algorithm.h`), which c10d's ProcessGroupGloo.hpp
/// includes and the torch wheel does not ship: `$GLOO_INCLUDE`, else `/usr/include` (Debian's
/// libgloo-dev).
fn gloo_include() -> Option<PathBuf> {
    let candidates = std::env::var("GLOO_INCLUDE")
        .ok()
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/include"), PathBuf::from("/usr/local/include")]);
    candidates.into_iter().find(|d| d.join("gloo/algorithm.h").exists())
}

/// NCCL's header folder: the nvidia-nccl wheel next to torch.
fn nccl_include(torch_root: &std::path::Path) -> Option<PathBuf> {
    let real = torch_root.canonicalize().ok()?;
    let dir = real.parent()?.join("nvidia/nccl/include");
    dir.join("nccl.h").exists().then_some(dir)
}

/// The CUDA runtime headers: `$CUDA_HOME`, the pip wheels next to libtorch (`nvidia/cu13`,
/// `nvidia/cuda_runtime`), or `/usr/local/cuda`.
fn cuda_include(torch_root: &std::path::Path) -> Option<PathBuf> {
    let real = torch_root.canonicalize().ok()?;
    let site = real.parent()?;
    let mut candidates: Vec<PathBuf> = std::env::var("CUDA_HOME")
        .ok()
        .map(|h| PathBuf::from(h).join("include"))
        .into_iter()
        .collect();
    candidates.push(site.join("nvidia/cu13/include"));
    candidates.push(site.join("nvidia/cuda_runtime/include"));
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    candidates.into_iter().find(|d| d.join("cuda_runtime_api.h").exists())
}

/// Builds `OUT_DIR/libfer_cuda_graph.so` from `csrc/graph.cpp`, or leaves an empty file (with a
/// build warning) when libtorch has no CUDA half or no CUDA headers are found.
fn build_graph_shim(root: &std::path::Path, abi: &str) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let so = out.join("libfer_cuda_graph.so");
    let lib = root.join("lib");
    let skip = |why: &str| {
        println!("cargo:warning=CUDA graph capture not built: {why}");
        std::fs::write(&so, b"").expect("OUT_DIR is writable");
    };
    if !lib.join("libtorch_cuda.so").exists() {
        return skip("this libtorch has no libtorch_cuda.so");
    }
    let Some(cuda) = cuda_include(root) else {
        return skip("no cuda_runtime_api.h (set CUDA_HOME)");
    };
    let compiler = cc::Build::new().cpp(true).get_compiler();
    let compile = |nccl: Option<&PathBuf>| {
        let mut cmd = compiler.to_command();
        cmd.args(["-shared", "-fPIC", "-O2", "-std=c++17", "-w"])
            .arg(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
            .arg("-DGLOG_USE_GLOG_EXPORT")
            .arg("-I")
            .arg(root.join("include"))
            .arg("-I")
            .arg(root.join("include/torch/csrc/api/include"))
            .arg("-I")
            .arg(&cuda)
            .arg("csrc/graph.cpp");
        if let Some(dir) = nccl {
            cmd.arg("-DUSE_C10D_NCCL").arg("-I").arg(dir).arg("csrc/dist_nccl.cpp");
        }
        cmd.arg("-o")
            .arg(&so)
            .arg("-L")
            .arg(&lib)
            .args(["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-ltorch_cpu", "-lc10"])
            .status()
    };
    // The NCCL backend of data-parallel training (csrc/dist_nccl.cpp) when NCCL's header is
    // there and compiles; graph capture alone otherwise.
    let nccl = nccl_include(root);
    let status = match nccl.as_ref().map(|dir| compile(Some(dir))) {
        Some(Ok(s)) if s.success() => Ok(s),
        tried => {
            let why = match tried {
                None => "no nccl.h next to libtorch".to_string(),
                Some(Ok(s)) => format!("csrc/dist_nccl.cpp did not compile ({s})"),
                Some(Err(e)) => e.to_string(),
            };
            println!("cargo:warning=NCCL backend not built ({why}): CUDA tensors use Gloo");
            compile(None)
        }
    };
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => skip(&format!("the compiler exited with {s}")),
        Err(e) => skip(&format!("the compiler did not start: {e}")),
    }
}
