//! Exports an architecture with random weights (for benchmarks and manual tests):
//! `cargo run -p fer-infer --example random_model -- mobilenet_v3_small 112 out.onnx`
//! (Arch parses from its id through `FromStr`.).

#[path = "../tests/common/random.rs"]
mod random;

use std::path::PathBuf;

use clap::Parser;
use fer_export::{ExportOptions, export_onnx, write_onnx};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, Preprocess, spec};

/// Export an architecture with random weights (7 FER classes, ImageNet preprocessing).
#[derive(Parser)]
struct Args {
    /// Architecture id, for example mobilenet_v3_small or efficientnet_b0.
    arch: Arch,
    /// Square input side in pixels.
    size: usize,
    /// Where to write the model.
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let Args { arch, size, out } = Args::parse();
    let cfg = ArchConfig::new(arch, 7).with_input_size(size);
    let graph = spec(&cfg)?;
    let labels = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"];
    let meta = ModelMeta {
        labels: labels.iter().map(|s| s.to_string()).collect(),
        preprocess: Preprocess::imagenet(size, 3),
        temperature: 1.0,
        arch: cfg,
    };
    let weights = random::random_weights(&graph, 0);
    let bytes = export_onnx(&graph, &weights, &meta, &ExportOptions::default())?;
    write_onnx(&out, &bytes)?;
    println!("{}: {arch} {size}px, {} bytes", out.display(), bytes.len());
    Ok(())
}
