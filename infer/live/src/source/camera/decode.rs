//! Raw camera frames to RGB: MJPEG through `image`'s JPEG decoder (which supplies the default
//! Huffman tables that webcam MJPEG frames leave out), YUYV and NV12 with the BT.601
//! limited-range matrix, RGB, BGR and grey as they are.

use image::{ImageFormat, RgbImage};

use super::{PixelFormat, RawFrame};

/// One BT.601 limited-range YUV pixel as RGB.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let (d, e) = (i32::from(u) - 128, i32::from(v) - 128);
    let clip = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [clip(c + 409 * e), clip(c - 100 * d - 208 * e), clip(c + 516 * d)]
}

/// Decodes `raw` to an RGB image; the message says what was wrong with it.
pub fn to_rgb(raw: &RawFrame) -> Result<RgbImage, String> {
    let (w, h) = (raw.width as usize, raw.height as usize);
    let need = match raw.format {
        PixelFormat::Mjpeg => 0,
        PixelFormat::Yuyv => w * h * 2,
        PixelFormat::Nv12 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        PixelFormat::Rgb | PixelFormat::Bgr => w * h * 3,
        PixelFormat::Gray => w * h,
    };
    if raw.data.len() < need {
        return Err(format!(
            "{} frame of {}×{} has {} bytes, needs {need}",
            raw.format.fourcc(),
            raw.width,
            raw.height,
            raw.data.len()
        ));
    }
    let d = &raw.data;
    let image = match raw.format {
        PixelFormat::Mjpeg => fer_data::image_file::decode_bytes(d, Some(ImageFormat::Jpeg))
            .map_err(|e| format!("MJPEG frame ({} bytes): {}", d.len(), e.to_string().trim_end()))?
            .to_rgb8(),
        PixelFormat::Yuyv => RgbImage::from_fn(raw.width, raw.height, |x, y| {
            let (x, y) = (x as usize, y as usize);
            let pair = (y * w + (x & !1)) * 2;
            let luma = d[pair + 2 * (x & 1)];
            image::Rgb(yuv_to_rgb(luma, d[pair + 1], d[pair + 3]))
        }),
        PixelFormat::Nv12 => RgbImage::from_fn(raw.width, raw.height, |x, y| {
            let (x, y) = (x as usize, y as usize);
            let uv = w * h + (y / 2) * 2 * w.div_ceil(2) + (x / 2) * 2;
            image::Rgb(yuv_to_rgb(d[y * w + x], d[uv], d[uv + 1]))
        }),
        PixelFormat::Rgb => RgbImage::from_raw(raw.width, raw.height, d[..need].to_vec())
            .ok_or("RGB frame of the wrong size")?,
        PixelFormat::Bgr => RgbImage::from_fn(raw.width, raw.height, |x, y| {
            let i = (y as usize * w + x as usize) * 3;
            image::Rgb([d[i + 2], d[i + 1], d[i]])
        }),
        PixelFormat::Gray => RgbImage::from_fn(raw.width, raw.height, |x, y| {
            let g = d[y as usize * w + x as usize];
            image::Rgb([g, g, g])
        }),
    };
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(format: PixelFormat, width: u32, height: u32, data: Vec<u8>) -> RawFrame {
        RawFrame { format, width, height, data }
    }

    #[test]
    fn bt601_primaries_and_extremes() {
        // Limited range: Y 16 is black, 235 white; the BT.601 codes of pure red, green, blue.
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 2);
        assert!(near(yuv_to_rgb(82, 90, 240), [255, 0, 0]), "{:?}", yuv_to_rgb(82, 90, 240));
        assert!(near(yuv_to_rgb(145, 54, 34), [0, 255, 0]), "{:?}", yuv_to_rgb(145, 54, 34));
        assert!(near(yuv_to_rgb(41, 240, 110), [0, 0, 255]), "{:?}", yuv_to_rgb(41, 240, 110));
    }

    #[test]
    fn yuyv_and_nv12_put_each_pixel_where_it_belongs() {
        // 4×2: the left half white, the right half black (luma only, neutral chroma).
        let luma = |x: usize| if x < 2 { 235 } else { 16 };
        let mut yuyv = Vec::new();
        for _ in 0..2 {
            for x in (0..4).step_by(2) {
                yuyv.extend([luma(x), 128, luma(x + 1), 128]);
            }
        }
        let mut nv12: Vec<u8> = (0..8).map(|i| luma(i % 4)).collect();
        nv12.extend([128; 4]);
        for f in [raw(PixelFormat::Yuyv, 4, 2, yuyv), raw(PixelFormat::Nv12, 4, 2, nv12)] {
            let img = to_rgb(&f).unwrap();
            for (x, y, p) in img.enumerate_pixels() {
                assert_eq!(p.0, [if x < 2 { 255 } else { 0 }; 3], "({x}, {y})");
            }
        }
    }

    #[test]
    fn mjpeg_frames_decode_and_short_or_broken_frames_are_explained() {
        let img = RgbImage::from_fn(32, 16, |x, _| image::Rgb([(x * 8) as u8, 100, 50]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .unwrap();
        let back = to_rgb(&raw(PixelFormat::Mjpeg, 32, 16, jpeg.clone())).unwrap();
        assert_eq!(back.dimensions(), (32, 16));
        let err: u32 =
            back.pixels().zip(img.pixels()).map(|(a, b)| a[0].abs_diff(b[0]) as u32).sum();
        assert!(err / (32 * 16) < 4, "mean error {}", err / (32 * 16));
        let cut = to_rgb(&raw(PixelFormat::Mjpeg, 32, 16, jpeg[..40].to_vec())).unwrap_err();
        assert!(cut.starts_with("MJPEG frame (40 bytes)"), "{cut}");
        let short = to_rgb(&raw(PixelFormat::Yuyv, 4, 2, vec![0; 10])).unwrap_err();
        assert_eq!(short, "YUYV frame of 4×2 has 10 bytes, needs 16");
    }
}
