//! Annotations drawn into the frame: a box per face (colour by class), above it a tag with the
//! label and confidence (`happiness 87%`), and under it a panel with one row per class: its
//! name and a bar whose length is its probability (the most probable class's name in white).
//! Text is the project's 5×7 bitmap font ([`super::font`]).

use image::{Rgb, RgbImage};

use super::font::{self, draw_text, text_height, text_width};
use super::{FaceResult, FrameResult};

/// Image pixels per font pixel of the label above each box.
pub const LABEL_SCALE: u32 = 2;
/// Image pixels per font pixel of the class names beside the bars.
pub const NAME_SCALE: u32 = 1;
/// Padding inside the tag and the panel.
pub const PAD: i64 = 3;
/// Height of one class row of the panel.
pub const ROW: i64 = font::GLYPH_H as i64 * NAME_SCALE as i64 + 3;
/// Longest bar (probability 1), in pixels.
pub const BAR: i64 = 60;
/// The panel's background.
pub const PANEL: Rgb<u8> = Rgb([30, 30, 30]);
/// Class names other than the most probable one.
pub const NAME_GREY: Rgb<u8> = Rgb([190, 190, 190]);
/// Box line width.
const LINE: i64 = 2;

/// A colour per class index (cycled).
pub fn class_colour(i: usize) -> Rgb<u8> {
    const C: [[u8; 3]; 8] = [
        [230, 57, 70],
        [106, 153, 78],
        [131, 56, 236],
        [255, 190, 11],
        [58, 134, 255],
        [251, 86, 7],
        [200, 200, 200],
        [0, 187, 249],
    ];
    Rgb(C[i % C.len()])
}

/// Black or white, whichever reads better on `bg`.
pub fn text_colour(bg: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = bg.0.map(u32::from);
    if 299 * r + 587 * g + 114 * b > 150_000 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) }
}

/// The tag's text for a face: `happiness 87%`.
pub fn label_text(f: &FaceResult) -> String {
    format!("{} {:.0}%", f.label, f.confidence * 100.0)
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, c);
        }
    }
}

/// Top-left corner of a `w × h` rectangle placed at `(x, y)`, moved inside a `width × height`
/// image where it can be.
fn inside(x: i64, y: i64, w: i64, h: i64, width: u32, height: u32) -> (i64, i64) {
    (x.min(width as i64 - w).max(0), y.min(height as i64 - h).max(0))
}

/// Where the tag of a face with box `bbox` goes in a `width × height` frame for `text`: its
/// rectangle `[x0, y0, x1, y1]`. Above the box, or inside its top when there is no room.
pub fn tag_rect(bbox: [f32; 4], text: &str, width: u32, height: u32) -> [i64; 4] {
    let [x0, y0, ..] = bbox.map(|v| v.round() as i64);
    let (w, h) =
        (text_width(text, LABEL_SCALE) as i64 + 2 * PAD, text_height(LABEL_SCALE) as i64 + 2 * PAD);
    let top = if y0 - h >= 0 { y0 - h } else { y0 + LINE };
    let (x, y) = inside(x0, top, w, h, width, height);
    [x, y, x + w, y + h]
}

/// Where the class panel of a face with box `bbox` goes: under the box, moved up into the
/// frame when it would run off the bottom. Returns `[x0, y0, x1, y1]` and the bars' left edge.
pub fn panel_rect(bbox: [f32; 4], labels: &[String], width: u32, height: u32) -> ([i64; 4], i64) {
    let [x0, _, _, y1] = bbox.map(|v| v.round() as i64);
    let names = labels.iter().map(|l| text_width(l, NAME_SCALE)).max().unwrap_or(0) as i64;
    let (w, h) = (names + BAR + 3 * PAD, labels.len() as i64 * ROW + PAD);
    let (x, y) = inside(x0, y1 + 2, w, h, width, height);
    ([x, y, x + w, y + h], x + 2 * PAD + names)
}

fn annotate_face(img: &mut RgbImage, f: &FaceResult, labels: &[String]) {
    let best = fer_infer::predict::top_k(&f.probs, 1).first().map_or(0, |b| b.0);
    let c = class_colour(best);
    let [x0, y0, x1, y1] = f.bbox.map(|v| v.round() as i64);
    fill(img, x0, y0, x1, y0 + LINE, c);
    fill(img, x0, y1 - LINE, x1, y1, c);
    fill(img, x0, y0, x0 + LINE, y1, c);
    fill(img, x1 - LINE, y0, x1, y1, c);

    let text = label_text(f);
    let (w, h) = img.dimensions();
    let [tx0, ty0, tx1, ty1] = tag_rect(f.bbox, &text, w, h);
    fill(img, tx0, ty0, tx1, ty1, c);
    draw_text(img, tx0 + PAD, ty0 + PAD, &text, LABEL_SCALE, text_colour(c));

    let ([px0, py0, px1, py1], bar_x) = panel_rect(f.bbox, labels, w, h);
    fill(img, px0, py0, px1, py1, PANEL);
    for (i, p) in f.probs.iter().enumerate() {
        let y = py0 + PAD + i as i64 * ROW;
        let name = labels.get(i).map_or("?", String::as_str);
        let colour = if i == best { Rgb([255, 255, 255]) } else { NAME_GREY };
        draw_text(img, px0 + PAD, y, name, NAME_SCALE, colour);
        let len = (p.clamp(0.0, 1.0) * BAR as f32).round() as i64;
        fill(img, bar_x, y, bar_x + BAR, y + ROW - 3, Rgb([70, 70, 70]));
        fill(img, bar_x, y, bar_x + len, y + ROW - 3, class_colour(i));
    }
}

/// Draws `r`'s faces into `img`.
pub fn annotate(img: &mut RgbImage, r: &FrameResult) {
    for f in &r.faces {
        annotate_face(img, f, &r.labels);
    }
}
