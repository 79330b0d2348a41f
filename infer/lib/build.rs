//! Embeds the small files `fer-infer` needs at run time when `scripts/setup.sh` has put them in
//! the checkout's `.deps/` (the BlazeFace detectors and the synthetic source's face photo), so
//! that an installed binary (`cargo install --path infer`) works from anywhere. A build without
//! them still works: the binary then looks for the files at run time and says where.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../..")
        .join(".deps");
    let assets = [
        ("BLAZEFACE_SHORT", "blazeface/face_detection_front_128x128_barracuda.onnx"),
        ("BLAZEFACE_FULL", "blazeface/face_detection_back_256x256_barracuda.onnx"),
        ("ASTRONAUT_FACE", "faces/astronaut_face.png"),
    ];
    let mut code = String::new();
    for (name, rel) in assets {
        let path = root.join(rel);
        println!("cargo:rerun-if-changed={}", path.display());
        let value = match std::fs::canonicalize(&path) {
            Ok(p) if p.is_file() => format!("Some(include_bytes!({:?}))", p.display().to_string()),
            _ => "None".to_string(),
        };
        let _ = writeln!(code, "/// `.deps/{rel}`, when it existed at build time.");
        let _ = writeln!(code, "pub const {name}: Option<&[u8]> = {value};");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("assets.rs");
    std::fs::write(out, code).expect("writing OUT_DIR/assets.rs");
}
