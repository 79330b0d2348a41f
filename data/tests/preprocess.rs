//! Preprocessing against PIL and torchvision, run in the venv at test time.

use std::path::Path;
use std::process::Command;

use fer_data::preprocess::{output_len, preprocess, preprocess_gray_into, preprocess_into};
use fer_models_spec::{ColorMode, Preprocess, ResizeMethod};
use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use fer_test_support::python;

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
        Case { name: "gray48_up112", image: gray(48, 48, 1), p: pixel_units(112, Gray, Bilinear) },
        Case {
            name: "gray48_up112_rgb",
            image: gray(48, 48, 2),
            p: pixel_units(112, Rgb, Bilinear),
        },
        Case {
            name: "rgb300_down112",
            image: rgb(300, 300, 3),
            p: pixel_units(112, Rgb, Bilinear),
        },
        Case {
            name: "rgb300_down112_gray",
            image: rgb(300, 300, 4),
            p: pixel_units(112, Gray, Bilinear),
        },
        Case { name: "rgb64x40_56", image: rgb(64, 40, 5), p: pixel_units(56, Rgb, Bilinear) },
        Case { name: "gray64x40_56", image: gray(64, 40, 6), p: pixel_units(56, Gray, Bilinear) },
        Case { name: "rgba90x70_48", image: rgba(90, 70, 7), p: pixel_units(48, Rgb, Bilinear) },
        // Same size: the resize is the identity, so this checks the luma formula exactly.
        Case {
            name: "rgb48_same_gray",
            image: rgb(48, 48, 12),
            p: pixel_units(48, Gray, Bilinear),
        },
        Case {
            name: "rgba48_same_rgb",
            image: rgba(48, 48, 13),
            p: pixel_units(48, Rgb, Bilinear),
        },
        Case {
            name: "gray48_nearest112",
            image: gray(48, 48, 8),
            p: pixel_units(112, Gray, Nearest),
        },
        Case {
            name: "rgb300_nearest112",
            image: rgb(300, 300, 9),
            p: pixel_units(112, Rgb, Nearest),
        },
        Case {
            name: "rgb64x40_nearest56",
            image: rgb(64, 40, 10),
            p: pixel_units(56, Rgb, Nearest),
        },
    ]
}

const SCRIPT: &str = r#"
import json, sys, numpy as np, torch
from PIL import Image
from torchvision.transforms import functional as F, InterpolationMode
d = sys.argv[1]
for c in json.load(open(f"{d}/cases.json")):
    im = Image.open(f"{d}/{c['name']}.png")
    im = im.convert("L" if c["color"] == "gray" else "RGB")
    size = (c["size"], c["size"])
    rs = Image.BILINEAR if c["resize"] == "bilinear" else Image.NEAREST
    a = np.asarray(im.resize(size, rs), dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    np.ascontiguousarray(a).tofile(f"{d}/{c['name']}.pil")
    t = torch.from_numpy(np.asarray(im, dtype=np.float32).copy())
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    mode = InterpolationMode.BILINEAR if c["resize"] == "bilinear" else InterpolationMode.NEAREST
    o = F.resize(t, list(size), interpolation=mode, antialias=True)
    o.contiguous().numpy().astype(np.float32).tofile(f"{d}/{c['name']}.tv")
"#;

fn run_references(dir: &Path, cases: &[Case]) {
    let list: Vec<_> = cases
        .iter()
        .map(|c| {
            c.image.save(dir.join(format!("{}.png", c.name))).unwrap();
            serde_json::json!({
                "name": c.name,
                "size": c.p.input_size,
                "color": c.p.color,
                "resize": c.p.resize,
            })
        })
        .collect();
    std::fs::write(dir.join("cases.json"), serde_json::to_string(&list).unwrap()).unwrap();
    let out = Command::new(python()).arg("-c").arg(SCRIPT).arg(dir).output().expect("venv python");
    assert!(
        out.status.success(),
        "reference script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn resize_matches_pil_within_one_level_and_torchvision_within_1e3() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    run_references(dir.path(), &cases);
    for c in &cases {
        let ours = preprocess(&c.image, &c.p).unwrap();
        let pil: Vec<f32> = std::fs::read(dir.path().join(format!("{}.pil", c.name)))
            .unwrap()
            .into_iter()
            .map(f32::from)
            .collect();
        let tv: Vec<f32> = std::fs::read(dir.path().join(format!("{}.tv", c.name)))
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
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
