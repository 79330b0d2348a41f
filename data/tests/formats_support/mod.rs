//! Fixture writers shared by the `formats*` tests: tiny images and label files in a tempdir.

#![allow(dead_code)]

use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};

/// The gray value of pixel (x, y) of fixture image `seed`.
pub fn px(seed: u32, x: u32, y: u32) -> u8 {
    ((seed * 37 + x * 5 + y * 11) % 256) as u8
}

/// Writes a `w`×`h` gray PNG whose pixels are [`px`]`(seed, x, y)`, creating folders.
pub fn png(path: &Path, w: u32, h: u32, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_fn(w, h, |x, y| Luma([px(seed, x, y)])).save(path).unwrap();
}

/// Writes a `w`×`h` RGB JPEG, creating folders.
pub fn jpeg(path: &Path, w: u32, h: u32, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(w, h, |x, y| Rgb([px(seed, x, y), 128, 64])).save(path).unwrap();
}

/// Writes text to a file, creating folders.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The 48×48 pixels of FER fixture row `seed`, row-major.
pub fn fer_pixels(seed: u32) -> Vec<u8> {
    (0..48 * 48).map(|i| px(seed, i % 48, i / 48)).collect()
}

/// One `emotion,pixels,Usage` data line.
pub fn fer_line(emotion: &str, pixels: &[u8], usage: &str) -> String {
    let p: Vec<String> = pixels.iter().map(|v| v.to_string()).collect();
    format!("{emotion},{},{usage}\n", p.join(" "))
}

/// Truncates a file to its first `keep` bytes.
pub fn truncate(path: &Path, keep: usize) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..keep]).unwrap();
}
