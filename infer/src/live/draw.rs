//! Annotations drawn into the frame: a box per face (colour by class) and, under it, one bar per
//! class whose length is the class probability (the most probable class highlighted).

use image::{Rgb, RgbImage};

use super::FrameResult;

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

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, c);
        }
    }
}

/// Draws `r`'s faces into `img`.
pub fn annotate(img: &mut RgbImage, r: &FrameResult) {
    for f in &r.faces {
        let best =
            f.probs.iter().enumerate().fold(0, |b, (i, p)| if *p > f.probs[b] { i } else { b });
        let c = class_colour(best);
        let [x0, y0, x1, y1] = f.bbox.map(|v| v.round() as i64);
        let t = 2;
        fill(img, x0, y0, x1, y0 + t, c);
        fill(img, x0, y1 - t, x1, y1, c);
        fill(img, x0, y0, x0 + t, y1, c);
        fill(img, x1 - t, y0, x1, y1, c);
        // Probability bars under the box, 4 px per class.
        let width = (x1 - x0).max(40);
        for (i, p) in f.probs.iter().enumerate() {
            let y = y1 + 3 + 5 * i as i64;
            fill(img, x0, y, x0 + width, y + 4, Rgb([30, 30, 30]));
            let len = (*p * width as f32).round() as i64;
            fill(img, x0, y, x0 + len, y + 4, class_colour(i));
        }
    }
}
