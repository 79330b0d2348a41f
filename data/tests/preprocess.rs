//! Preprocessing against PIL and torchvision. Their answers on the seeded test images are
//! committed under `tests/golden/preprocess*` (`scripts/golden/make_golden.py preprocess`, with
//! the SHA-256 of each image's pixels), so this test needs no Python.

use std::path::Path;

use fer_data::preprocess::{output_len, preprocess, preprocess_gray_into, preprocess_into};
use fer_models_spec::{ColorMode, Preprocess, ResizeMethod};
use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use fer_test_support::{
    GOLDEN_INPUTS_VAR, assert_golden_inputs, dump_golden_input, golden_json, golden_path,
};

/// Smooth gradients plus sharp noise and a hard edge: the worst case for rounding.
fn pattern(w: u32, h: u32, channels: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::with_capacity((w * h) as usize * channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let smooth =
                    128.0 + 100.0 * ((x as f32 * 0.21 + c as f32).sin() * (y as f32 * 0.13).cos());
                let edge = if x > w / 2 { 60.0 } else { -60.0 };
                let noise: f32 = rng.gen_range(-40.0..40.0);
                v.push((smooth + edge + noise).clamp(0.0, 255.0) as u8);
            }
        }
    }
    v
}

fn pixel_units(size: usize, color: ColorMode, resize: ResizeMethod) -> Preprocess {
    let c = if color == ColorMode::Gray { 1 } else { 3 };
    Preprocess { input_size: size, color, resize, mean: vec![0.0; c], std: vec![1.0 / 255.0; c] }
}

struct Case {
    name: &'static str,
    image: DynamicImage,
    p: Preprocess,
}

/// The cases, small enough that their references are committed (`tests/golden/preprocess/`,
/// about 100 kB): upscaling (×2.3), downscaling (÷2.7), one axis each way, RGBA, the identity
/// resize (the luma formula exactly) and nearest-neighbour, each in gray and colour.
fn cases() -> Vec<Case> {
    let gray =
        |w, h, s| DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pattern(w, h, 1, s)).unwrap());
    let rgb =
        |w, h, s| DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pattern(w, h, 3, s)).unwrap());
    let rgba =
        |w, h, s| DynamicImage::ImageRgba8(RgbaImage::from_raw(w, h, pattern(w, h, 4, s)).unwrap());
    use ColorMode::{Gray, Rgb};
    use ResizeMethod::{Bilinear, Nearest};
    vec![
        Case { name: "gray12_up28", image: gray(12, 12, 1), p: pixel_units(28, Gray, Bilinear) },
        Case { name: "gray12_up28_rgb", image: gray(12, 12, 2), p: pixel_units(28, Rgb, Bilinear) },
        Case { name: "rgb75_down28", image: rgb(75, 75, 3), p: pixel_units(28, Rgb, Bilinear) },
        Case {
            name: "rgb75_down28_gray",
            image: rgb(75, 75, 4),
            p: pixel_units(28, Gray, Bilinear),
        },
        Case { name: "rgb32x20_28", image: rgb(32, 20, 5), p: pixel_units(28, Rgb, Bilinear) },
        Case { name: "gray32x20_28", image: gray(32, 20, 6), p: pixel_units(28, Gray, Bilinear) },
        Case { name: "rgba45x35_24", image: rgba(45, 35, 7), p: pixel_units(24, Rgb, Bilinear) },
        // Same size: the resize is the identity, so this checks the luma formula exactly.
        Case {
            name: "rgb24_same_gray",
            image: rgb(24, 24, 12),
            p: pixel_units(24, Gray, Bilinear),
        },
        Case {
            name: "rgba24_same_rgb",
            image: rgba(24, 24, 13),
            p: pixel_units(24, Rgb, Bilinear),
        },
        Case {
            name: "gray12_nearest28",
            image: gray(12, 12, 8),
            p: pixel_units(28, Gray, Nearest),
        },
        Case { name: "rgb75_nearest28", image: rgb(75, 75, 9), p: pixel_units(28, Rgb, Nearest) },
        Case {
            name: "rgb32x20_nearest28",
            image: rgb(32, 20, 10),
            p: pixel_units(28, Rgb, Nearest),
        },
    ]
}

fn parameters(c: &Case) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "size": c.p.input_size,
        "color": c.p.color,
        "resize": c.p.resize,
    })
}

/// The first step of `scripts/golden/make_golden.sh`: with `FER_GOLDEN_INPUTS` set, every
/// case's image (PNG) and parameters are written there for the reference script. Otherwise it
/// does nothing.
#[test]
fn golden_inputs_are_written_when_asked() {
    let Some(dir) = std::env::var_os(GOLDEN_INPUTS_VAR).filter(|v| !v.is_empty()) else {
        return;
    };
    let dir = Path::new(&dir).join("preprocess");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = cases();
    for c in &cases {
        c.image.save(dir.join(format!("{}.png", c.name))).unwrap();
    }
    let list: Vec<_> = cases.iter().map(parameters).collect();
    dump_golden_input("preprocess/cases.json", serde_json::to_string(&list).unwrap().as_bytes());
}

/// PIL's (u8) and torchvision's (f32) answers for `c`, after checking that the golden was
/// computed on this image with these parameters.
fn references(c: &Case) -> (Vec<f32>, Vec<f32>) {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let mut golden = golden_json(crate_dir, "preprocess.json")[c.name].clone();
    assert!(golden.is_object(), "preprocess.json has no case `{}` (make_golden.sh)", c.name);
    assert_golden_inputs(c.name, &golden, &[c.image.as_bytes()]);
    golden.as_object_mut().unwrap().remove("inputs_sha256");
    assert_eq!(golden, parameters(c), "{}: parameters differ from the golden's", c.name);
    let read = |ext: &str| {
        let path = golden_path(crate_dir, &format!("preprocess/{}.{ext}", c.name));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let pil: Vec<f32> = read("pil.u8").into_iter().map(f32::from).collect();
    let tv: Vec<f32> =
        read("tv.f32").chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    (pil, tv)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn resize_matches_pil_within_one_level_and_torchvision_within_1e3() {
    for c in &cases() {
        let ours = preprocess(&c.image, &c.p).unwrap();
        let (pil, tv) = references(c);
        let d_pil = max_abs(&ours, &pil);
        let rounded: Vec<f32> = ours.iter().map(|v| v.round()).collect();
        let d_round = max_abs(&rounded, &pil);
        let exact =
            rounded.iter().zip(&pil).filter(|(a, b)| a == b).count() as f32 / pil.len() as f32;
        let d_tv = max_abs(&ours, &tv);
        eprintln!(
            "{:22} vs PIL max {d_pil:.4} (rounded: max {d_round}, equal {:.2}%), vs torchvision max {d_tv:.6}",
            c.name,
            exact * 100.0
        );
        if c.image.width() as usize == c.p.input_size && c.image.height() as usize == c.p.input_size
        {
            assert!(
                d_pil < 1e-3,
                "{}: same-size conversion must equal PIL's convert, got {d_pil}",
                c.name
            );
        }
        match c.p.resize {
            ResizeMethod::Nearest => {
                assert_eq!(d_pil, 0.0, "{}: nearest must equal PIL exactly", c.name);
            }
            ResizeMethod::Bilinear => {
                // PIL rounds to u8 after the horizontal pass (≤ 0.5, carried through weights
                // summing to 1) and after the vertical pass (≤ 0.5), so ≤ 1.0 in total.
                assert!(d_pil <= 1.0 + 1e-3, "{}: {d_pil} pixel levels from PIL", c.name);
                assert!(d_round <= 1.0, "{}: rounded result {d_round} from PIL", c.name);
                // torchvision's antialiased float path is the same filter without rounding.
                assert!(d_tv <= 1e-3, "{}: {d_tv} from torchvision", c.name);
            }
        }
    }
}

#[test]
fn normalisation_and_gray_fast_path_agree_with_the_generic_path() {
    let g = GrayImage::from_raw(40, 30, pattern(40, 30, 1, 11)).unwrap();
    let p = Preprocess::imagenet(64, 1);
    let generic = preprocess(&DynamicImage::ImageLuma8(g.clone()), &p).unwrap();
    let mut fast = vec![0.0; output_len(&p)];
    preprocess_gray_into(&g, &p, &mut fast).unwrap();
    assert_eq!(generic, fast);
    // Normalisation is (v / 255 - mean) / std on the pixel-unit resize.
    let mut units = vec![0.0; 64 * 64];
    preprocess_gray_into(&g, &pixel_units(64, ColorMode::Gray, ResizeMethod::Bilinear), &mut units)
        .unwrap();
    let d = units.iter().zip(&generic).map(|(u, n)| ((u / 255.0 - 0.449) / 0.226 - n).abs());
    assert!(d.fold(0.0, f32::max) < 1e-4);
    // A gray image in Rgb mode is the same plane three times, each normalised per channel.
    let p3 = Preprocess::imagenet(64, 3);
    let rgb = preprocess(&DynamicImage::ImageLuma8(g), &p3).unwrap();
    for c in 0..3 {
        for (i, u) in units.iter().enumerate() {
            let want = (u / 255.0 - p3.mean[c]) / p3.std[c];
            assert!((rgb[c * 4096 + i] - want).abs() < 1e-4);
        }
    }
}

#[test]
fn invalid_parameters_and_buffers_are_errors_not_panics() {
    let img = DynamicImage::ImageLuma8(GrayImage::new(8, 8));
    let mut p = Preprocess::imagenet(16, 3);
    p.mean.pop();
    let e = preprocess(&img, &p).unwrap_err().to_string();
    assert!(e.contains("preprocess.mean"), "{e}");
    let mut p = Preprocess::imagenet(16, 1);
    p.std[0] = 0.0;
    assert!(preprocess(&img, &p).unwrap_err().to_string().contains("preprocess.std"));
    p = Preprocess::imagenet(0, 1);
    assert!(preprocess(&img, &p).unwrap_err().to_string().contains("input_size"));
    let p = Preprocess::imagenet(16, 1);
    let mut short = vec![0.0; 10];
    let e = preprocess_into(&img, &p, &mut short).unwrap_err().to_string();
    assert!(e.contains("needs 256"), "{e}");
}

#[test]
fn one_pixel_and_extreme_aspect_images_resize() {
    let p = pixel_units(7, ColorMode::Gray, ResizeMethod::Bilinear);
    let one = DynamicImage::ImageLuma8(GrayImage::from_pixel(1, 1, image::Luma([200])));
    assert!(preprocess(&one, &p).unwrap().iter().all(|v| (v - 200.0).abs() < 1e-3));
    let thin = DynamicImage::ImageLuma8(GrayImage::from_pixel(300, 2, image::Luma([17])));
    assert!(preprocess(&thin, &p).unwrap().iter().all(|v| (v - 17.0).abs() < 1e-3));
}

#[test]
fn gray_rgb_gives_every_channel_the_luma_of_colour_and_gray_images() {
    // A colour image under GrayRgb is the gray image (PIL's luma) replicated to 3 channels:
    // what a 3-channel model trained on a gray dataset (FER-2013) saw in training.
    let rgb = RgbImage::from_raw(9, 7, pattern(9, 7, 3, 11)).unwrap();
    let colour = DynamicImage::ImageRgb8(rgb.clone());
    // PIL's convert("L") (ITU-R 601), not the image crate's to_luma8 (Rec. 709).
    let luma = rgb.pixels().map(|q| {
        let [r, g, b] = q.0.map(u32::from);
        ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
    });
    let gray = DynamicImage::ImageLuma8(GrayImage::from_raw(9, 7, luma.collect()).unwrap());
    let mut p = Preprocess::imagenet(5, 3);
    p.color = ColorMode::GrayRgb;
    let from_colour = preprocess(&colour, &p).unwrap();
    let from_gray = preprocess(&gray, &p).unwrap();
    assert_eq!(from_colour, from_gray);
    // Channel c is the gray image normalised with mean[c], std[c].
    let mut one = Preprocess::imagenet(5, 1);
    let n = 25;
    for c in 0..3 {
        one.mean = vec![p.mean[c]];
        one.std = vec![p.std[c]];
        let want = preprocess(&gray, &one).unwrap();
        assert_eq!(&from_colour[c * n..(c + 1) * n], &want[..], "channel {c}");
    }
    // Rgb keeps the colour: the channels differ from the luma.
    p.color = ColorMode::Rgb;
    assert_ne!(preprocess(&colour, &p).unwrap(), from_colour);
}
