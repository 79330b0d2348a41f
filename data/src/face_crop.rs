//! The toolkit's aligned face crop (`fer.crop` kind `aligned`, see
//! `fer_models_spec::crop`): the square around a detected face, rotated so the eyes are level
//! (the image is not), its side a margin times the detection box's longer side, sampled
//! bilinearly. The model's own preprocessing then applies to the crop.
//!
//! One implementation for every user: the live demo, `fer-infer predict` and `eval --faces` on
//! photos, and the datasets of crops `fer-infer data faces` writes for training. It needs only
//! the detector's box and eye landmarks, so it lives here, beside the preprocessing, and not
//! with the detector.

use image::{Rgb, RgbImage};

/// Where a crop comes from: a square of side `extent` around `center`, rotated by `angle`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropBox {
    /// Centre `[x, y]` in image pixels.
    pub center: [f32; 2],
    /// Side in image pixels.
    pub extent: f32,
    /// Rotation in radians (the angle of the line from the right eye to the left eye).
    pub angle: f32,
}

impl CropBox {
    /// The crop of a detection: `bbox` `[x0, y0, x1, y1]`, the subject's right eye (image left)
    /// and left eye, and the margin (crop side / box's longer side).
    pub fn of_face(bbox: [f32; 4], right_eye: [f32; 2], left_eye: [f32; 2], margin: f32) -> Self {
        let [x0, y0, x1, y1] = bbox;
        let (r, l) = (right_eye, left_eye);
        CropBox {
            center: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
            extent: (x1 - x0).max(y1 - y0) * margin,
            angle: (l[1] - r[1]).atan2(l[0] - r[0]),
        }
    }

    /// The image point that crop pixel centre `(u + 0.5, v + 0.5)` of a `side`-px crop samples.
    pub fn source_point(&self, u: f32, v: f32, side: u32) -> [f32; 2] {
        let step = self.extent / side as f32;
        let (sin, cos) = self.angle.sin_cos();
        let dx = (u + 0.5 - side as f32 / 2.0) * step;
        let dy = (v + 0.5 - side as f32 / 2.0) * step;
        [self.center[0] + dx * cos - dy * sin, self.center[1] + dx * sin + dy * cos]
    }
}

/// The `side` × `side` crop of `img` described by `b`. Pixels outside the image are black.
pub fn aligned_crop(img: &RgbImage, b: &CropBox, side: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |u, v| {
        let [x, y] = b.source_point(u as f32, v as f32, side);
        bilinear(img, x - 0.5, y - 0.5)
    })
}

fn bilinear(img: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let px = |xx: i64, yy: i64| -> [f32; 3] {
        if xx < 0 || yy < 0 || xx >= w || yy >= h {
            [0.0; 3]
        } else {
            img.get_pixel(xx as u32, yy as u32).0.map(f32::from)
        }
    };
    let (a, b, c, d) = (px(x0, y0), px(x0 + 1, y0), px(x0, y0 + 1), px(x0 + 1, y0 + 1));
    let mut out = [0u8; 3];
    for i in 0..3 {
        let top = a[i] * (1.0 - fx) + b[i] * fx;
        let bottom = c[i] * (1.0 - fx) + d[i] * fx;
        out[i] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: [f32; 4] = [20.0, 20.0, 60.0, 60.0];

    #[test]
    fn level_eyes_give_an_axis_aligned_crop_of_the_box() {
        // An image whose pixel value encodes x and y, so the crop shows where it read.
        let img = RgbImage::from_fn(80, 80, |x, y| Rgb([x as u8 * 3, y as u8 * 3, 0]));
        let b = CropBox::of_face(BOX, [30.0, 35.0], [50.0, 35.0], 1.25);
        let c = aligned_crop(&img, &b, 50);
        // Extent 40 × 1.25 = 50 image pixels from x = 15: crop pixel u reads x = 15 + u.
        assert_eq!(c.get_pixel(0, 25).0[0], 15 * 3);
        assert_eq!(c.get_pixel(49, 25).0[0], 64 * 3);
        assert_eq!(c.get_pixel(25, 0).0[1], 15 * 3);
    }

    #[test]
    fn the_margin_scales_the_crop_around_the_box_centre() {
        let b = CropBox::of_face(BOX, [30.0, 35.0], [50.0, 35.0], 2.0);
        assert_eq!(b.extent, 80.0);
        assert_eq!(b.source_point(0.0, 0.0, 80), [0.5, 0.5]);
    }

    #[test]
    fn tilted_eyes_are_levelled() {
        // A bright dot on each eye of a face tilted by 30°: after alignment both dots are on
        // the same crop row.
        let (r, l) = ([30.0f32, 30.0], [30.0 + 20.0 * 0.866, 30.0 + 20.0 * 0.5]);
        let img = RgbImage::from_fn(80, 80, |x, y| {
            let near = |p: [f32; 2]| (x as f32 + 0.5 - p[0]).hypot(y as f32 + 0.5 - p[1]) < 2.0;
            if near(r) || near(l) { Rgb([255, 255, 255]) } else { Rgb([0, 0, 0]) }
        });
        let c = aligned_crop(&img, &CropBox::of_face(BOX, r, l, 1.25), 100);
        let rows_with = |x0: u32, x1: u32| -> Vec<u32> {
            (0..100).filter(|&v| (x0..x1).any(|u| c.get_pixel(u, v).0[0] > 128)).collect()
        };
        let (left_rows, right_rows) = (rows_with(0, 50), rows_with(50, 100));
        assert!(!left_rows.is_empty() && !right_rows.is_empty());
        let mid = |v: &[u32]| (v[0] + v[v.len() - 1]) as i64 / 2;
        assert!((mid(&left_rows) - mid(&right_rows)).abs() <= 1, "{left_rows:?} {right_rows:?}");
    }
}
