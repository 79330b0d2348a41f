//! The text drawn into live frames, read back from the pixels: each 5×7 cell where the text
//! is found is matched against the font's glyphs, so the test fails if the label is missing,
//! misplaced, garbled or not the one asked for.

use fer_live::draw::{self, BAR, NAME_GREY, PAD, ROW, annotate, class_colour};
use fer_live::font::{ADVANCE, GLYPH_H, GLYPH_W, GLYPHS};
use fer_live::{FaceResult, FrameResult, Timings};
use image::{Rgb, RgbImage};

const LABELS: [&str; 7] =
    ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"];
const BG: Rgb<u8> = Rgb([128, 128, 128]);

fn frame(bbox: [f32; 4], probs: [f32; 7]) -> FrameResult {
    let best = (0..7).max_by(|a, b| probs[*a].total_cmp(&probs[*b])).unwrap();
    FrameResult {
        frame: 0,
        path: None,
        size: [320, 240],
        faces: vec![FaceResult {
            id: 0,
            score: 0.9,
            bbox,
            label: LABELS[best].into(),
            confidence: probs[best],
            probs: probs.to_vec(),
        }],
        labels: LABELS.map(String::from).to_vec(),
        truth: None,
        ms: Timings::default(),
    }
}

/// Top-left corner of the pixels in `fg` within rows `y0..y1`, columns `x0..x1`.
fn origin(
    img: &RgbImage,
    fg: &[Rgb<u8>],
    (x0, x1): (u32, u32),
    (y0, y1): (u32, u32),
) -> (u32, u32) {
    let lit: Vec<(u32, u32)> = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|(x, y)| fg.contains(img.get_pixel(*x, *y)))
        .collect();
    assert!(!lit.is_empty(), "no text in columns {x0}..{x1}, rows {y0}..{y1}");
    (lit.iter().map(|p| p.0).min().unwrap(), lit.iter().map(|p| p.1).min().unwrap())
}

/// Reads `n` characters at `scale` from `(x, y)`: each font pixel sampled at its centre.
fn read(img: &RgbImage, (x, y): (u32, u32), scale: u32, n: usize, fg: &[Rgb<u8>]) -> String {
    (0..n as u32)
        .map(|i| {
            let mut rows = [0u8; 7];
            for (r, bits) in rows.iter_mut().enumerate() {
                for c in 0..GLYPH_W {
                    let px = x + (i * ADVANCE + c) * scale + scale / 2;
                    let py = y + r as u32 * scale + scale / 2;
                    let on = px < img.width() && fg.contains(img.get_pixel(px, py));
                    *bits |= u8::from(on) << (GLYPH_W - 1 - c);
                }
            }
            GLYPHS.iter().find(|(_, g)| *g == rows).map_or('¿', |(c, _)| *c)
        })
        .collect()
}

#[test]
fn label_and_confidence_above_the_box_and_class_names_beside_the_bars() {
    let mut img = RgbImage::from_pixel(320, 240, BG);
    let probs = [0.02, 0.01, 0.03, 0.87, 0.04, 0.02, 0.01];
    let r = frame([60.0, 50.0, 160.0, 140.0], probs);
    annotate(&mut img, &r);
    // Happiness' tag is yellow, so its text is black; nothing else in the frame is black.
    let ink = draw::text_colour(class_colour(3));
    assert_eq!(ink, Rgb([0, 0, 0]));
    let at = origin(&img, &[ink], (0, 320), (0, 50));
    assert!(at.0 >= 60 && at.0 <= 60 + PAD as u32, "label starts at x {}", at.0);
    assert!(at.1 + GLYPH_H * draw::LABEL_SCALE <= 50, "label at y {} runs into the box", at.1);
    assert_eq!(read(&img, at, draw::LABEL_SCALE, 13, &[ink]), "HAPPINESS 87%");

    // Names under the box, one row each, the most probable in white.
    let names = [NAME_GREY, Rgb([255, 255, 255])];
    let first = origin(&img, &names, (0, 320), (141, 240));
    for (i, label) in LABELS.iter().enumerate() {
        let at = (first.0, first.1 + i as u32 * ROW as u32);
        let want = if i == 3 { Rgb([255, 255, 255]) } else { NAME_GREY };
        assert_eq!(read(&img, at, 1, label.len(), &[want]), label.to_uppercase(), "row {i}");
        // Its bar, right of the longest name, as long as the probability.
        let lit = (at.0..320).filter(|x| img.get_pixel(*x, at.1 + 2) == &class_colour(i)).count();
        let expect = (probs[i] * BAR as f32).round() as usize;
        assert_eq!(lit, expect, "bar of {label}");
    }
}

#[test]
fn a_box_at_the_top_gets_its_label_inside_and_the_panel_stays_in_the_frame() {
    let mut img = RgbImage::from_pixel(320, 240, BG);
    let probs = [0.9, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01];
    annotate(&mut img, &frame([200.0, 2.0, 300.0, 200.0], probs));
    let ink = draw::text_colour(class_colour(0));
    let at = origin(&img, &[ink], (200, 320), (0, 30));
    assert!(at.1 > 2, "the label is inside the box");
    assert_eq!(read(&img, at, draw::LABEL_SCALE, 9, &[ink]), "ANGER 90%");
    // The panel would run off the bottom (200 + 73 > 240): it is moved up, every row readable.
    let names = [NAME_GREY, Rgb([255, 255, 255])];
    let first = origin(&img, &names, (200, 320), (100, 240));
    for (i, label) in LABELS.iter().enumerate() {
        let at = (first.0, first.1 + i as u32 * ROW as u32);
        assert!(at.1 + GLYPH_H <= 240, "row {i} at y {} is cut off", at.1);
        assert_eq!(read(&img, at, 1, label.len(), &names), label.to_uppercase(), "row {i}");
    }
}
