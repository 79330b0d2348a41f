//! Every runtime against every other, for every architecture: torchvision (PyTorch, the
//! independent reference, which also makes the random weights and writes them with
//! `torch.save(state_dict)`), our tch lowering in eval mode, and the ONNX file that `fer_export`
//! writes from that state dict, run by ONNX Runtime (CPU) and by tract, with BatchNorm folded
//! and kept. 64 random inputs; max |logit diff| ≤ 1e-4 · max(1, max |logit|) and the same top-1
//! for every input, against torchvision and between the runtimes.

mod common;

use common::{read_raw, run_py};
use fer_checkpoint::{CheckOptions, load_weights};
use fer_export::{ExportOptions, export_onnx};
use fer_infer::backend::{self, Backend};
use fer_infer::parity::compare;
use fer_infer::{BackendOptions, OnnxFile};
use fer_models_spec::{Arch, ArchConfig, ModelMeta, Preprocess, spec};
use fer_train::TchModel;
use ndarray::{Array2, ArrayView4};
use tch::{Device, Kind, Tensor};

const N: usize = 64;

fn to_array(t: &Tensor) -> Array2<f32> {
    let [r, c] = [t.size()[0] as usize, t.size()[1] as usize];
    let v = Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view(-1)).unwrap();
    Array2::from_shape_vec((r, c), v).unwrap()
}

fn check(arch: Arch, size: usize) {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (n, s) = (N.to_string(), size.to_string());
    let args = ["--arch", arch.id(), "--size", &s, "--batch", &n, "--out", d];
    run_py("torchvision_ref.py", &args);
    let cfg = ArchConfig::new(arch, 7).with_input_size(size);
    let graph = spec(&cfg).unwrap();
    let shape = [N as i64, 3, size as i64, size as i64];
    let x = read_raw(&dir.path().join("input.f32"), &shape, Kind::Float);
    let torchvision =
        to_array(&read_raw(&dir.path().join("logits.f32"), &[N as i64, 7], Kind::Float));

    let weights_path = dir.path().join("weights.pth");
    let mut tch_model = TchModel::new(graph.clone(), Some(arch), Device::Cpu, 0).unwrap();
    tch_model.load_weights_file(&weights_path, &CheckOptions::default()).unwrap();
    let tch_logits = to_array(&tch::no_grad(|| tch_model.forward_t(&x, false)).unwrap());

    let xs = Vec::<f32>::try_from(x.contiguous().view(-1)).unwrap();
    let input = ArrayView4::from_shape((N, 3, size, size), &xs).unwrap();
    let weights = load_weights(&weights_path).unwrap();
    let meta = ModelMeta {
        arch: cfg.clone(),
        labels: (0..7).map(|i| format!("class{i}")).collect(),
        preprocess: Preprocess::imagenet(size, 3),
        temperature: 1.0,
    };
    let mut results = vec![("torchvision".to_string(), torchvision), ("tch".into(), tch_logits)];
    for fold_bn in [true, false] {
        let opts = ExportOptions { fold_bn, ..Default::default() };
        let bytes = export_onnx(&graph, &weights, &meta, &opts).unwrap();
        let file = OnnxFile::from_bytes(format!("{arch}-fold{fold_bn}.onnx"), bytes).unwrap();
        for (name, opts) in [
            ("ort-cpu", BackendOptions::ort_cpu().with_threads(1)),
            ("tract", BackendOptions::tract().with_threads(1)),
        ] {
            let mut b: Box<dyn Backend> = backend::open(&file, &opts).unwrap();
            let out = b.run(input.view()).unwrap();
            results.push((format!("{name} fold_bn={fold_bn}"), out.logits));
        }
    }
    for (i, (a, la)) in results.iter().enumerate() {
        for (b, lb) in &results[i + 1..] {
            let (abs, rel, agree) = compare(la.view(), lb.view());
            eprintln!(
                "{arch}: {a} vs {b}: max|diff| {abs:.2e} (relative {rel:.2e}), top-1 {agree}"
            );
            assert!(rel <= 1e-4, "{arch}: {a} vs {b}: max|diff| / max(1, max|logit|) = {rel:e}");
            assert_eq!(agree, 1.0, "{arch}: {a} vs {b}: top-1 agreement {agree}");
        }
    }
}

#[test]
fn mobilenet_v3_small_agrees_in_torchvision_tch_ort_and_tract() {
    check(Arch::MobilenetV3Small, 64);
}

#[test]
fn mobilenet_v3_large_agrees_in_torchvision_tch_ort_and_tract() {
    check(Arch::MobilenetV3Large, 64);
}

#[test]
fn efficientnet_b0_agrees_in_torchvision_tch_ort_and_tract() {
    check(Arch::EfficientnetB0, 64);
}

#[test]
fn resnet18_agrees_in_torchvision_tch_ort_and_tract() {
    check(Arch::Resnet18, 64);
}

#[test]
fn resnet50_agrees_in_torchvision_tch_ort_and_tract() {
    check(Arch::Resnet50, 64);
}

#[test]
fn inception_v3_agrees_in_torchvision_tch_ort_and_tract() {
    check(Arch::InceptionV3, 80);
}

#[test]
fn vgg_fer_agrees_in_torchvision_tch_ort_and_tract() {
    check(Arch::VggFer, 48);
}
