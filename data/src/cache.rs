//! A one-file cache of a decoded dataset split, so large folder sets open in seconds.
//!
//! File layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `FERCACHE` |
//! | 4 | format version ([`CACHE_VERSION`]) |
//! | 8 | header length `n` |
//! | n | header, JSON: `source_hash`, `classes`, and per item `source`, `group`, `target`, `width`, `height`, `color` (`l8`, `la8`, `rgb8`, `rgba8`), `offset` |
//! | … | pixels: each item's decoded 8-bit pixels, interleaved as the `image` crate stores them, at `offset` from the end of the header |
//!
//! Images are stored decoded but not resized, so one cache serves every input size and
//! augmentation. `source_hash` (SHA-256 over the class list and every item's source, hard label
//! and group, see [`source_hash`]) ties the cache to the dataset listing it was built from;
//! [`CachedDataset::open_or_build`] rebuilds a cache whose hash or version does not match.

use std::path::{Path, PathBuf};

use image::DynamicImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, Sample, Target};
use crate::error::{Error, Result};
use crate::labels::Emotion;

/// Version of the cache file format.
pub const CACHE_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"FERCACHE";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    source_hash: String,
    classes: Vec<Emotion>,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    source: String,
    group: Option<String>,
    target: Target,
    width: u32,
    height: u32,
    color: Color,
    offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Color {
    L8,
    La8,
    Rgb8,
    Rgba8,
}

impl Color {
    fn channels(self) -> usize {
        match self {
            Color::L8 => 1,
            Color::La8 => 2,
            Color::Rgb8 => 3,
            Color::Rgba8 => 4,
        }
    }
}

/// SHA-256 (hex) of the dataset listing: class names, then each item's source, hard label and
/// group. Cheap: nothing is decoded.
pub fn source_hash(ds: &dyn Dataset) -> String {
    let mut h = Sha256::new();
    for c in ds.classes() {
        h.update(c.name().as_bytes());
        h.update([0]);
    }
    for i in 0..ds.len() {
        h.update(ds.source(i).as_bytes());
        h.update([0]);
        h.update((ds.label(i) as u64).to_le_bytes());
        h.update(ds.group(i).unwrap_or("").as_bytes());
        h.update([1]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes every sample of `ds` on `workers` threads (0 = the available cores) and writes the
/// cache to `path` (through a temporary file renamed at the end). Returns the bytes written.
pub fn write_cache(ds: &dyn Dataset, path: &Path, workers: usize) -> Result<u64> {
    let n = ds.len();
    let workers = if workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        workers
    };
    let chunk = n.div_ceil(workers.max(1)).max(1);
    let decoded: Vec<Result<Vec<Decoded>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || (start..(start + chunk).min(n)).map(|i| decode(ds, i)).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Worker { msg: "panic while decoding".into() }))
            })
            .collect()
    });
    let mut items = Vec::with_capacity(n);
    let mut pixels: Vec<Vec<u8>> = Vec::with_capacity(n);
    let mut offset = 0u64;
    for part in decoded {
        for (sample, (width, height), color, px) in part? {
            items.push(Item {
                group: ds.group(items.len()).map(str::to_string),
                source: sample.source,
                target: sample.target,
                width,
                height,
                color,
                offset,
            });
            offset += px.len() as u64;
            pixels.push(px);
        }
    }
    let header = Header { source_hash: source_hash(ds), classes: ds.classes().to_vec(), items };
    let json =
        serde_json::to_vec(&header).map_err(|source| Error::Json { path: path.into(), source })?;
    // Atomically (the toolkit's one writer): runs started side by side (folds, seeds) may build
    // the same cache at once; each writes its own temporary file and the rename makes one of
    // them current.
    fer_checkpoint::write_atomic_with(path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&CACHE_VERSION.to_le_bytes())?;
        w.write_all(&(json.len() as u64).to_le_bytes())?;
        w.write_all(&json)?;
        for px in &pixels {
            w.write_all(px)?;
        }
        Ok(())
    })?;
    Ok(20 + json.len() as u64 + offset)
}

/// The sample (its image taken out), its width and height, colour type and pixels.
type Decoded = (Sample, (u32, u32), Color, Vec<u8>);

fn decode(ds: &dyn Dataset, i: usize) -> Result<Decoded> {
    let mut s = ds.load(i)?;
    let dims = (s.image.width(), s.image.height());
    let (color, px) = match std::mem::take(&mut s.image) {
        DynamicImage::ImageLuma8(g) => (Color::L8, g.into_raw()),
        DynamicImage::ImageLumaA8(g) => (Color::La8, g.into_raw()),
        DynamicImage::ImageRgb8(g) => (Color::Rgb8, g.into_raw()),
        DynamicImage::ImageRgba8(g) => (Color::Rgba8, g.into_raw()),
        other if other.color().has_alpha() => (Color::Rgba8, other.to_rgba8().into_raw()),
        other if other.color().has_color() => (Color::Rgb8, other.to_rgb8().into_raw()),
        other => (Color::L8, other.to_luma8().into_raw()),
    };
    Ok((s, dims, color, px))
}

/// A dataset read from a cache file; [`Dataset::load`] copies the stored pixels.
#[derive(Debug)]
pub struct CachedDataset {
    path: PathBuf,
    header: Header,
    pixels: Vec<u8>,
}

impl CachedDataset {
    /// Reads a cache file, checking its magic, version and sizes.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |msg: String| Error::format(path, msg);
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(bad("not a fer-data cache file (no FERCACHE magic)".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
        if version != CACHE_VERSION {
            return Err(bad(format!(
                "cache format version {version}, this build reads {CACHE_VERSION}"
            )));
        }
        let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default()) as usize;
        if bytes.len() - 20 < hlen {
            return Err(bad(format!("header of {hlen} bytes runs past the end of the file")));
        }
        let header: Header = serde_json::from_slice(&bytes[20..20 + hlen])
            .map_err(|source| Error::Json { path: path.into(), source })?;
        let pixels = bytes[20 + hlen..].to_vec();
        for (i, it) in header.items.iter().enumerate() {
            let len = it.width as u64 * it.height as u64 * it.color.channels() as u64;
            if it.offset + len > pixels.len() as u64 {
                return Err(bad(format!(
                    "item {i} ({}) runs past the end of the pixel data",
                    it.source
                )));
            }
            if it.target.hard() >= header.classes.len() {
                return Err(bad(format!("item {i} ({}): label out of range", it.source)));
            }
        }
        Ok(CachedDataset { path: path.into(), header, pixels })
    }

    /// Opens the cache at `path` if it was built from `ds`'s listing (same [`source_hash`]
    /// and version); otherwise decodes `ds` into a new cache there first.
    pub fn open_or_build(ds: &dyn Dataset, path: &Path, workers: usize) -> Result<Self> {
        if path.exists()
            && let Ok(c) = CachedDataset::open(path)
            && c.header.source_hash == source_hash(ds)
        {
            return Ok(c);
        }
        write_cache(ds, path, workers)?;
        CachedDataset::open(path)
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The [`source_hash`] of the listing the cache was built from.
    pub fn source_hash(&self) -> &str {
        &self.header.source_hash
    }
}

impl Dataset for CachedDataset {
    fn classes(&self) -> &[Emotion] {
        &self.header.classes
    }
    fn len(&self) -> usize {
        self.header.items.len()
    }
    fn label(&self, i: usize) -> usize {
        self.header.items[i].target.hard()
    }
    fn group(&self, i: usize) -> Option<&str> {
        self.header.items[i].group.as_deref()
    }
    fn source(&self, i: usize) -> String {
        self.header.items[i].source.clone()
    }
    fn load(&self, i: usize) -> Result<Sample> {
        let it = self.header.items.get(i).ok_or(Error::Index { index: i, len: self.len() })?;
        let len = it.width as usize * it.height as usize * it.color.channels();
        let px = self.pixels[it.offset as usize..it.offset as usize + len].to_vec();
        let (w, h) = (it.width, it.height);
        let image = match it.color {
            Color::L8 => image::GrayImage::from_raw(w, h, px).map(DynamicImage::ImageLuma8),
            Color::La8 => image::GrayAlphaImage::from_raw(w, h, px).map(DynamicImage::ImageLumaA8),
            Color::Rgb8 => image::RgbImage::from_raw(w, h, px).map(DynamicImage::ImageRgb8),
            Color::Rgba8 => image::RgbaImage::from_raw(w, h, px).map(DynamicImage::ImageRgba8),
        }
        .ok_or_else(|| {
            Error::format(&self.path, format!("item {i}: pixel buffer size mismatch"))
        })?;
        Ok(Sample { image, target: it.target.clone(), source: it.source.clone() })
    }
}
