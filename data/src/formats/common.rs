//! The listing every reader builds at open, and the helpers readers share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{DynamicImage, GrayImage};

use crate::dataset::{Exclusion, Sample, SkippedItem, SplitName, Target};
use crate::error::{Error, Result};
use crate::labels::Emotion;

/// Side of the FER-2013 images.
pub(crate) const FER_SIDE: u32 = 48;
/// Pixels per FER-2013 image.
pub(crate) const FER_PIXELS: usize = (FER_SIDE * FER_SIDE) as usize;

/// Where a sample's pixels are.
#[derive(Debug, Clone)]
pub(crate) enum ImgSrc {
    /// An image file, decoded whole.
    File(PathBuf),
    /// An image file, cropped to a face box (clamped to the image) after decoding.
    Crop { path: PathBuf, x: i64, y: i64, w: i64, h: i64 },
    /// A 48×48 gray image at this offset of [`Listing::pixels`].
    Gray48(usize),
}

/// One listed sample.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub img: ImgSrc,
    pub label: usize,
    pub soft: Option<Box<[f32]>>,
    pub group: Option<String>,
    pub source: String,
}

/// What a reader found at open: the samples of one split plus what it left out.
#[derive(Clone, Default)]
pub(crate) struct Listing {
    pub classes: Vec<Emotion>,
    pub entries: Vec<Entry>,
    pub pixels: Arc<Vec<u8>>,
    pub skipped: Vec<SkippedItem>,
    pub excluded: Vec<Exclusion>,
}

impl std::fmt::Debug for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listing")
            .field("classes", &self.classes)
            .field("len", &self.entries.len())
            .field("skipped", &self.skipped.len())
            .field("excluded", &self.excluded)
            .finish()
    }
}

impl Listing {
    /// An empty listing over `classes`.
    pub fn new(classes: Vec<Emotion>) -> Self {
        Listing { classes, ..Default::default() }
    }

    /// Fails with [`Error::EmptySplit`] (or [`Error::Format`] for `split == None`) when no
    /// sample was found, saying how many were skipped or excluded.
    pub fn require_samples(self, path: &Path, split: Option<SplitName>) -> Result<Self> {
        if !self.entries.is_empty() {
            return Ok(self);
        }
        let excluded: usize = self.excluded.iter().map(|e| e.count).sum();
        let first = self
            .skipped
            .first()
            .map(|b| format!(", the first: {}: {}", b.source, b.reason))
            .unwrap_or_default();
        let why = format!("{} bad items skipped{first}; {excluded} excluded", self.skipped.len());
        Err(match split {
            Some(split) => Error::EmptySplit { path: path.to_path_buf(), split, why },
            None => Error::format(path, format!("no samples found ({why})")),
        })
    }

    /// Decodes sample `i`.
    pub fn load(&self, i: usize) -> Result<Sample> {
        let e = self.entries.get(i).ok_or(Error::Index { index: i, len: self.entries.len() })?;
        let image = match &e.img {
            ImgSrc::File(path) => decode(path)?,
            ImgSrc::Crop { path, x, y, w, h } => {
                let img = decode(path)?;
                let (cx, cy, cw, ch) =
                    clamp_box(path, (*x, *y, *w, *h), img.width(), img.height())?;
                img.crop_imm(cx, cy, cw, ch)
            }
            ImgSrc::Gray48(off) => {
                let px = self.pixels[*off..*off + FER_PIXELS].to_vec();
                let buf = GrayImage::from_raw(FER_SIDE, FER_SIDE, px)
                    .ok_or_else(|| Error::format(&e.source, "pixel buffer of the wrong size"))?;
                DynamicImage::ImageLuma8(buf)
            }
        };
        let target = match &e.soft {
            Some(p) => Target::Soft(p.to_vec()),
            None => Target::Class(e.label),
        };
        Ok(Sample { image, target, source: e.source.clone() })
    }
}

/// Implements [`crate::Dataset`] for a reader struct with a `list: Listing` field.
macro_rules! listing_dataset {
    ($t:ty) => {
        impl $crate::dataset::Dataset for $t {
            fn classes(&self) -> &[$crate::labels::Emotion] {
                &self.list.classes
            }
            fn len(&self) -> usize {
                self.list.entries.len()
            }
            fn label(&self, i: usize) -> usize {
                self.list.entries[i].label
            }
            fn group(&self, i: usize) -> Option<&str> {
                self.list.entries[i].group.as_deref()
            }
            fn source(&self, i: usize) -> String {
                self.list.entries[i].source.clone()
            }
            fn load(&self, i: usize) -> $crate::Result<$crate::dataset::Sample> {
                self.list.load(i)
            }
            fn skipped(&self) -> &[$crate::dataset::SkippedItem] {
                &self.list.skipped
            }
            fn excluded(&self) -> &[$crate::dataset::Exclusion] {
                &self.list.excluded
            }
        }
    };
}
pub(crate) use listing_dataset;

/// Clamps a face box to a `width`×`height` image; fails when nothing is left.
pub(crate) fn clamp_box(
    path: &Path,
    (x, y, w, h): (i64, i64, i64, i64),
    width: u32,
    height: u32,
) -> Result<(u32, u32, u32, u32)> {
    let x0 = x.clamp(0, width as i64);
    let y0 = y.clamp(0, height as i64);
    let x1 = (x + w).clamp(0, width as i64);
    let y1 = (y + h).clamp(0, height as i64);
    if x1 <= x0 || y1 <= y0 {
        return Err(Error::format(
            path,
            format!("face box x={x} y={y} w={w} h={h} lies outside the {width}x{height} image"),
        ));
    }
    Ok((x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32))
}

/// Decodes an image file, guessing the format from its content (see [`crate::image_file`]).
pub(crate) fn decode(path: &Path) -> Result<DynamicImage> {
    crate::image_file::decode_image(path)
}

/// Reads only an image file's header and returns its size (see
/// [`crate::image_file::image_dims`]).
pub(crate) fn header_dims(path: &Path) -> Result<(u32, u32)> {
    crate::image_file::image_dims(path)
}

/// Refuses an official `split` of a dataset that has none (`dataset`: `CK+`, `JAFFE`), saying
/// what to do instead.
pub(crate) fn no_official_split(
    root: &Path,
    dataset: &str,
    split: Option<SplitName>,
) -> Result<()> {
    match split {
        None => Ok(()),
        Some(s) => Err(Error::format(
            root,
            format!(
                "{dataset} has no official `{s}` split; open it without a split and use a \
                 subject-grouped split plan"
            ),
        )),
    }
}

/// Collects bad items: with `skip` they are recorded, otherwise the first one is returned.
pub(crate) struct BadItems<'a> {
    pub skip: bool,
    pub list: &'a mut Vec<SkippedItem>,
}

impl BadItems<'_> {
    /// Records `err` for `source` (or returns it when not skipping).
    pub fn bad(&mut self, source: impl Into<String>, err: Error) -> Result<()> {
        if self.skip {
            self.list.push(SkippedItem { source: source.into(), reason: err.to_string() });
            Ok(())
        } else {
            Err(err)
        }
    }
}

/// Counts excluded items by reason, in first-seen order of the reasons' sort.
#[derive(Debug, Default)]
pub(crate) struct ExclusionCounter(BTreeMap<String, usize>);

impl ExclusionCounter {
    /// Counts one item excluded for `reason`.
    pub fn add(&mut self, reason: impl Into<String>) {
        *self.0.entry(reason.into()).or_default() += 1;
    }

    /// The counts, sorted by reason.
    pub fn into_vec(self) -> Vec<Exclusion> {
        self.0.into_iter().map(|(reason, count)| Exclusion { reason, count }).collect()
    }
}

/// Reads a whole text file.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Splits one CSV line into fields; double-quoted fields may contain commas and `""`.
pub(crate) fn split_csv(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => quoted = false,
                _ => cur.push(c),
            }
        } else {
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut cur));
                    at_start = true;
                    continue;
                }
                '"' if at_start => quoted = true,
                _ => cur.push(c),
            }
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// Lines of a text file with their 1-based numbers, skipping blank lines and stripping `\r`.
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Finds the columns `want` in a CSV header (case-insensitive, trimmed); `None` for absent ones.
pub(crate) fn header_columns(header: &[String], want: &[&str]) -> Vec<Option<usize>> {
    want.iter()
        .map(|w| {
            header
                .iter()
                .position(|h| h.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(w))
        })
        .collect()
}

/// Whether a directory entry name is hidden (starts with `.`); hidden files are never samples.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// The sorted entries of a directory: `(name, path, is_dir)`, hidden ones left out.
pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let ent = ent.map_err(|e| Error::io(dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if is_hidden(&name) {
            continue;
        }
        let path = ent.path();
        let is_dir = path.is_dir();
        out.push((name, path, is_dir));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
