//! Training and inference see bit-identical input tensors for the same image file: the trainer's
//! loader (augmentation off, as in validation; directly and through the decoded-pixel cache) and
//! `fer-infer`'s batch preprocessing both run `fer_data::preprocess`.

use std::sync::Arc;

use fer_data::Dataset;
use fer_data::augment::AugmentConfig;
use fer_data::cache::CachedDataset;
use fer_data::formats::{self, Format, OpenOptions};
use fer_data::loader::{Loader, LoaderConfig};
use fer_models_spec::{ColorMode, Preprocess};
use image::{GrayImage, Luma, Rgb, RgbImage};

fn write_images(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for (ci, class) in ["happy", "sad"].iter().enumerate() {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        let gray = GrayImage::from_fn(48, 48, |x, y| {
            Luma([((x * 5 + y * 3 + ci as u32 * 40) % 256) as u8])
        });
        let rgb = RgbImage::from_fn(61, 40, |x, y| {
            Rgb([(x * 4 % 256) as u8, (y * 6 % 256) as u8, ((x + y + ci as u32) * 2 % 256) as u8])
        });
        for (name, img) in
            [("a.png", gray.clone().into()), ("b.jpg", rgb.into()), ("c.jpg", gray.into())]
                .into_iter()
                .map(|(n, i): (&str, image::DynamicImage)| (n, i))
        {
            let p = dir.join(name);
            img.save(&p).unwrap();
            paths.push(p);
        }
    }
    paths
}

fn loader_batch(ds: Arc<dyn Dataset>, p: &Preprocess) -> (Vec<f32>, Vec<String>) {
    let n = ds.len();
    let cfg = LoaderConfig { batch_size: n, shuffle: false, workers: 2, ..LoaderConfig::default() };
    let sources = (0..n).map(|i| ds.source(i)).collect();
    let loader = Loader::new(ds, (0..n).collect(), p.clone(), AugmentConfig::off(), cfg).unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    (batch.images.normalized().unwrap().to_vec(), sources)
}

#[test]
fn trainer_loader_and_inference_preprocessing_are_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    write_images(tmp.path());
    for p in [
        Preprocess::imagenet(112, 3),
        Preprocess::imagenet(64, 1),
        Preprocess { color: ColorMode::Rgb, ..Preprocess::imagenet(33, 3) },
    ] {
        let folder: Arc<dyn Dataset> = Arc::from(
            formats::open(Format::ImageFolder, tmp.path(), None, &OpenOptions::default()).unwrap(),
        );
        let cache = tmp.path().join(format!("c{}.fercache", p.input_size));
        let cached: Arc<dyn Dataset> =
            Arc::new(CachedDataset::open_or_build(folder.as_ref(), &cache, 1).unwrap());
        let (train, sources) = loader_batch(folder, &p);
        let (train_cached, _) = loader_batch(cached, &p);
        // Inference reads the same files in the same order.
        let files: Vec<std::path::PathBuf> = sources
            .iter()
            .map(|s| std::path::PathBuf::from(s.split(':').next().unwrap()))
            .collect();
        let images: Vec<_> =
            files.iter().map(|f| fer_infer::predict::load_image(f).unwrap()).collect();
        let infer = fer_infer::predict::preprocess_batch(&images, &files, &p).unwrap();
        let infer: Vec<f32> = infer.iter().copied().collect();
        assert_eq!(train.len(), infer.len());
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same(&train, &infer), "loader and inference differ at {} px", p.input_size);
        assert!(same(&train_cached, &infer), "cached loader differs at {} px", p.input_size);
    }
}
