//! The PNG plots: they decode, have the documented sizes, and the bars, gaps, cells and lines
//! are drawn where the data puts them. Set `FER_PLOT_KEEP=DIR` to keep the PNGs for a look.

use std::path::PathBuf;

use fer_metrics::Bin;
use fer_metrics::plot::{
    BarGroup, CurveRow, bar_chart, confusion_heatmap, reliability_diagram, training_curves,
};
use image::{Rgb, RgbImage};

fn out_dir() -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("FER_PLOT_KEEP") {
        Some(d) => {
            std::fs::create_dir_all(&d).unwrap();
            (None, PathBuf::from(d))
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    }
}

fn open(p: &std::path::Path) -> RgbImage {
    image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8()
}

fn count(img: &RgbImage, f: impl Fn(&Rgb<u8>) -> bool) -> usize {
    img.pixels().filter(|p| f(p)).count()
}

/// Blue accuracy bars (31,119,180 at 85% over white).
fn bar_blue(p: &Rgb<u8>) -> bool {
    (p[0] as i32 - 65).abs() < 12
        && (p[1] as i32 - 139).abs() < 12
        && (p[2] as i32 - 191).abs() < 12
}

/// The light red of the gap (214,39,40 at 35% over white).
fn gap_red(p: &Rgb<u8>) -> bool {
    (p[0] as i32 - 240).abs() < 12
        && (p[1] as i32 - 179).abs() < 14
        && (p[2] as i32 - 180).abs() < 14
}

#[test]
fn reliability_diagram_draws_bars_gaps_and_counts() {
    let (_t, dir) = out_dir();
    let bins: Vec<Bin> = (0..15)
        .map(|j| {
            let lower = j as f64 / 15.0;
            let upper = (j + 1) as f64 / 15.0;
            let count = if j < 4 { 0 } else { (j * 37 % 90 + 5) as u64 };
            let confidence = (lower + upper) / 2.0;
            Bin { lower, upper, count, confidence, accuracy: confidence * 0.7 }
        })
        .collect();
    let path = dir.join("reliability.png");
    reliability_diagram(&bins, 0.1234, "model.onnx on test-set (val)", &path).unwrap();
    let img = open(&path);
    assert_eq!(img.dimensions(), fer_metrics::plot::reliability::SIZE);
    assert!(count(&img, bar_blue) > 5000, "accuracy bars missing");
    assert!(count(&img, gap_red) > 2000, "gap shading missing");
    // The leftmost 4 bins are empty: no bar in the first quarter of the plot's width.
    let empty_col = (img.width() as f64 * 0.20) as u32;
    assert!((0..img.height()).all(|y| !bar_blue(img.get_pixel(empty_col, y))));
}

#[test]
fn confusion_heatmap_colours_cells_by_row_fraction() {
    let (_t, dir) = out_dir();
    let names: Vec<String> =
        ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
            .map(String::from)
            .to_vec();
    let k = names.len();
    // Row i: all samples predicted correctly, except row 2 which is spread and row 5 empty.
    let m: Vec<Vec<u64>> = (0..k)
        .map(|i| match i {
            2 => vec![3, 3, 4, 0, 0, 0, 0],
            5 => vec![0; k],
            _ => (0..k).map(|j| if i == j { 20 + i as u64 } else { 0 }).collect(),
        })
        .collect();
    let path = dir.join("confusion.png");
    confusion_heatmap(&m, &names, "model.onnx on fer2013 (test)", &path).unwrap();
    let img = open(&path);
    let (w, h) = fer_metrics::plot::confusion::size(k);
    assert_eq!(img.dimensions(), (w, h));
    // Cell (i, j) corner pixel: 190 px label column, 96 px title band, square cells.
    let c = (w - 190 - 120) / k as u32;
    let at = |i: u32, j: u32| *img.get_pixel(190 + j * c + 4, 96 + i * c + 4);
    let dark = at(0, 0);
    assert!(dark[2] > 90 && dark[0] < 30, "100% cell should be dark blue: {dark:?}");
    let light = at(0, 1);
    assert!(light[0] > 240 && light[2] > 250, "0% cell should be near white: {light:?}");
    let mid = at(2, 2);
    assert!(mid[0] > 60 && mid[0] < 200, "40% cell should be mid blue: {mid:?}");
    let empty = at(5, 5);
    assert_eq!(empty, Rgb([235, 235, 235]), "a class without samples is grey");
}

#[test]
fn training_curves_draw_both_series_and_reject_bad_input() {
    let (_t, dir) = out_dir();
    let rows: Vec<CurveRow> = (1..=12)
        .map(|e| {
            let e = e as f64;
            CurveRow {
                epoch: e,
                train_loss: Some(2.0 / e.sqrt()),
                val_loss: Some(2.1 / e.sqrt() + 0.05 * e / 12.0),
                train_accuracy: Some(1.0 - 0.8 / e.sqrt()),
                val_accuracy: if e == 3.0 { None } else { Some(0.9 - 0.8 / e.sqrt()) },
            }
        })
        .collect();
    let path = dir.join("curves.png");
    training_curves(&rows, "fer2013_exp3_baseline (seed 0)", &path).unwrap();
    let img = open(&path);
    assert_eq!(img.dimensions(), fer_metrics::plot::curves::SIZE);
    let blue = count(&img, |p| *p == Rgb([31, 119, 180]));
    let orange = count(&img, |p| *p == Rgb([255, 127, 14]));
    assert!(blue > 1500 && orange > 1500, "train {blue} / val {orange} pixels");
    let bad = vec![CurveRow { epoch: 1.0, train_loss: Some(f64::NAN), ..CurveRow::default() }];
    let e = training_curves(&bad, "x", &dir.join("bad.png")).unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
    assert!(training_curves(&[], "x", &dir.join("none.png")).is_err());
}

#[test]
fn bar_chart_draws_bars_with_error_bars() {
    let (_t, dir) = out_dir();
    let groups = vec![
        BarGroup {
            label: "exp3_baseline @ fer2013 (n=3)".into(),
            values: vec![Some((0.62, 0.01)), Some((0.55, 0.02)), Some((0.04, 0.01))],
        },
        BarGroup {
            label: "exp5_hybrid_kd @ fer2013 (n=3)".into(),
            values: vec![Some((0.66, 0.012)), Some((0.60, 0.015)), None],
        },
        BarGroup {
            label: "exp1_finetune @ ckplus (n=1)".into(),
            values: vec![Some((0.91, 0.0)), Some((0.88, 0.0)), Some((0.08, 0.0))],
        },
    ];
    let metrics = ["accuracy", "macro_f1", "ece"];
    let path = dir.join("bars.png");
    bar_chart(&metrics, &groups, "accuracy, macro-F1, ECE (mean ± std over seeds)", &path).unwrap();
    let img = open(&path);
    assert_eq!(img.dimensions(), fer_metrics::plot::bars::size(3, &groups));
    assert!(count(&img, bar_blue) > 3000, "first group's bars missing");
    let wrong = vec![BarGroup { label: "x".into(), values: vec![None] }];
    assert!(bar_chart(&metrics, &wrong, "t", &dir.join("w.png")).is_err());
}
