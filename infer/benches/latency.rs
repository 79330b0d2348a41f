//! Criterion latency of MobileNetV3-Small (random weights, exported by `fer_export`) at
//! batch 1 and 32 in ONNX Runtime and tract on the CPU.
//!
//! `cargo bench -p fer-infer --bench latency`; `FER_BENCH_SIZE` sets the input side (112).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/common/random.rs"]
mod random;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fer_export::{ExportOptions, export_onnx};
use fer_infer::backend;
use fer_infer::bench::synthetic_input;
use fer_infer::{BackendOptions, OnnxFile};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, Preprocess, spec};

fn model(size: usize) -> OnnxFile {
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(size);
    let graph = spec(&cfg).expect("spec");
    let weights = random::random_weights(&graph, 0);
    let meta = ModelMeta {
        labels: (0..7).map(|i| format!("c{i}")).collect(),
        preprocess: Preprocess::imagenet(size, 3),
        temperature: 1.0,
        arch: cfg,
    };
    let bytes = export_onnx(&graph, &weights, &meta, &ExportOptions::default()).expect("export");
    OnnxFile::from_bytes("mobilenet_v3_small.onnx", bytes).expect("read back")
}

fn latency(c: &mut Criterion) {
    let size: usize =
        std::env::var("FER_BENCH_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(112);
    let file = model(size);
    let mut group = c.benchmark_group(format!("mobilenet_v3_small_{size}px_cpu"));
    group.sample_size(10).warm_up_time(Duration::from_secs(2));
    for (name, opts) in [("ort", BackendOptions::ort_cpu()), ("tract", BackendOptions::tract())] {
        let mut b = backend::open(&file, &opts).expect("backend");
        for batch in [1usize, 32] {
            let x = synthetic_input([batch, 3, size, size], 1);
            group.bench_with_input(BenchmarkId::new(name, batch), &x, |bench, x| {
                bench.iter(|| black_box(b.run(x.view()).expect("run")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
