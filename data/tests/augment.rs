//! Seeded augmentation: determinism, identity, flip, rotation, jitter and erasing.

use fer_data::augment::{AugmentConfig, Augmenter, SampleKey};
use fer_data::preprocess::preprocess;
use fer_models_spec::Preprocess;
use image::{DynamicImage, GrayImage, RgbImage};

fn face_like(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 5 % 256) as u8, (y * 7 % 256) as u8, ((x * y) % 251) as u8])
    }))
}

fn key(epoch: u64, index: u64) -> SampleKey {
    SampleKey { seed: 42, epoch, index }
}

#[test]
fn same_key_gives_identical_output_and_other_keys_differ() {
    let aug = Augmenter::new(Preprocess::imagenet(56, 3), AugmentConfig::default()).unwrap();
    let img = face_like(48, 48);
    let a = aug.apply(&img, key(3, 17)).unwrap();
    assert_eq!(a, aug.apply(&img, key(3, 17)).unwrap());
    assert_ne!(a, aug.apply(&img, key(4, 17)).unwrap(), "another epoch draws anew");
    assert_ne!(a, aug.apply(&img, key(3, 18)).unwrap(), "another sample draws anew");
    let other_seed = SampleKey { seed: 43, ..key(3, 17) };
    assert_ne!(a, aug.apply(&img, other_seed).unwrap());
}

#[test]
fn disabled_and_identity_configs_equal_preprocess_exactly() {
    for (img, p) in [
        (face_like(64, 40), Preprocess::imagenet(56, 3)),
        (face_like(48, 48), Preprocess::imagenet(112, 1)),
        (
            DynamicImage::ImageLuma8(GrayImage::from_fn(30, 50, |x, y| {
                image::Luma([(x * y) as u8])
            })),
            Preprocess::imagenet(40, 3),
        ),
    ] {
        let want = preprocess(&img, &p).unwrap();
        for cfg in [AugmentConfig::off(), AugmentConfig::identity()] {
            let aug = Augmenter::new(p.clone(), cfg).unwrap();
            assert_eq!(aug.apply(&img, key(0, 1)).unwrap(), want);
        }
        // A full-image crop (scale 1, ratio 1 on a square image) is the identity too.
        if img.width() == img.height() {
            let cfg = AugmentConfig {
                crop_prob: 1.0,
                crop_scale: [1.0, 1.0],
                crop_ratio: [1.0, 1.0],
                ..AugmentConfig::identity()
            };
            let aug = Augmenter::new(p.clone(), cfg).unwrap();
            assert_eq!(aug.apply(&img, key(5, 9)).unwrap(), want);
        }
    }
}

#[test]
fn flip_mirrors_every_row_of_every_channel() {
    let p = Preprocess::imagenet(20, 3);
    let img = face_like(33, 27);
    let plain = preprocess(&img, &p).unwrap();
    let cfg = AugmentConfig { hflip_prob: 1.0, ..AugmentConfig::identity() };
    let flipped = Augmenter::new(p, cfg).unwrap().apply(&img, key(0, 0)).unwrap();
    for (row, frow) in plain.chunks_exact(20).zip(flipped.chunks_exact(20)) {
        let mirrored: Vec<f32> = row.iter().rev().copied().collect();
        assert_eq!(frow, &mirrored[..]);
    }
    // With probability 0.5 about half the samples are flipped.
    let cfg = AugmentConfig { hflip_prob: 0.5, ..AugmentConfig::identity() };
    let aug = Augmenter::new(Preprocess::imagenet(20, 3), cfg).unwrap();
    let n = (0..400).filter(|&i| aug.apply(&img, key(1, i)).unwrap() != plain).count();
    assert!((150..=250).contains(&n), "{n} of 400 flipped");
}

#[test]
fn rotation_keeps_a_constant_image_and_jitter_scales_brightness_within_range() {
    let p = Preprocess { input_size: 32, ..Preprocess::imagenet(32, 1) };
    let img = DynamicImage::ImageLuma8(GrayImage::from_pixel(48, 48, image::Luma([100])));
    let plain = preprocess(&img, &p).unwrap();
    let cfg =
        AugmentConfig { rotate_degrees: 180.0, rotate_fill: 100.0, ..AugmentConfig::identity() };
    let aug = Augmenter::new(p.clone(), cfg).unwrap();
    for i in 0..5 {
        let r = aug.apply(&img, key(0, i)).unwrap();
        assert!(r.iter().zip(&plain).all(|(a, b)| (a - b).abs() < 1e-4));
    }
    // Fill 0 shows in the corners of a rotated constant image.
    let cfg = AugmentConfig { rotate_degrees: 30.0, ..AugmentConfig::identity() };
    let aug = Augmenter::new(p.clone(), cfg).unwrap();
    let zero = (0.0 - 0.449) / 0.226;
    let corners = (0..20)
        .map(|i| aug.apply(&img, key(0, i)).unwrap())
        .filter(|r| (r[0] - zero).abs() < 0.5 || (r[31] - zero).abs() < 0.5)
        .count();
    assert!(corners >= 10, "only {corners} of 20 rotations show fill in a corner");
    let cfg = AugmentConfig { brightness: 0.5, ..AugmentConfig::identity() };
    let aug = Augmenter::new(p, cfg).unwrap();
    let mut seen = Vec::new();
    for i in 0..50 {
        let r = aug.apply(&img, key(0, i)).unwrap();
        let pixel = (r[0] * 0.226 + 0.449) * 255.0;
        assert!(
            r.iter().all(|v| (v - r[0]).abs() < 1e-4),
            "brightness keeps a constant image constant"
        );
        assert!((49.9..=150.1).contains(&pixel), "{pixel}");
        seen.push(pixel);
    }
    let spread = seen.iter().cloned().fold(f32::MIN, f32::max)
        - seen.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 50.0, "factors should spread over [0.5, 1.5], got spread {spread}");
}

#[test]
fn erasing_zeroes_one_rectangle_of_the_configured_area() {
    let s = 64;
    let p = Preprocess::imagenet(s, 1);
    let img = DynamicImage::ImageLuma8(GrayImage::from_pixel(48, 48, image::Luma([200])));
    let cfg = AugmentConfig { erase_prob: 0.5, ..AugmentConfig::identity() };
    let aug = Augmenter::new(p, cfg.clone()).unwrap();
    let (mut erased, mut fractions) = (0, Vec::new());
    for i in 0..400 {
        let r = aug.apply(&img, key(2, i)).unwrap();
        let zeros: Vec<usize> = (0..s * s).filter(|&j| r[j] == 0.0).collect();
        if zeros.is_empty() {
            continue;
        }
        erased += 1;
        let (ys, xs): (Vec<_>, Vec<_>) = zeros.iter().map(|j| (j / s, j % s)).unzip();
        let (h, w) = (
            ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1,
            xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1,
        );
        assert_eq!(h * w, zeros.len(), "the erased pixels form one full rectangle");
        let frac = zeros.len() as f64 / (s * s) as f64;
        // Sides are rounded to whole pixels: allow that slack around [0.02, 0.2].
        assert!((0.015..=0.22).contains(&frac), "erased fraction {frac}");
        let ratio = h as f64 / w as f64;
        assert!((0.2..=4.5).contains(&ratio), "aspect {ratio}");
        fractions.push(frac);
    }
    assert!((160..=240).contains(&erased), "{erased} of 400 erased at p = 0.5");
    let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
    // Area uniform in [0.02, 0.2]: mean 0.11.
    assert!((0.09..=0.13).contains(&mean), "mean erased fraction {mean}");
}

#[test]
fn config_parses_with_defaults_and_rejects_unknown_and_bad_fields() {
    let cfg: AugmentConfig = serde_json::from_str(r#"{"hflip_prob": 0.3}"#).unwrap();
    assert_eq!(cfg, AugmentConfig { hflip_prob: 0.3, ..AugmentConfig::default() });
    let e = serde_json::from_str::<AugmentConfig>(r#"{"hflip": 0.3}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `hflip`"), "{e}");
    let bad = AugmentConfig { crop_scale: [0.9, 0.5], ..AugmentConfig::default() };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("augment.crop_scale"), "{e}");
    let bad = AugmentConfig { erase_prob: 1.5, ..AugmentConfig::default() };
    assert!(Augmenter::new(Preprocess::imagenet(8, 1), bad).is_err());
}
