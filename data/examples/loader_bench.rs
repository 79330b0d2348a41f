//! Loader throughput: a FER-2013 image folder → augmented `[N, C, S, S]` batches.
//!
//! ```text
//! cargo run --release -p fer-data --example loader_bench -- --root /path/to/fer2013 \
//!     [--size 112] [--batch 256] [--workers N] [--epochs 1] [--cache train.fercache] \
//!     [--no-augment] [--pixels]
//! ```
//!
//! Prints the time to open the folder (and to build or open the cache), then images/s per
//! epoch. `docs/benchmarks.md` ("Loader throughput") records measured numbers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use fer_data::augment::AugmentConfig;
use fer_data::cache::CachedDataset;
use fer_data::formats::{Format, OpenOptions, open};
use fer_data::loader::{Images, Loader, LoaderConfig};
use fer_data::{Dataset, SplitName};
use fer_models_spec::Preprocess;

#[derive(Parser)]
#[command(about = "Measure the data loader's throughput on a FER-2013 folder")]
struct Args {
    /// FER-2013 folder root (`train/<class>/*.jpg`, `val/…`). Without it, `--cache` must name
    /// an existing cache, read as it is (for machines that get only the packed cache).
    #[arg(long, required_unless_present = "cache")]
    root: Option<PathBuf>,
    /// Split to read.
    #[arg(long, default_value = "train")]
    split: SplitName,
    /// Model input side in pixels.
    #[arg(long, default_value_t = 112)]
    size: usize,
    /// Input channels (1: gray, 3: gray replicated to RGB as ImageNet-pretrained models take).
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Epochs to time.
    #[arg(long, default_value_t = 1)]
    epochs: u64,
    /// Read through this decoded-pixel cache (built first if missing or stale).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Preprocess only (no augmentation), as evaluation does.
    #[arg(long)]
    no_augment: bool,
    /// Hand over 8-bit pixel batches (normalised by the consumer, as `fer-train` does on its
    /// device) instead of float32 model input.
    #[arg(long)]
    pixels: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let t = Instant::now();
    let ds: Arc<dyn Dataset> = match (&args.root, &args.cache) {
        (Some(root), cache) => {
            let folder =
                open(Format::Fer2013Folder, root, Some(args.split), &OpenOptions::default())
                    .with_context(|| format!("opening {} as a FER-2013 folder", root.display()))?;
            println!("opened {} images in {:.2} s", folder.len(), t.elapsed().as_secs_f64());
            match cache {
                Some(path) => {
                    let t = Instant::now();
                    let c = CachedDataset::open_or_build(folder.as_ref(), path, args.workers)
                        .with_context(|| format!("cache {}", path.display()))?;
                    println!(
                        "cache {} ready in {:.2} s",
                        path.display(),
                        t.elapsed().as_secs_f64()
                    );
                    Arc::new(c)
                }
                None => Arc::from(folder),
            }
        }
        (None, Some(path)) => {
            let c =
                CachedDataset::open(path).with_context(|| format!("cache {}", path.display()))?;
            println!("opened cache {} in {:.2} s", path.display(), t.elapsed().as_secs_f64());
            Arc::new(c)
        }
        (None, None) => anyhow::bail!("give --root, --cache or both"),
    };
    let aug = if args.no_augment { AugmentConfig::off() } else { AugmentConfig::default() };
    let cfg = LoaderConfig {
        batch_size: args.batch,
        workers: args.workers,
        pixels: args.pixels,
        ..LoaderConfig::default()
    };
    let indices = (0..ds.len()).collect();
    let loader =
        Loader::new(ds, indices, Preprocess::imagenet(args.size, args.channels), aug, cfg)?;
    println!(
        "{} batches of {} at {:?}, {} workers, augment {}, {}",
        loader.len(),
        args.batch,
        loader.image_shape(),
        loader.workers(),
        !args.no_augment,
        if args.pixels { "8-bit pixel batches" } else { "float32 batches" }
    );
    for epoch in 0..args.epochs {
        let t = Instant::now();
        let mut images = 0usize;
        let mut checksum = 0f64;
        for batch in loader.epoch(epoch) {
            let batch = batch?;
            images += batch.len();
            checksum += match &batch.images {
                Images::Normalized(v) => v[0] as f64,
                Images::Pixels(p) => p.data[0] as f64,
            };
            loader.recycle(batch);
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "epoch {epoch}: {images} images in {s:.2} s = {:.0} images/s (checksum {checksum:.3})",
            images as f64 / s
        );
    }
    Ok(())
}
