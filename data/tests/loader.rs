//! The batch loader: determinism across worker counts, coverage, balancing, errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use fer_data::augment::AugmentConfig;
use fer_data::dataset::{Dataset, Sample, Target};
use fer_data::loader::{Loader, LoaderConfig};
use fer_data::preprocess::preprocess;
use fer_data::{Emotion, Error};
use fer_models_spec::Preprocess;
use image::{DynamicImage, GrayImage};

/// Tiny in-memory dataset: sample `i` is a 12×12 gray image of value `i`, class `labels[i]`;
/// indices in `bad` fail to load.
struct Toy {
    labels: Vec<usize>,
    bad: Vec<usize>,
    soft: bool,
}

impl Dataset for Toy {
    fn classes(&self) -> &[Emotion] {
        &Emotion::ALL[..3]
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn source(&self, i: usize) -> String {
        format!("toy/{i}.png")
    }
    fn load(&self, i: usize) -> fer_data::Result<Sample> {
        if self.bad.contains(&i) {
            return Err(Error::format(self.source(i), "corrupt on purpose"));
        }
        let image = DynamicImage::ImageLuma8(GrayImage::from_fn(12, 12, |x, y| {
            image::Luma([(i as u32 * 7 + x * 3 + y) as u8])
        }));
        let target = if self.soft {
            let mut p = vec![0.1f32; 3];
            p[self.labels[i]] = 0.8;
            Target::Soft(p)
        } else {
            Target::Class(self.labels[i])
        };
        Ok(Sample { image, target, source: self.source(i) })
    }
}

fn toy(n: usize) -> Arc<Toy> {
    Arc::new(Toy {
        labels: (0..n).map(|i| if i % 10 < 7 { 0 } else { 1 + i % 2 }).collect(),
        bad: vec![],
        soft: false,
    })
}

fn loader(ds: Arc<dyn Dataset>, cfg: LoaderConfig, aug: AugmentConfig) -> Loader {
    let idx = (0..ds.len()).collect();
    Loader::new(ds, idx, Preprocess::imagenet(16, 1), aug, cfg).unwrap()
}

#[test]
fn same_seed_gives_identical_batches_with_one_and_four_workers() {
    let ds = toy(103);
    let cfg = |workers| LoaderConfig {
        batch_size: 8,
        workers,
        seed: 7,
        prefetch: 3,
        ..LoaderConfig::default()
    };
    let one = loader(ds.clone(), cfg(1), AugmentConfig::default());
    let four = loader(ds.clone(), cfg(4), AugmentConfig::default());
    assert_eq!(one.len(), 13);
    for epoch in 0..2 {
        let a: Vec<_> = one.epoch(epoch).map(Result::unwrap).collect();
        let b: Vec<_> = four.epoch(epoch).map(Result::unwrap).collect();
        assert_eq!(a.len(), 13);
        assert_eq!(a, b, "epoch {epoch}");
        assert_eq!(a[12].shape, [7, 1, 16, 16]);
        assert_eq!(a[0].images.normalized().unwrap().len(), 8 * 256);
    }
    // Recycled buffers do not change later batches.
    for b in four.epoch(0) {
        four.recycle(b.unwrap());
    }
    let again: Vec<_> = four.epoch(1).map(Result::unwrap).collect();
    assert_eq!(again, one.epoch(1).map(Result::unwrap).collect::<Vec<_>>());
    let e0: Vec<_> = one.epoch(0).map(Result::unwrap).collect();
    let e1: Vec<_> = one.epoch(1).map(Result::unwrap).collect();
    assert_ne!(e0[0].indices, e1[0].indices, "each epoch reshuffles");
}

#[test]
fn every_sample_appears_once_per_epoch_and_images_are_preprocessed() {
    let ds = toy(50);
    let cfg = LoaderConfig { batch_size: 16, workers: 2, ..LoaderConfig::default() };
    let l = loader(ds.clone(), cfg, AugmentConfig::off());
    let batches: Vec<_> = l.epoch(3).map(Result::unwrap).collect();
    assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [16, 16, 16, 2]);
    let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_ne!(seen, (0..50).collect::<Vec<_>>(), "shuffled");
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    let b = &batches[1];
    for (j, &i) in b.indices.iter().enumerate() {
        assert_eq!(b.labels[j], ds.labels[i] as i64);
        let want = preprocess(&ds.load(i).unwrap().image, &Preprocess::imagenet(16, 1)).unwrap();
        assert_eq!(&b.images.normalized().unwrap()[j * 256..(j + 1) * 256], &want[..]);
    }
    // drop_last leaves the short batch out.
    let cfg =
        LoaderConfig { batch_size: 16, drop_last: true, shuffle: false, ..LoaderConfig::default() };
    let l = loader(ds, cfg, AugmentConfig::off());
    assert_eq!(l.len(), 3);
    let order: Vec<usize> = l.epoch(0).flat_map(|b| b.unwrap().indices).collect();
    assert_eq!(order, (0..48).collect::<Vec<_>>(), "no shuffle keeps the given order");
}

#[test]
fn balanced_sampling_roughly_equalises_classes() {
    let ds = toy(600); // 70 % class 0, 15 % each of 1 and 2
    let cfg = LoaderConfig { batch_size: 100, balanced: true, seed: 1, ..LoaderConfig::default() };
    let l = loader(ds.clone(), cfg, AugmentConfig::off());
    let mut counts = BTreeMap::new();
    for e in 0..3 {
        for &i in &l.order(e) {
            *counts.entry(ds.labels[i]).or_insert(0usize) += 1;
        }
    }
    for c in 0..3 {
        let frac = counts[&c] as f64 / 1800.0;
        assert!((0.28..=0.39).contains(&frac), "class {c}: {frac:.3} of draws ({counts:?})");
    }
    // Batches follow the order, duplicates included.
    let flat: Vec<usize> = l.epoch(0).flat_map(|b| b.unwrap().indices).collect();
    assert_eq!(flat, l.order(0));
}

#[test]
fn bad_items_fail_the_epoch_or_are_skipped_and_counted() {
    let ds = Arc::new(Toy { bad: vec![5, 17], ..Arc::try_unwrap(toy(30)).ok().unwrap() });
    let cfg =
        LoaderConfig { batch_size: 10, shuffle: false, workers: 2, ..LoaderConfig::default() };
    let results: Vec<_> = loader(ds.clone(), cfg.clone(), AugmentConfig::off()).epoch(0).collect();
    assert_eq!(results.len(), 1, "the error ends the epoch");
    let e = results[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("toy/5.png") && e.contains("corrupt on purpose"), "{e}");
    let skip = LoaderConfig { skip_bad: true, ..cfg };
    let batches: Vec<_> =
        loader(ds, skip, AugmentConfig::off()).epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [9, 9, 10]);
    assert_eq!(batches[1].skipped[0].source, "toy/17.png");
    assert_eq!(batches[1].shape[0], 9);
    assert_eq!(batches[1].images.normalized().unwrap().len(), 9 * 256);
}

#[test]
fn soft_targets_are_one_hot_or_the_distribution() {
    let cfg = LoaderConfig {
        batch_size: 4,
        shuffle: false,
        soft_targets: true,
        ..LoaderConfig::default()
    };
    let b = loader(toy(8), cfg.clone(), AugmentConfig::off()).epoch(0).next().unwrap().unwrap();
    assert_eq!(b.soft.as_deref().unwrap()[..6], [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    let soft = Arc::new(Toy { labels: vec![2, 1], bad: vec![], soft: true });
    let b = loader(soft, cfg, AugmentConfig::off()).epoch(0).next().unwrap().unwrap();
    assert_eq!(b.labels, [2, 1]);
    assert_eq!(b.soft.unwrap(), [0.1, 0.1, 0.8, 0.1, 0.8, 0.1]);
}

#[test]
fn invalid_options_and_indices_are_errors() {
    let ds: Arc<dyn Dataset> = toy(5);
    let p = Preprocess::imagenet(16, 1);
    let e = Loader::new(
        ds.clone(),
        vec![0, 9],
        p.clone(),
        AugmentConfig::off(),
        LoaderConfig::default(),
    );
    assert!(matches!(e, Err(Error::Index { index: 9, len: 5 })));
    let cfg = LoaderConfig { batch_size: 0, ..LoaderConfig::default() };
    let e = Loader::new(ds.clone(), vec![0], p.clone(), AugmentConfig::off(), cfg).err().unwrap();
    assert!(e.to_string().contains("loader.batch_size"));
    // Dropping an epoch early stops its workers (the test would hang otherwise).
    let cfg = LoaderConfig { batch_size: 1, workers: 3, prefetch: 2, ..LoaderConfig::default() };
    let l = Loader::new(ds, (0..5).collect(), p, AugmentConfig::default(), cfg).unwrap();
    let mut epoch = l.epoch(0);
    assert!(epoch.next().unwrap().is_ok());
    drop(epoch);
}

/// Images of every stored colour type, soft targets and groups, for the cache round trip.
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
    fn group(&self, i: usize) -> Option<&str> {
        ["S001", "S002"].get(i % 3).copied()
    }
    fn source(&self, i: usize) -> String {
        format!("mixed/{i}.png")
    }
    fn load(&self, i: usize) -> fer_data::Result<Sample> {
        let (w, h) = (5 + i as u32, 3 + (i as u32 % 4));
        let v = |x: u32, y: u32, c: u32| (i as u32 * 31 + x * 7 + y * 3 + c * 50) as u8;
        let image = match i % 4 {
            0 => {
                DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| image::Luma([v(x, y, 0)])))
            }
            1 => DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_fn(w, h, |x, y| {
                image::LumaA([v(x, y, 0), v(x, y, 1)])
            })),
            2 => DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([v(x, y, 0), v(x, y, 1), v(x, y, 2)])
            })),
            _ => DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(w, h, |x, y| {
                image::Rgba([v(x, y, 0) as u16 * 257, 0, 65535, 30000])
            })),
        };
        let mut p = vec![0.0f32; 3];
        p[i % 3] = 1.0;
        let target = if i.is_multiple_of(2) { Target::Class(i % 3) } else { Target::Soft(p) };
        Ok(Sample { image, target, source: self.source(i) })
    }
}

#[test]
fn cache_round_trips_pixels_labels_sources_and_rebuilds_when_stale() {
    use fer_data::cache::{CachedDataset, source_hash, write_cache};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.fercache");
    let ds = Mixed(11);
    write_cache(&ds, &path, 3).unwrap();
    let c = CachedDataset::open(&path).unwrap();
    assert_eq!(c.len(), 11);
    assert_eq!(c.classes(), ds.classes());
    assert_eq!(c.source_hash(), source_hash(&ds));
    for i in 0..11 {
        let (a, b) = (ds.load(i).unwrap(), c.load(i).unwrap());
        assert_eq!((c.label(i), c.group(i), c.source(i)), (ds.label(i), ds.group(i), ds.source(i)));
        assert_eq!(a.target, b.target);
        if i % 4 == 3 {
            // 16-bit images are stored as 8-bit RGBA.
            assert_eq!(b.image, DynamicImage::ImageRgba8(a.image.to_rgba8()));
        } else {
            assert_eq!(a.image, b.image, "item {i}");
        }
    }
    // A different listing has another hash: open_or_build rebuilds.
    let bigger = Mixed(12);
    assert_ne!(source_hash(&bigger), c.source_hash());
    let rebuilt = CachedDataset::open_or_build(&bigger, &path, 2).unwrap();
    assert_eq!(rebuilt.len(), 12);
    assert_eq!(
        CachedDataset::open_or_build(&bigger, &path, 2).unwrap().source_hash(),
        source_hash(&bigger)
    );
    // Damaged files are errors naming the file.
    std::fs::write(&path, b"FERCACHE\x09\0\0\0").unwrap();
    let e = CachedDataset::open(&path).unwrap_err().to_string();
    assert!(e.contains("mixed.fercache"), "{e}");
    let bytes = {
        write_cache(&ds, &path, 1).unwrap();
        std::fs::read(&path).unwrap()
    };
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let e = CachedDataset::open(&path).unwrap_err().to_string();
    assert!(e.contains("runs past the end"), "{e}");
}

#[test]
fn runs_side_by_side_can_build_the_same_cache_at_once() {
    use fer_data::cache::CachedDataset;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.fercache");
    let ds = Mixed(40);
    let lens: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(|| CachedDataset::open_or_build(&ds, &path, 1).map(|c| c.len())))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert_eq!(lens, vec![40; 6]);
    let left: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("shared.fercache")], "no temporary file left");
}

/// Data-parallel training: two ranks with batch 8 see, batch by batch, the two halves of the
/// samples (and augmentation keys) of one process's batch of 16; an uneven epoch is completed
/// from its start.
#[test]
fn two_shards_split_each_doubled_batch_between_them() {
    use fer_data::loader::Shard;
    let ds = toy(64);
    let cfg = |batch_size, shard| LoaderConfig {
        batch_size,
        workers: 2,
        seed: 3,
        drop_last: true,
        shard,
        ..LoaderConfig::default()
    };
    let aug = AugmentConfig::default();
    let whole = loader(ds.clone(), cfg(16, None), aug.clone());
    let ranks: Vec<Loader> = (0..2)
        .map(|rank| {
            loader(ds.clone(), cfg(8, Some(Shard { rank, world: 2, batch: 8 })), aug.clone())
        })
        .collect();
    assert_eq!((whole.len(), ranks[0].len(), ranks[1].len()), (4, 4, 4));
    for epoch in 0..2 {
        let plan = whole.plan(epoch);
        let parts: Vec<_> = ranks.iter().map(|l| l.plan(epoch)).collect();
        assert_eq!(parts[0].len() + parts[1].len(), plan.len());
        for b in 0..4 {
            for (r, part) in parts.iter().enumerate() {
                let half = &plan[b * 16 + r * 8..b * 16 + (r + 1) * 8];
                assert_eq!(&part[b * 8..(b + 1) * 8], half, "epoch {epoch}, batch {b}, rank {r}");
            }
        }
        // The images of a sample are the same on a rank as in the single process.
        let a: Vec<_> = whole.epoch(epoch).map(Result::unwrap).collect();
        let r: Vec<_> = ranks[1].epoch(epoch).map(Result::unwrap).collect();
        let per = 256;
        let image = |b: &fer_data::loader::Batch, j: usize| {
            b.images.normalized().unwrap()[j * per..(j + 1) * per].to_vec()
        };
        let i = r[2].indices[5];
        let pos = a[2].indices.iter().position(|&x| x == i).expect("same batch");
        assert_eq!(image(&r[2], 5), image(&a[2], pos));
    }
    // 5 samples over 2 ranks in batches of 8: 3 each, rank 1's from the second half of the
    // global batch, wrapping to the epoch's start.
    let small = toy(5);
    let cfg1 = |shard| LoaderConfig { batch_size: 8, workers: 1, shard, ..LoaderConfig::default() };
    let all = loader(small.clone(), cfg1(None), aug.clone()).order(0);
    let got: Vec<Vec<usize>> = (0..2)
        .map(|rank| {
            let shard = Shard { rank, world: 2, batch: 8 };
            loader(small.clone(), cfg1(Some(shard)), aug.clone()).order(0)
        })
        .collect();
    assert_eq!(got[0], vec![all[0], all[1], all[2]]);
    assert_eq!(got[1], vec![all[3], all[4], all[0]]);
    // A rank outside the world is refused with the field's name.
    let bad = Loader::new(
        small.clone(),
        (0..5).collect(),
        Preprocess::imagenet(16, 1),
        aug,
        cfg1(Some(Shard { rank: 2, world: 2, batch: 8 })),
    );
    assert!(bad.err().unwrap().to_string().contains("loader.shard"));
}

#[test]
fn with_views_an_image_comes_back_in_the_same_versions_in_a_new_order() {
    let ds = toy(40);
    let cfg = LoaderConfig { batch_size: 8, workers: 2, seed: 3, ..LoaderConfig::default() };
    let aug = AugmentConfig { views: 2, ..AugmentConfig::default() };
    let l = loader(ds, cfg, aug);
    // Each image's augmented pixels in `epoch`, by dataset index, and the epoch's order.
    let versions = |epoch: u64| {
        let mut by_index = vec![Vec::new(); 40];
        let mut order = Vec::new();
        for b in l.epoch(epoch) {
            let b = b.unwrap();
            let x = b.images.normalized().unwrap();
            let per = x.len() / b.len();
            for (j, &i) in b.indices.iter().enumerate() {
                by_index[i] = x[j * per..(j + 1) * per].to_vec();
                order.push(i);
            }
        }
        (by_index, order)
    };
    let (v0, o0) = versions(0);
    let (v1, _) = versions(1);
    let (v2, o2) = versions(2);
    let (v5, _) = versions(5);
    assert_eq!(v0, v2, "epoch 2 shows every image as epoch 0 did");
    assert_eq!(v1, v5, "epoch 5 shows every image as epoch 1 did");
    assert!((0..40).filter(|&i| v0[i] != v1[i]).count() > 30, "two distinct views");
    assert_ne!(o0, o2, "the order still changes every epoch");
}
