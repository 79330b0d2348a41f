//! The device data path (`data.device_data`) against the CPU loader it replaces: the same
//! samples, labels and images (within interpolation rounding) for the same seed and epoch,
//! parameters distributed as the config says, validation input identical, and a run that
//! trains the same way on both paths. Runs on libtorch's CPU device; the CUDA variant is
//! `#[ignore]`d where no GPU exists.

use std::sync::Arc;

use fer_data::augment::{AugmentConfig, Augmenter, SampleKey};
use fer_data::loader::{Loader, LoaderConfig};
use fer_data::{Dataset, Emotion, Sample, Target};
use fer_models_spec::{ColorMode, Preprocess, ResizeMethod};
use fer_train::trainer::resident::{ResidentTrain, ResidentVal};
use image::{DynamicImage, GrayImage, RgbImage};
use tch::{Device, Kind, Tensor};

/// Smooth shapes plus noise, so interpolation, rotation and jitter all change pixels.
struct Faces {
    rgb: bool,
    n: usize,
    side: u32,
}

impl Dataset for Faces {
    fn classes(&self) -> &[Emotion] {
        &Emotion::ALL[..7]
    }
    fn len(&self) -> usize {
        self.n
    }
    fn label(&self, i: usize) -> usize {
        i % 7
    }
    fn source(&self, i: usize) -> String {
        format!("face{i}")
    }
    fn load(&self, i: usize) -> fer_data::Result<Sample> {
        let s = self.side;
        let px = |x: u32, y: u32, c: u32| -> u8 {
            let (fx, fy) = (x as f32 / s as f32, y as f32 / s as f32);
            let wave =
                ((fx * (3.0 + i as f32 % 5.0) + c as f32).sin() * (fy * 4.0).cos() + 1.0) * 100.0;
            let noise = ((x * 7 + y * 13 + i as u32 * 31 + c * 5) % 17) as f32 * 3.0;
            (wave + noise).clamp(0.0, 255.0) as u8
        };
        let image = if self.rgb {
            DynamicImage::ImageRgb8(RgbImage::from_fn(s, s, |x, y| {
                image::Rgb([px(x, y, 0), px(x, y, 1), px(x, y, 2)])
            }))
        } else {
            DynamicImage::ImageLuma8(GrayImage::from_fn(s, s, |x, y| image::Luma([px(x, y, 0)])))
        };
        Ok(Sample { image, target: Target::Class(i % 7), source: self.source(i) })
    }
}

fn preprocess(color: ColorMode, size: usize) -> Preprocess {
    let c = if color == ColorMode::Rgb { 3 } else { 1 };
    let (mean, std) = ([0.45, 0.5, 0.55], [0.2, 0.25, 0.3]);
    Preprocess {
        input_size: size,
        color,
        resize: ResizeMethod::Bilinear,
        mean: mean[..c].to_vec(),
        std: std[..c].to_vec(),
    }
}

fn loader(ds: Arc<dyn Dataset>, p: Preprocess, aug: AugmentConfig, pixels: bool) -> Loader {
    let cfg = LoaderConfig {
        batch_size: 16,
        workers: 2,
        shuffle: true,
        drop_last: true,
        seed: 11,
        pixels,
        ..LoaderConfig::default()
    };
    let all = (0..ds.len()).collect();
    Loader::new(ds, all, p, aug, cfg).unwrap()
}

fn host(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view(-1)).unwrap()
}

/// Compares the device batches of two epochs with the loader's pixel batches, in gray levels.
fn compare(rgb: bool, color: ColorMode, aug: AugmentConfig, device: Device) {
    let ds: Arc<dyn Dataset> = Arc::new(Faces { rgb, n: 48, side: 48 });
    let p = preprocess(color, 112);
    let l = loader(ds, p.clone(), aug, true);
    let r = ResidentTrain::build(&l, device, 2).unwrap();
    let (a, _) = fer_data::preprocess::affine(&p);
    let mut worst = 0.0f32;
    let (mut off, mut total) = (0usize, 0usize);
    for epoch in [1u64, 2] {
        let ep = r.epoch(epoch);
        assert_eq!(ep.len(), l.len());
        for (b, batch) in l.epoch(epoch).enumerate() {
            let batch = batch.unwrap();
            let want = batch.images.to_input(&p).unwrap();
            let (x, y, _) = r.batch(&ep, b).unwrap();
            assert_eq!(x.size(), batch.shape.map(|d| d as i64).to_vec());
            assert_eq!(Vec::<i64>::try_from(y.to_device(Device::Cpu)).unwrap(), batch.labels);
            let got = host(&x.to_device(Device::Cpu));
            let per = got.len() / batch.len();
            for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                // In gray levels: the channel's scale.
                let c = (i % per) / (per / p.channels());
                let levels = (g - w).abs() / a[c];
                worst = worst.max(levels);
                off += usize::from(levels > 0.01);
                total += 1;
            }
        }
    }
    // Rounding to bytes after float32 interpolation on two paths: a gray level at most, on a
    // small share of the pixels.
    assert!(worst <= 1.01, "a pixel differs by {worst} gray levels");
    let share = off as f64 / total as f64;
    assert!(share < 0.02, "{:.2} % of the values differ", 100.0 * share);
}

#[test]
fn device_batches_equal_the_loaders_pixel_batches_for_a_gray_source_at_three_channels() {
    compare(false, ColorMode::Rgb, AugmentConfig::default(), Device::Cpu);
}

#[test]
fn device_batches_equal_the_loaders_pixel_batches_for_a_one_channel_model() {
    compare(false, ColorMode::Gray, AugmentConfig::default(), Device::Cpu);
}

#[test]
fn device_batches_equal_the_loaders_pixel_batches_for_a_colour_source() {
    let aug = AugmentConfig { rotate_fill: 40.0, ..AugmentConfig::default() };
    compare(true, ColorMode::Rgb, aug, Device::Cpu);
}

#[test]
fn device_batches_equal_the_loaders_pixel_batches_without_augmentation() {
    compare(false, ColorMode::Gray, AugmentConfig::off(), Device::Cpu);
}

#[test]
#[ignore = "needs a CUDA device"]
fn device_batches_equal_the_loaders_pixel_batches_on_cuda() {
    fer_train::device::load_cuda_backend();
    assert!(tch::Cuda::is_available(), "no CUDA device");
    compare(false, ColorMode::Rgb, AugmentConfig::default(), Device::Cuda(0));
    compare(true, ColorMode::Rgb, AugmentConfig::default(), Device::Cuda(0));
}

/// Mean and sample variance.
fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0))
}

#[test]
fn drawn_parameters_follow_the_config_on_both_paths() {
    let aug = AugmentConfig {
        crop_scale: [0.6, 1.0],
        hflip_prob: 0.3,
        rotate_degrees: 15.0,
        brightness: 0.3,
        contrast: 0.1,
        erase_prob: 0.4,
        ..AugmentConfig::default()
    };
    let n = 6000;
    let ds: Arc<dyn Dataset> = Arc::new(Faces { rgb: false, n, side: 48 });
    let p = preprocess(ColorMode::Gray, 112);
    let l = loader(ds, p.clone(), aug.clone(), true);
    let r = ResidentTrain::build(&l, Device::Cpu, 2).unwrap();
    let ep = r.epoch(3);
    let table = host(ep.params());
    let rows: Vec<&[f32]> = table.chunks_exact(12).collect();
    assert_eq!(rows.len(), n);
    // The device table holds what the CPU path draws for the same keys.
    let augmenter = Augmenter::new(p, aug.clone()).unwrap();
    let plan = l.plan(3);
    for ((i, key), row) in plan.iter().zip(&rows).take(200) {
        let want = fer_train::trainer::resident::param_row(&augmenter.draw(*key, 48, 48));
        assert_eq!(&want[..], *row, "sample {i}");
    }
    let col = |k: usize| rows.iter().map(|r| r[k] as f64).collect::<Vec<_>>();
    let rate = |v: &[f64], p: f64, what: &str| {
        let got = v.iter().filter(|&&x| x > 0.5).count() as f64 / v.len() as f64;
        let sigma = (p * (1.0 - p) / v.len() as f64).sqrt();
        assert!((got - p).abs() < 4.0 * sigma, "{what}: rate {got}, config {p}");
    };
    rate(&col(4), 0.3, "flip");
    rate(&col(10), 0.4, "erase (its height is > 0 when drawn)");
    // Uniform angle in ±15°: mean 0, variance d²/3, within the range.
    let angle: Vec<f64> = col(5).iter().map(|r| r.to_degrees()).collect();
    let (m, v) = moments(&angle);
    assert!(angle.iter().all(|a| a.abs() <= 15.0 + 1e-3));
    assert!(m.abs() < 4.0 * (75.0 / n as f64).sqrt(), "angle mean {m}");
    assert!((v / 75.0 - 1.0).abs() < 0.08, "angle variance {v} (config: 75)");
    // Brightness uniform in [0.7, 1.3], contrast in [0.9, 1.1].
    let (bm, bv) = moments(&col(6));
    assert!((bm - 1.0).abs() < 0.01 && (bv / (0.09 / 3.0) - 1.0).abs() < 0.08, "{bm} {bv}");
    let c = col(7);
    assert!(c.iter().all(|x| (0.9 - 1e-6..=1.1 + 1e-6).contains(x)));
    // Crop area: within the configured scale (up to rounding of the sides), ratio within
    // torchvision's default range, mean area near the middle of [0.6, 1].
    let area: Vec<f64> = rows.iter().map(|r| (r[2] * r[3]) as f64 / (48.0 * 48.0)).collect();
    assert!(area.iter().all(|&a| (0.55..=1.0).contains(&a)), "crop area out of range");
    // Mean area against torchvision's `RandomResizedCrop.get_params` simulated independently
    // (rejections of boxes wider or taller than the image pull the mean below 0.8).
    let (am, av) = moments(&area);
    let reference = torchvision_mean_crop_area(48, [0.6, 1.0], [0.75, 4.0 / 3.0], 200_000);
    let tol = 4.0 * (av / n as f64).sqrt() + 0.003;
    assert!((am - reference).abs() < tol, "mean crop area {am}, torchvision's {reference}");
    for r in &rows {
        let ratio = (r[2] / r[3]) as f64;
        assert!((0.7..=1.4).contains(&ratio), "crop ratio {ratio}");
        assert!(r[0] + r[2] <= 48.0 && r[1] + r[3] <= 48.0, "crop outside the image");
    }
    // The loader draws the same: its crop areas match the device table for the same keys.
    let key = SampleKey { seed: 11, epoch: 3, index: plan[0].0 as u64 };
    assert_eq!(plan[0].1, key);
}

/// Monte Carlo of torchvision's `RandomResizedCrop.get_params` on a `side × side` image with
/// its own generator (xorshift64*): the mean crop area as a fraction of the image.
fn torchvision_mean_crop_area(side: usize, scale: [f64; 2], ratio: [f64; 2], n: usize) -> f64 {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let area = (side * side) as f64;
    let mut total = 0.0;
    for _ in 0..n {
        let mut got = None;
        for _ in 0..10 {
            let target = area * (scale[0] + (scale[1] - scale[0]) * uniform());
            let r = (ratio[0].ln() + (ratio[1].ln() - ratio[0].ln()) * uniform()).exp();
            let w = (target * r).sqrt().round() as usize;
            let h = (target / r).sqrt().round() as usize;
            if w > 0 && h > 0 && w <= side && h <= side {
                got = Some(w * h);
                break;
            }
        }
        // A square image is within the ratio range: the fallback is the whole image.
        total += got.unwrap_or(side * side) as f64 / area;
    }
    total / n as f64
}

#[test]
fn resident_validation_input_equals_the_loaders() {
    let ds: Arc<dyn Dataset> = Arc::new(Faces { rgb: false, n: 37, side: 48 });
    let p = preprocess(ColorMode::Gray, 64);
    let cfg = LoaderConfig { batch_size: 8, workers: 2, shuffle: false, ..LoaderConfig::default() };
    let l = Loader::new(ds, (0..37).collect(), p, AugmentConfig::off(), cfg).unwrap();
    let v = ResidentVal::build(&l, Device::Cpu).unwrap();
    let want: Vec<f32> =
        l.epoch(0).flat_map(|b| b.unwrap().images.normalized().unwrap().to_vec()).collect();
    assert_eq!(host(&v.input), want);
    assert_eq!(v.labels, (0..37).map(|i| i % 7).collect::<Vec<_>>());
}

#[test]
fn images_of_different_sizes_are_refused_with_the_file_named() {
    struct Mixed;
    impl Dataset for Mixed {
        fn classes(&self) -> &[Emotion] {
            &Emotion::ALL[..7]
        }
        fn len(&self) -> usize {
            3
        }
        fn label(&self, _: usize) -> usize {
            0
        }
        fn source(&self, i: usize) -> String {
            format!("img{i}.png")
        }
        fn load(&self, i: usize) -> fer_data::Result<Sample> {
            let s = if i == 2 { 40 } else { 48 };
            let image = DynamicImage::ImageLuma8(GrayImage::new(s, s));
            Ok(Sample { image, target: Target::Class(0), source: self.source(i) })
        }
    }
    let l = loader(Arc::new(Mixed), preprocess(ColorMode::Gray, 112), AugmentConfig::off(), true);
    let err = ResidentTrain::build(&l, Device::Cpu, 1).err().unwrap();
    assert!(err.contains("img2.png") && err.contains("40×40"), "{err}");
    let big = loader(
        Arc::new(Faces { rgb: false, n: 4, side: 48 }),
        preprocess(ColorMode::Gray, 32),
        AugmentConfig::off(),
        true,
    );
    let err = ResidentTrain::build(&big, Device::Cpu, 1).err().unwrap();
    assert!(err.contains("larger than the input size 32"), "{err}");
}

mod runs {
    use std::path::Path;

    use fer_train::config::ExperimentConfig;
    use fer_train::trainer::{self, RunOptions, Silent, rundir::EpochRecord};

    fn config(dir: &Path, name: &str, device_data: &str, input: usize) -> ExperimentConfig {
        let text = format!(
            r#"
version = 1
name = "{name}"
seed = 5
device = "cpu"
output_dir = "runs"
[data]
format = "fer2013-folder"
root = "data"
train_split = "train"
val_split = "val"
workers = 2
device_data = "{device_data}"
[model]
arch = "mobilenet_v3_small"
num_classes = 7
width_mult = 0.25
input_size = {input}
[optim]
optimizer = "adamw"
lr = 0.01
batch_size = 16
[[stages]]
name = "train"
epochs = 2
[[stages.loss]]
kind = "cross_entropy"
weight = 1.0
"#
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, &text).unwrap();
        ExperimentConfig::load(&path).unwrap()
    }

    fn synth(dir: &Path, size: u32) {
        let cfg =
            fer_data::synth::SynthConfig { seed: 3, train_per_class: 8, val_per_class: 3, size };
        fer_data::synth::write_fer_folder(&dir.join("data"), &cfg).unwrap();
    }

    fn untimed(records: &[EpochRecord]) -> Vec<EpochRecord> {
        records
            .iter()
            .map(|r| EpochRecord {
                img_per_s: 0.0,
                epoch_seconds: 0.0,
                val_seconds: 0.0,
                ..r.clone()
            })
            .collect()
    }

    fn data_path(dir: &Path) -> String {
        let env: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("env.json")).unwrap()).unwrap();
        env["data_path"].as_str().unwrap().to_string()
    }

    /// `fer-train run` in its own process: libtorch's generator is process-global, so
    /// determinism is a per-process property.
    fn cli_run(dir: &Path, name: &str, out: &str) -> std::path::PathBuf {
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_fer-train"))
            .args(["-q", "run", "--config"])
            .arg(dir.join(format!("{name}.toml")))
            .arg("--set")
            .arg(format!("output_dir={}", dir.join(out).display()))
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        dir.join(out).join(name)
    }

    fn records(dir: &Path) -> Vec<EpochRecord> {
        trainer::rundir::RunDir { path: dir.to_path_buf() }.read_metrics().unwrap()
    }

    #[test]
    fn a_run_on_the_device_path_is_deterministic_and_says_where_its_batches_were_made() {
        let tmp = tempfile::tempdir().unwrap();
        synth(tmp.path(), 32);
        config(tmp.path(), "on", "on", 32);
        let (a, b) = (cli_run(tmp.path(), "on", "a"), cli_run(tmp.path(), "on", "b"));
        let (ra, rb) = (records(&a), records(&b));
        assert_eq!(untimed(&ra), untimed(&rb));
        assert_eq!(ra.len(), 2);
        assert!(ra.iter().all(|r| r.train_loss.is_finite()));
        let ca = fer_checkpoint::Checkpoint::load(a.join("last.safetensors")).unwrap();
        let cb = fer_checkpoint::Checkpoint::load(b.join("last.safetensors")).unwrap();
        assert_eq!(ca.tensors, cb.tensors);
        assert!(data_path(&a).starts_with("device ("), "{}", data_path(&a));
        // Auto on the CPU keeps the loader and records why.
        config(tmp.path(), "auto", "auto", 32);
        let c = cli_run(tmp.path(), "auto", "c");
        assert_eq!(data_path(&c), "loader (the training device is the CPU)");
    }

    #[test]
    fn forcing_the_device_path_on_images_larger_than_the_input_fails_with_a_sentence() {
        let tmp = tempfile::tempdir().unwrap();
        synth(tmp.path(), 48);
        let err =
            trainer::train(&config(tmp.path(), "big", "on", 32), &RunOptions::default(), &Silent)
                .err()
                .unwrap()
                .to_string();
        assert!(err.contains("data.device_data = \"on\"") && err.contains("48×48"), "{err}");
    }
}
