//! `fer-infer eval --tta flip|ten-crop`: each image's probabilities are those of the average of
//! the logits of its views, checked against plain evaluations of the views made on disk.

mod eval_support;

use std::path::Path;

use eval_support::{FER7, eval, export, image_folder};

const FOLDERS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// The probability columns of predictions.csv, one row per sample in file order.
fn probabilities(dir: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| line.split(',').skip(5).map(|p| p.parse::<f64>().unwrap()).collect())
        .collect()
}

#[test]
fn flip_tta_averages_the_logits_of_each_image_and_its_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let data = image_folder(&tmp.path().join("fer"), &FOLDERS, 3);
    let mirrored = tmp.path().join("mirrored");
    for class in FOLDERS {
        std::fs::create_dir_all(mirrored.join(class)).unwrap();
        for e in std::fs::read_dir(data.join(class)).unwrap() {
            let path = e.unwrap().path();
            let img = image::open(&path).unwrap().fliph();
            img.save(mirrored.join(class).join(path.file_name().unwrap())).unwrap();
        }
    }
    let model = export(tmp.path(), "m", &FER7, 20.0, 1.0);
    let run = |data: &Path, out: &str, extra: &[&str]| {
        let mut args = vec!["--bootstrap", "0"];
        args.extend_from_slice(extra);
        eval(&model, data, "image-folder", &tmp.path().join(out), &args)
    };
    run(&data, "plain", &[]);
    run(&mirrored, "mirror", &[]);
    let (m, stdout) = run(&data, "tta", &["--tta", "flip"]);
    let (plain, mirror, tta) = (
        probabilities(&tmp.path().join("plain")),
        probabilities(&tmp.path().join("mirror")),
        probabilities(&tmp.path().join("tta")),
    );
    assert_eq!((plain.len(), mirror.len(), tta.len()), (21, 21, 21));
    let mut moved = 0.0f64;
    for ((p, q), t) in plain.iter().zip(&mirror).zip(&tta) {
        // softmax((l + l') / 2) is the renormalised geometric mean of softmax(l), softmax(l').
        let g: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a.ln() + b.ln()) / 2.0).collect();
        let z: f64 = g.iter().map(|v| v.exp()).sum();
        for (k, (v, want)) in t.iter().zip(g.iter().map(|v| v.exp() / z)).enumerate() {
            assert!((v - want).abs() < 1e-6, "class {k}: {v} with tta, {want} from the two views");
            moved = moved.max((v - p[k]).abs());
        }
    }
    assert!(
        moved > 1e-3,
        "tta changed no probability by more than {moved}: the test shows nothing"
    );
    assert_eq!(m["settings"]["tta"], "flip");
    assert!(stdout.contains("horizontal flip"), "{stdout}");
    let report = std::fs::read_to_string(tmp.path().join("tta/report.md")).unwrap();
    assert!(report.contains("| test-time augmentation | horizontal flip"), "{report}");

    // `fer-infer report` keeps the flip evaluation apart from the plain one of the same model.
    let (plain_dir, tta_dir, rep) =
        (tmp.path().join("plain"), tmp.path().join("tta"), tmp.path().join("report"));
    let (out, err, code) = eval_support::cli(&[
        "report",
        plain_dir.to_str().unwrap(),
        tta_dir.to_str().unwrap(),
        "--out",
        rep.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let table = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(table.contains("| m | ") && table.contains("| m + flip TTA | "), "{table}");

    let (_, err, code) = eval_support::cli(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--format",
        "image-folder",
        "--tta",
        "rotate",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tta") && err.contains("none, flip or ten-crop"), "{err}");
}

/// The four corner and the centre crops of 11/12 of each side (44 of 48 pixels), each also
/// mirrored: ten-crop TTA equals the renormalised geometric mean of ten plain evaluations of
/// those views written to disk.
#[test]
fn ten_crop_tta_averages_the_logits_of_ten_views_made_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = image_folder(&tmp.path().join("fer"), &FOLDERS, 2);
    let model = export(tmp.path(), "m", &FER7, 20.0, 1.0);
    let run = |data: &Path, out: &str, extra: &[&str]| {
        let mut args = vec!["--bootstrap", "0"];
        args.extend_from_slice(extra);
        eval(&model, data, "image-folder", &tmp.path().join(out), &args)
    };
    // The views by hand: crops of 11/12 of each side (44 of 48 pixels) at the four corners and
    // the centre, then mirrored or not. The images are 40–63 pixels wide and high.
    let crop = |img: &image::DynamicImage, k: usize| {
        let (w, h) = (img.width(), img.height());
        let (cw, ch) =
            ((w as f64 * 11.0 / 12.0).round() as u32, (h as f64 * 11.0 / 12.0).round() as u32);
        let (x, y) =
            [(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch), ((w - cw) / 2, (h - ch) / 2)][k];
        img.crop_imm(x, y, cw, ch)
    };
    let mut views = Vec::new();
    for k in 0..5 {
        for flip in [false, true] {
            let dir = tmp.path().join(format!("view{k}{flip}"));
            for class in FOLDERS {
                std::fs::create_dir_all(dir.join(class)).unwrap();
                for e in std::fs::read_dir(data.join(class)).unwrap() {
                    let path = e.unwrap().path();
                    let img = crop(&image::open(&path).unwrap(), k);
                    let img = if flip { img.fliph() } else { img };
                    img.save(dir.join(class).join(path.file_name().unwrap())).unwrap();
                }
            }
            let out = format!("out{k}{flip}");
            run(&dir, &out, &[]);
            views.push(probabilities(&tmp.path().join(out)));
        }
    }
    let (m, _) = run(&data, "tta", &["--tta", "ten-crop"]);
    let tta = probabilities(&tmp.path().join("tta"));
    assert_eq!(tta.len(), 14);
    for (i, t) in tta.iter().enumerate() {
        let g: Vec<f64> = (0..t.len())
            .map(|k| views.iter().map(|v| v[i][k].ln()).sum::<f64>() / views.len() as f64)
            .collect();
        let z: f64 = g.iter().map(|v| v.exp()).sum();
        for (k, (v, want)) in t.iter().zip(g.iter().map(|v| v.exp() / z)).enumerate() {
            assert!(
                (v - want).abs() < 1e-5,
                "sample {i} class {k}: {v} with tta, {want} from the views"
            );
        }
    }
    assert_eq!(m["settings"]["tta"], "ten_crop");
}
