//! 8-bit pixel batches (`LoaderConfig::pixels`): normalised, they give the float batches of the
//! same seed up to the 8-bit rounding, with the same samples, labels and erased boxes.

use std::sync::Arc;

use fer_data::Emotion;
use fer_data::augment::AugmentConfig;
use fer_data::dataset::{Dataset, Sample, Target};
use fer_data::loader::{Batch, Images, Loader, LoaderConfig};
use fer_data::pixels::{EraseBox, PixelBatch, PixelSample};
use fer_models_spec::Preprocess;
use image::{DynamicImage, GrayImage, RgbImage};

/// Sample `i`: a 24×20 gradient, RGB (channels differ) when `i % 3 == 0`, else gray.
struct Mixed(usize);

impl Dataset for Mixed {
    fn classes(&self) -> &[Emotion] {
        &Emotion::ALL[..3]
    }
    fn len(&self) -> usize {
        self.0
    }
    fn label(&self, i: usize) -> usize {
        i % 3
    }
    fn source(&self, i: usize) -> String {
        format!("mixed/{i}.png")
    }
    fn load(&self, i: usize) -> fer_data::Result<Sample> {
        let v =
            move |x: u32, y: u32, c: u32| ((i as u32 * 13 + x * 9 + y * 5 + c * 70) % 256) as u8;
        let image = if i.is_multiple_of(3) {
            DynamicImage::ImageRgb8(RgbImage::from_fn(24, 20, |x, y| {
                image::Rgb([v(x, y, 0), v(x, y, 1), v(x, y, 2)])
            }))
        } else {
            DynamicImage::ImageLuma8(GrayImage::from_fn(24, 20, |x, y| image::Luma([v(x, y, 0)])))
        };
        Ok(Sample { image, target: Target::Class(i % 3), source: self.source(i) })
    }
}

fn batches(ds: &Arc<dyn Dataset>, p: &Preprocess, aug: &AugmentConfig, pixels: bool) -> Vec<Batch> {
    let cfg = LoaderConfig { batch_size: 8, workers: 2, seed: 11, pixels, ..Default::default() };
    let l = Loader::new(ds.clone(), (0..ds.len()).collect(), p.clone(), aug.clone(), cfg).unwrap();
    l.epoch(1).map(Result::unwrap).collect()
}

/// Largest difference that rounding a pixel to 8 bits can make after normalisation.
fn rounding_bound(p: &Preprocess) -> f32 {
    let min_std = p.std.iter().cloned().fold(f32::INFINITY, f32::min);
    0.5 / (255.0 * min_std) + 1e-5
}

fn compare(p: &Preprocess, aug: &AugmentConfig) -> (usize, usize) {
    let ds: Arc<dyn Dataset> = Arc::new(Mixed(29));
    let floats = batches(&ds, p, aug, false);
    let pixels = batches(&ds, p, aug, true);
    assert_eq!(floats.len(), pixels.len());
    let (mut erased, mut rgb_batches) = (0, 0);
    for (f, q) in floats.iter().zip(&pixels) {
        assert_eq!((&f.indices, &f.labels, f.shape), (&q.indices, &q.labels, q.shape));
        let want = f.images.normalized().unwrap();
        let Images::Pixels(px) = &q.images else { panic!("asked for pixels, got floats") };
        assert_eq!(px.data.len(), f.len() * px.planes * 16 * 16);
        rgb_batches += usize::from(px.planes == 3);
        let got = px.normalize(p).unwrap();
        assert_eq!(got.len(), want.len());
        let bound = rounding_bound(p);
        for (k, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= bound, "element {k}: {a} from pixels, {b} from floats");
        }
        for (j, e) in px.erase.iter().enumerate() {
            let Some(e) = e else { continue };
            erased += 1;
            // Erased pixels are exactly 0 on both sides, in every channel.
            let img = &want[j * p.channels() * 256..][..p.channels() * 256];
            for plane in img.chunks_exact(256) {
                assert!(plane[e.y * 16 + e.x..][..e.w].iter().all(|&v| v == 0.0));
            }
        }
    }
    (erased, rgb_batches)
}

#[test]
fn augmented_pixel_batches_normalise_to_the_float_batches() {
    let aug = AugmentConfig { erase_prob: 0.5, ..AugmentConfig::default() };
    let (erased, rgb) = compare(&Preprocess::imagenet(16, 3), &aug);
    assert!(erased >= 5, "only {erased} erased samples: the erasing path is barely exercised");
    assert!(rgb >= 1, "no batch held an RGB sample");
    let (erased, _) = compare(&Preprocess::imagenet(16, 1), &aug);
    assert!(erased >= 5);
}

#[test]
fn unaugmented_pixel_batches_are_the_preprocessing_rounded() {
    compare(&Preprocess::imagenet(16, 3), &AugmentConfig::off());
    compare(&Preprocess::imagenet(16, 3), &AugmentConfig::identity());
}

#[test]
fn a_gray_sample_beside_rgb_ones_is_replicated_to_three_planes() {
    let gray = PixelSample { data: vec![7; 4], planes: 1, erase: None };
    let e = EraseBox { y: 1, x: 0, h: 1, w: 2 };
    let rgb = PixelSample { data: (0..12).collect(), planes: 3, erase: Some(e) };
    let b = PixelBatch::pack(&[gray, rgb], 2);
    assert_eq!(b.planes, 3);
    assert_eq!(&b.data[..12], &[7; 12]);
    assert_eq!(&b.data[12..], &(0..12).collect::<Vec<u8>>()[..]);
    assert_eq!(b.erase_rows(), vec![0, 0, 0, 0, 1, 0, 1, 2]);
    let p = Preprocess::imagenet(2, 3);
    let x = b.normalize(&p).unwrap();
    let want = |v: f32, c: usize| (v / 255.0 - p.mean[c]) / p.std[c];
    assert!((x[0] - want(7.0, 0)).abs() < 1e-6 && (x[11] - want(7.0, 2)).abs() < 1e-6);
    // The second sample's bottom row is erased in every channel.
    let second = [
        want(0.0, 0),
        want(1.0, 0),
        0.0,
        0.0,
        want(4.0, 1),
        want(5.0, 1),
        0.0,
        0.0,
        want(8.0, 2),
        want(9.0, 2),
        0.0,
        0.0,
    ];
    for (k, (a, b)) in x[12..].iter().zip(second).enumerate() {
        assert!((a - b).abs() < 1e-6, "element {k}: {a} vs {b}");
        assert_eq!(*a == 0.0, b == 0.0, "element {k}");
    }
    let err = b.normalize(&Preprocess::imagenet(2, 1)).unwrap_err().to_string();
    assert!(err.contains("3 planes") && err.contains("[1, 2, 2]"), "{err}");
    let err = b.normalize(&Preprocess::imagenet(4, 3)).unwrap_err().to_string();
    assert!(err.contains("[3, 4, 4]"), "{err}");
}

#[test]
fn recycled_pixel_buffers_do_not_change_later_batches() {
    let ds: Arc<dyn Dataset> = Arc::new(Mixed(29));
    let (p, aug) = (Preprocess::imagenet(16, 3), AugmentConfig::default());
    let cfg =
        LoaderConfig { batch_size: 8, workers: 2, seed: 11, pixels: true, ..Default::default() };
    let l = Loader::new(ds.clone(), (0..ds.len()).collect(), p.clone(), aug.clone(), cfg).unwrap();
    for b in l.epoch(0) {
        l.recycle(b.unwrap());
    }
    let again: Vec<Batch> = l.epoch(1).map(Result::unwrap).collect();
    assert_eq!(again, batches(&ds, &p, &aug, true));
}
