//! BlazeFace in fer_infer against an independent reference (Python onnxruntime, decoding and
//! weighted NMS in numpy: tests/py/blazeface_ref.py) on two real public-domain images: the raw
//! outputs of ONNX Runtime and tract on the same input, the decoded and merged detections, and
//! the whole detector (our letterbox and resize) finding the same face.

mod common;

use std::path::Path;
use std::process::Command;

use common::{read_f32, rel_diff};
use fer_infer::BackendOptions;
use fer_infer::face::blazeface::{RawDetection, decode, weighted_nms};
use fer_infer::face::{BlazeFace, Range};
use fer_test_support::python;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

fn reference(out: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/blazeface_ref.py");
    // The reference reads the files scripts/setup.sh fetched (the ones the binary embeds).
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/blazeface");
    let o = Command::new(python())
        .arg(script)
        .args(["--models", models.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn f(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

fn pair(v: &Value) -> [f32; 2] {
    [f(&v[0]), f(&v[1])]
}

fn close(a: &RawDetection, b: &Value, tol: f32, what: &str) {
    assert!((a.score - f(&b["score"])).abs() < 1e-5, "{what}: score {} vs {}", a.score, b["score"]);
    for i in 0..2 {
        assert!((a.center[i] - pair(&b["center"])[i]).abs() < tol, "{what}: centre {a:?} vs {b}");
        assert!((a.extent[i] - pair(&b["extent"])[i]).abs() < tol, "{what}: extent {a:?} vs {b}");
        for k in 0..6 {
            let want = pair(&b["keypoints"][k]);
            assert!((a.keypoints[k][i] - want[i]).abs() < tol, "{what}: keypoint {k}");
        }
    }
}

#[test]
fn blazeface_matches_onnxruntime_and_numpy_on_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let want = reference(dir.path());
    let mut found = 0;
    for range in [Range::Short, Range::Full] {
        let s = range.size();
        let mut ort = BlazeFace::open(
            &range.default_path().unwrap(),
            range,
            &BackendOptions::ort_cpu().with_threads(1),
        )
        .expect("BlazeFace on ONNX Runtime (run scripts/setup.sh)");
        let mut tract =
            BlazeFace::open(&range.default_path().unwrap(), range, &BackendOptions::tract())
                .unwrap();
        for img in ["astronaut", "camera"] {
            let key = format!("{img}-{s}");
            let p = |ext: &str| dir.path().join(format!("{key}.{ext}.f32"));
            let input =
                ArrayD::from_shape_vec(IxDyn(&[1, s, s, 3]), read_f32(&p("input"))).unwrap();
            let (ref_scores, ref_boxes) = (read_f32(&p("scores")), read_f32(&p("boxes")));
            for (name, det) in [("ort", &mut ort), ("tract", &mut tract)] {
                let (scores, boxes) = det.raw(&input).unwrap();
                let (ds, db) = (rel_diff(&ref_scores, &scores), rel_diff(&ref_boxes, &boxes));
                eprintln!(
                    "{key} {name}: raw outputs differ by {ds:.1e} (scores), {db:.1e} (boxes)"
                );
                assert!(ds < 1e-4 && db < 1e-4, "{key} {name}: {ds:e} {db:e}");
            }
            // Decoding and weighted NMS on the reference's raw outputs.
            let dets = weighted_nms(&decode(&ref_scores, &ref_boxes, s, 0.5), 0.3);
            let expected = want[&key].as_array().unwrap();
            assert_eq!(dets.len(), expected.len(), "{key}: {dets:?} vs {expected:?}");
            for (d, e) in dets.iter().zip(expected) {
                close(d, e, 1e-5, &key);
            }
            found += dets.len();

            // The whole detector on the image (our letterbox and bilinear resize, not PIL's):
            // the same face within a few pixels.
            let rgb = image::open(dir.path().join(format!("{img}.png"))).unwrap().to_rgb8();
            let faces = ort.detect(&rgb).unwrap();
            assert_eq!(faces.len(), expected.len(), "{key}: {faces:?}");
            for (face, e) in faces.iter().zip(expected) {
                let c = pair(&e["center"]).map(|v| v * 512.0);
                let got =
                    [(face.bbox[0] + face.bbox[2]) / 2.0, (face.bbox[1] + face.bbox[3]) / 2.0];
                let off = ((got[0] - c[0]).powi(2) + (got[1] - c[1]).powi(2)).sqrt();
                assert!(off < 4.0, "{key}: face centre {got:?} vs {c:?}");
                assert!((face.score - f(&e["score"])).abs() < 0.05, "{key}: score");
            }
        }
    }
    assert!(found >= 4, "a face in each image with each model");
}

#[test]
fn a_wrong_detector_file_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("front.onnx");
    std::fs::write(&p, b"not a model").unwrap();
    let e = BlazeFace::open(&p, Range::Short, &BackendOptions::tract()).err().unwrap().to_string();
    assert!(e.contains("front.onnx") && e.contains("SHA-256"), "{e}");
    let e =
        BlazeFace::open(&dir.path().join("missing.onnx"), Range::Short, &BackendOptions::ort_cpu())
            .err()
            .unwrap()
            .to_string();
    assert!(e.contains("missing.onnx") && e.contains("setup.sh"), "{e}");
}
