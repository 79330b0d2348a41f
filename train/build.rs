//! Gives every binary and test of this crate an rpath to libtorch, so they run without
//! `LD_LIBRARY_PATH` (which, being consulted before RUNPATH, still overrides it elsewhere),
//! records the libtorch version for run directories, and compiles the small C++ shim
//! (`csrc/extras.cpp`) for what tch 0.24 does not bind: CUDA autocast's dtype, the fused SGD
//! step, channels-last tensors.

use std::path::PathBuf;

fn main() {
    // Exposed by torch-sys (`links = "tch"`) to its direct dependents.
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").ok();
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
    cc::Build::new()
        .cpp(true)
        .file("csrc/extras.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("fer_extras");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/extras.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
}
