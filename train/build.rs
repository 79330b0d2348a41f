//! Gives every binary and test of this crate an rpath to libtorch, so they run without
//! `LD_LIBRARY_PATH` (which, being consulted before RUNPATH, still overrides it elsewhere).

fn main() {
    // Exposed by torch-sys (`links = "tch"`) to its direct dependents.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
