//! A model whose outputs are not finite (a foreign or damaged file: here an ONNX graph that
//! takes the square root of a negative number) gets no prediction: `predict` and `eval` stop
//! with a sentence naming the image, in both runtimes, instead of printing `"prob":null`
//! with exit code 0 (issue 18, case 4's inference side).

mod common;

use std::process::Command;

const MAKE_NAN_MODEL: &str = r#"
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper
x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])
y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])
w = helper.make_tensor("w", TensorProto.FLOAT, [192, 3], np.full(192 * 3, 0.01, np.float32))
one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
nodes = [
    helper.make_node("Flatten", ["input"], ["f"]),
    helper.make_node("Gemm", ["f", "w"], ["g"]),
    helper.make_node("Abs", ["g"], ["a"]),
    helper.make_node("Add", ["a", "one"], ["p"]),
    helper.make_node("Neg", ["p"], ["n"]),
    helper.make_node("Sqrt", ["n"], ["logits"]),
]
g = helper.make_graph(nodes, "nan", [x], [y], [w, one])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(m, sys.argv[1])
"#;

#[test]
fn non_finite_logits_are_an_error_naming_the_image_never_a_null_probability() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("nan.onnx");
    let st =
        Command::new(fer_test_support::python()).arg("-c").arg(MAKE_NAN_MODEL).arg(&model).status();
    assert!(st.unwrap().success(), "building the test model");
    let data = dir.path().join("data");
    for class in ["happy", "sad", "angry"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        image::RgbImage::from_pixel(8, 8, image::Rgb([10, 20, 30]))
            .save(data.join(class).join("x.png"))
            .unwrap();
    }
    let img = data.join("sad").join("x.png");
    let (m, i) = (model.to_str().unwrap(), img.to_str().unwrap());
    let meta = ["--labels", "happy,sad,angry", "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2"];
    for backend in ["ort", "tract"] {
        let args = [&["predict", "--model", m, "--backend", backend][..], &meta, &[i]].concat();
        let o = common::cli(&args, &[]);
        let (out, err) = common::texts(&o);
        assert_eq!(o.status.code(), Some(1), "{backend}: {out}\n{err}");
        assert!(!out.contains("null") && out.is_empty(), "{backend}: {out}");
        assert!(err.contains("NaN for ") && err.contains("x.png"), "{backend}: {err}");
        assert!(err.contains("non-finite"), "{backend}: {err}");
        let eval_out = dir.path().join(format!("eval-{backend}"));
        let args = [
            &["eval", "--model", m, "--backend", backend][..],
            &meta,
            &["--data", data.to_str().unwrap(), "--format", "image-folder"],
            &["--out", eval_out.to_str().unwrap()],
        ]
        .concat();
        let o = common::cli(&args, &[]);
        let (_, err) = common::texts(&o);
        assert_eq!(o.status.code(), Some(1), "{backend}: {err}");
        assert!(err.contains("non-finite") && !err.contains("panicked"), "{backend}: {err}");
        assert!(!eval_out.join("metrics.json").exists(), "{backend}: metrics written");
    }
}
