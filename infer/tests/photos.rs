//! `fer-infer predict` on photos the project did not make (scikit-image's public-domain test
//! images), with the built-in FER-2013 student: faces found and aligned as `live` does, a
//! photo without a face, several faces, small faces (the full-range detector), a 48×48 crop
//! classified whole, CSV and annotated images.

mod photo_support;

use std::path::Path;

use photo_support::{bbox, fer_infer, num, place, predict};
use serde_json::Value;

/// The astronaut's face in scikit-image's `astronaut.png` (512×512), generously.
const ASTRONAUT_FACE: [f64; 4] = [150.0, 30.0, 290.0, 200.0];

fn inside(b: [f64; 4], region: [f64; 4]) -> bool {
    b[0] >= region[0] && b[1] >= region[1] && b[2] <= region[2] && b[3] <= region[3]
}

fn probs_sum_to_one(r: &Value) {
    let p = r["probs"].as_object().expect("probs by label");
    assert_eq!(p.len(), 7, "{r}");
    let s: f64 = p.values().map(num).sum();
    assert!((s - 1.0).abs() < 1e-4, "sum {s}: {r}");
    let best = p.iter().max_by(|a, b| num(a.1).total_cmp(&num(b.1))).unwrap();
    assert_eq!(r["label"], best.0.as_str(), "{r}");
}

#[test]
fn the_astronaut_photo_has_one_aligned_face_with_its_landmarks() {
    let photo = photo_or_skip!("astronaut.png");
    let recs = predict(&[photo.to_str().unwrap()]);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!((r["face"].as_u64(), r["faces"].as_u64()), (Some(0), Some(1)), "{r}");
    assert_eq!(r["crop"], "aligned");
    assert!(r["path"].as_str().unwrap().ends_with("astronaut.png"));
    assert!(inside(bbox(r), ASTRONAUT_FACE), "{r}");
    let lm = &r["landmarks"];
    let (re, le, nose) = (&lm["right_eye"], &lm["left_eye"], &lm["nose"]);
    assert!(num(&re[0]) < num(&le[0]), "the subject's right eye is on the image's left: {lm}");
    assert!(num(&nose[1]) > num(&re[1]) && num(&lm["mouth"][1]) > num(&nose[1]), "{lm}");
    for k in ["right_eye", "left_eye", "nose", "mouth"] {
        let p = [num(&lm[k][0]), num(&lm[k][1])];
        assert!(inside([p[0], p[1], p[0], p[1]], bbox(r)), "{k} outside the box: {r}");
    }
    probs_sum_to_one(r);
    // She smiles, and the model says so, in colour as in gray: it was trained on FER-2013's
    // gray images and its metadata (`fer.color = gray_rgb`) turns every photo gray first.
    assert_eq!(r["label"], "happiness", "{r}");
    assert!(num(&r["confidence"]) > 0.5, "{r}");
    let dir = tempfile::tempdir().unwrap();
    let gray = dir.path().join("astronaut_gray.png");
    image::open(&photo).unwrap().to_luma8().save(&gray).unwrap();
    let g = &predict(&[gray.to_str().unwrap()])[0];
    assert_eq!(g["label"], "happiness", "{g}");
    assert!(num(&g["confidence"]) > 0.5, "{g}");
    let d = bbox(g).iter().zip(bbox(r)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(d < 8.0, "the same face in gray: {g}");
    // The image crate's gray (Rec. 709) is not PIL's luma (601): close, not equal.
    let dc = (num(&g["confidence"]) - num(&r["confidence"])).abs();
    assert!(dc < 0.05, "colour {r} and gray {g} differ");
}

#[test]
fn a_photo_without_a_face_gives_one_record_that_says_so_and_exit_0() {
    let coffee = photo_or_skip!("coffee.png");
    let recs = predict(&[coffee.to_str().unwrap()]);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r["faces"], 0);
    assert!(r["face"].is_null() && r["label"].is_null() && r["probs"].is_null(), "{r}");
    assert_eq!(r["crop"], "aligned");
    let (_, err, code) = fer_infer(&["predict", coffee.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(err.contains("1 of 1 image(s) without a face"), "{err}");
}

#[test]
fn a_48px_gray_crop_is_classified_whole_unless_detection_is_forced() {
    let photo = photo_or_skip!("astronaut.png");
    let dir = tempfile::tempdir().unwrap();
    // The face region, squared, as a 48×48 gray FER-2013-like crop.
    let img = image::open(&photo).unwrap();
    let face = img.crop_imm(160, 40, 120, 120).resize_exact(48, 48, image::imageops::Triangle);
    let crop = dir.path().join("crop48.png");
    face.to_luma8().save(&crop).unwrap();
    let whole = predict(&[crop.to_str().unwrap()]);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0]["crop"], "whole", "{:?}", whole[0]);
    assert_eq!(bbox(&whole[0]), [0.0, 0.0, 48.0, 48.0]);
    assert!(whole[0]["detector"].is_null() && whole[0]["landmarks"].is_null());
    probs_sum_to_one(&whole[0]);
    // Forced: the detector runs on it (what it finds in a tight crop is its business).
    let forced = predict(&["--faces", "detect", crop.to_str().unwrap()]);
    assert!(forced.iter().all(|r| r["crop"] == "aligned"), "{forced:?}");
    // And a photo can be forced whole.
    let w = predict(&["--faces", "whole", photo.to_str().unwrap()]);
    assert_eq!((w.len(), &w[0]["crop"]), (1, &Value::from("whole")));
    assert_eq!(bbox(&w[0]), [0.0, 0.0, 512.0, 512.0]);
}

/// Two real photos side by side on one canvas: the astronaut and her mirror image, smaller.
fn two_faces(dir: &Path, astronaut: &Path) -> std::path::PathBuf {
    let a = image::open(astronaut).unwrap().to_rgb8();
    let mut canvas = place(&a, 1.0, 1024, 512, 0, 0);
    let mirrored = image::imageops::flip_horizontal(&a);
    let small = place(&mirrored, 0.6, 512, 512, 100, 150);
    image::imageops::replace(&mut canvas, &small, 512, 0);
    let p = dir.join("two.png");
    canvas.save(&p).unwrap();
    p
}

#[test]
fn every_face_of_a_photo_with_two_is_found_and_classified() {
    let photo = photo_or_skip!("astronaut.png");
    let dir = tempfile::tempdir().unwrap();
    let two = two_faces(dir.path(), &photo);
    let recs = predict(&[two.to_str().unwrap()]);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let mut xs: Vec<f64> = recs.iter().map(|r| bbox(r)[0]).collect();
    xs.sort_by(f64::total_cmp);
    assert!(xs[0] < 512.0 && xs[1] > 512.0, "one face per half: {xs:?}");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!((r["face"].as_u64(), r["faces"].as_u64()), (Some(i as u64), Some(2)));
        probs_sum_to_one(r);
    }
}

#[test]
fn a_small_face_in_a_640x480_frame_is_found_by_the_full_range_model_in_auto() {
    let photo = photo_or_skip!("astronaut.png");
    let dir = tempfile::tempdir().unwrap();
    // The astronaut at 0.45×: her face about 60 px wide in a 640×480 frame.
    let a = image::open(&photo).unwrap().to_rgb8();
    let frame = place(&a, 0.45, 640, 480, 300, 200);
    let p = dir.path().join("small.png");
    frame.save(&p).unwrap();
    let path = p.to_str().unwrap();
    let short = predict(&["--detector", "short", path]);
    assert_eq!(short[0]["faces"], 0, "the short-range model misses it: {short:?}");
    let auto = predict(&[path]);
    assert_eq!(auto.len(), 1, "{auto:?}");
    assert_eq!(auto[0]["detector"], "full", "{auto:?}");
    let b = bbox(&auto[0]);
    assert!(b[0] > 300.0 && b[2] < 300.0 + 0.45 * 512.0, "{b:?}");
}

#[test]
fn csv_has_one_header_and_one_probability_column_per_class() {
    let (astronaut, coffee) = (photo_or_skip!("astronaut.png"), photo_or_skip!("coffee.png"));
    let (a, c) = (astronaut.to_str().unwrap(), coffee.to_str().unwrap());
    let (out, err, code) = fer_infer(&["predict", "--format", "csv", a, c]);
    assert_eq!(code, 0, "{err}");
    let json = predict(&[a, c]);
    // Python's csv module (RFC 4180, as pandas reads it) parses it; every row has every column.
    let script = r#"
import csv, json, sys
rows = list(csv.DictReader(sys.stdin))
print(json.dumps({"columns": list(rows[0].keys()), "rows": rows}))
"#;
    let mut child = std::process::Command::new(fer_test_support::python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the venv's python");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(out.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cols: Vec<&str> =
        v["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(&cols[..6], ["path", "face", "faces", "crop", "detector", "score"]);
    assert_eq!(cols.len(), 6 + 4 + 12 + 2 + 7, "{cols:?}");
    // The built-in model's labels, in its logit order (docs/models.md).
    let labels = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"];
    assert_eq!(&cols[cols.len() - 7..], labels.as_slice());
    assert_eq!(out.lines().filter(|l| l.starts_with("path,")).count(), 1);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for l in &labels {
        let csv_p: f64 = rows[0][l].as_str().unwrap().parse().unwrap();
        assert!((csv_p - num(&json[0]["probs"][l])).abs() < 1e-6, "{l}");
        assert_eq!(rows[1][l], "", "no face, no probability");
    }
    assert_eq!((rows[1]["faces"].as_str(), rows[1]["face"].as_str()), (Some("0"), Some("")));
}

#[test]
fn annotate_writes_one_image_per_input_with_the_box_drawn() {
    let (astronaut, coffee) = (photo_or_skip!("astronaut.png"), photo_or_skip!("coffee.png"));
    let dir = tempfile::tempdir().unwrap();
    let ann = dir.path().join("ann");
    let recs = predict(&[
        "--annotate",
        ann.to_str().unwrap(),
        astronaut.to_str().unwrap(),
        coffee.to_str().unwrap(),
    ]);
    let drawn = image::open(ann.join("astronaut.png")).unwrap().to_rgb8();
    let orig = image::open(&astronaut).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), orig.dimensions());
    let b = bbox(&recs[0]).map(|v| v.round() as u32);
    let edge =
        (b[0]..b[2]).filter(|&x| drawn.get_pixel(x, b[1] + 1) != orig.get_pixel(x, b[1] + 1));
    assert!(edge.count() as u32 > (b[2] - b[0]) / 2, "the box's top edge is drawn");
    let untouched = image::open(ann.join("coffee.png")).unwrap().to_rgb8();
    assert_eq!(untouched, image::open(&coffee).unwrap().to_rgb8(), "no face, nothing drawn");
}
