//! Face alignment: the crop around a detection is rotated so the eyes are level (the frame is
//! not), squared with a margin, and sampled bilinearly; the classifier's own preprocessing
//! (from its ONNX metadata) then applies to the crop.

use image::{Rgb, RgbImage};

use crate::face::Face;

/// Crop side relative to the detection box side (the box hugs the face; FER crops include the
/// forehead and chin).
pub const MARGIN: f32 = 1.25;

/// The aligned square crop of `face` in `frame`, `side` pixels, with the eyes level. Pixels
/// outside the frame are black.
pub fn aligned_crop(frame: &RgbImage, face: &Face, side: u32) -> RgbImage {
    let [x0, y0, x1, y1] = face.bbox;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let extent = (x1 - x0).max(y1 - y0) * MARGIN;
    // Keypoints 0 and 1: the subject's right eye (image left) and left eye (image right).
    let [r, l] = [face.keypoints[0], face.keypoints[1]];
    let angle = (l[1] - r[1]).atan2(l[0] - r[0]);
    let (sin, cos) = angle.sin_cos();
    let step = extent / side as f32;
    RgbImage::from_fn(side, side, |u, v| {
        // Crop pixel → offset from the centre in frame units → rotate by the eye angle.
        let dx = (u as f32 + 0.5 - side as f32 / 2.0) * step;
        let dy = (v as f32 + 0.5 - side as f32 / 2.0) * step;
        let x = cx + dx * cos - dy * sin;
        let y = cy + dx * sin + dy * cos;
        bilinear(frame, x - 0.5, y - 0.5)
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

    fn face_with_eyes(r: [f32; 2], l: [f32; 2]) -> Face {
        Face {
            score: 1.0,
            bbox: [20.0, 20.0, 60.0, 60.0],
            keypoints: [r, l, [40.0; 2], [40.0; 2], r, l],
        }
    }

    #[test]
    fn level_eyes_give_an_axis_aligned_crop_of_the_box() {
        // A frame whose pixel value encodes x, so the crop shows which columns it read.
        let frame = RgbImage::from_fn(80, 80, |x, y| Rgb([x as u8 * 3, y as u8 * 3, 0]));
        let c = aligned_crop(&frame, &face_with_eyes([30.0, 35.0], [50.0, 35.0]), 50);
        // Extent 40 × 1.25 = 50 frame pixels from x = 15: crop pixel u reads x = 15 + u.
        assert_eq!(c.get_pixel(0, 25).0[0], 15 * 3);
        assert_eq!(c.get_pixel(49, 25).0[0], 64 * 3);
        assert_eq!(c.get_pixel(25, 0).0[1], 15 * 3);
    }

    #[test]
    fn tilted_eyes_are_levelled() {
        // A bright dot on each eye of a face tilted by 30°: after alignment both dots are on
        // the same crop row.
        let (r, l) = ([30.0f32, 30.0], [30.0 + 20.0 * 0.866, 30.0 + 20.0 * 0.5]);
        let frame = RgbImage::from_fn(80, 80, |x, y| {
            let near = |p: [f32; 2]| (x as f32 + 0.5 - p[0]).hypot(y as f32 + 0.5 - p[1]) < 2.0;
            if near(r) || near(l) { Rgb([255, 255, 255]) } else { Rgb([0, 0, 0]) }
        });
        let c = aligned_crop(&frame, &face_with_eyes(r, l), 100);
        let rows_with = |x0: u32, x1: u32| -> Vec<u32> {
            (0..100).filter(|&v| (x0..x1).any(|u| c.get_pixel(u, v).0[0] > 128)).collect()
        };
        let (left_rows, right_rows) = (rows_with(0, 50), rows_with(50, 100));
        assert!(!left_rows.is_empty() && !right_rows.is_empty());
        let mid = |v: &[u32]| (v[0] + v[v.len() - 1]) as i64 / 2;
        assert!((mid(&left_rows) - mid(&right_rows)).abs() <= 1, "{left_rows:?} {right_rows:?}");
    }
}
