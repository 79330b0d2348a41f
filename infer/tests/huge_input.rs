//! An ONNX file without FER metadata whose input declares a huge side (100000×100000, 2^31)
//! is refused with one sentence naming the file and the declared shape, by `predict` and `eval`
//! in both runtimes, before anything of that size is allocated (it used to abort with
//! `memory allocation of … failed` or panic with `capacity overflow`).

mod common;

use std::path::{Path, PathBuf};

use fer_models_spec::{Arch, ArchConfig};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;

/// A copy of `model` without metadata whose input declares `[1, 3, side, side]`.
fn with_side(model: &Path, side: i64, out: PathBuf) -> PathBuf {
    let mut m = pb::ModelProto::decode(std::fs::read(model).unwrap().as_slice()).unwrap();
    m.metadata_props.clear();
    let graph = m.graph.as_mut().unwrap();
    let Some(pb::type_proto::Value::TensorType(t)) =
        graph.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
    else {
        panic!("no tensor input")
    };
    let dims = &mut t.shape.as_mut().unwrap().dim;
    for (d, v) in dims.iter_mut().zip([1, 3, side, side]) {
        d.value = Some(DimValue::DimValue(v));
    }
    std::fs::write(&out, m.encode_to_vec()).unwrap();
    out
}

#[test]
fn a_huge_declared_input_side_is_refused_by_predict_and_eval_in_both_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchConfig::new(Arch::MobilenetV3Small, 7).with_input_size(48).with_width(0.25);
    let model = common::export(dir.path(), "m", &cfg, 1.0, false, 5);
    let data_root = dir.path().join("data");
    let data = data_root.join("happy");
    std::fs::create_dir_all(&data).unwrap();
    let img = data.join("a.png");
    image::RgbImage::from_pixel(40, 40, image::Rgb([90, 120, 200])).save(&img).unwrap();
    let meta = ["--labels", "a,b,c,d,e,f,g", "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2"];
    for side in [100_000i64, 1 << 31] {
        let huge = with_side(&model, side, dir.path().join(format!("huge{side}.onnx")));
        let h = huge.to_str().unwrap();
        for backend in ["ort", "tract"] {
            let predict = [
                &["predict", "--model", h, "--backend", backend][..],
                &meta,
                &[img.to_str().unwrap()],
            ]
            .concat();
            let out = dir.path().join(format!("eval-{side}-{backend}"));
            let eval = [
                &["eval", "--model", h, "--backend", backend][..],
                &meta,
                &["--data", data_root.to_str().unwrap()],
                &["--format", "image-folder", "--out", out.to_str().unwrap()],
            ]
            .concat();
            for args in [predict, eval] {
                let o = common::cli(&args, &[]);
                let (stdout, err) = common::texts(&o);
                assert_eq!(o.status.code(), Some(1), "{args:?}\n{stdout}\n{err}");
                let shape = format!("[1, 3, {side}, {side}]");
                assert!(err.contains(&format!("huge{side}.onnx")), "{args:?}: {err}");
                assert!(err.contains(&shape) && err.contains("4096"), "{args:?}: {err}");
                assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{err}");
            }
        }
    }
    // A side given on the command line is held to the same bound; a bad flag is a usage error.
    let m = model.to_str().unwrap();
    let o = common::cli(
        &["predict", "--model", m, "--input-size", "100000", img.to_str().unwrap()],
        &[],
    );
    let (_, err) = common::texts(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--input-size") && err.contains("100000") && err.contains("4096"),
        "{err}"
    );
}
