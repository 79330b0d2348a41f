//! RAF-DB basic emotions: `EmoLabel/list_patition_label.txt` and the `Image/` folders.

use std::path::{Path, PathBuf};

use super::common::{
    BadItems, Entry, ImgSrc, Listing, header_dims, listing_dataset, numbered_lines, read_text,
};
use super::{OpenOptions, RafDbImages};
use crate::dataset::SplitName;
use crate::error::{Error, Result};

/// RAF-DB's basic-emotion set: label lines `train_00001.jpg 5` (labels 1–7), images in
/// `Image/aligned/train_00001_aligned.jpg` (or `Image/original/train_00001.jpg`, see
/// [`OpenOptions::rafdb_images`]). The split is the file name's `train_`/`test_` prefix;
/// RAF-DB has no official val split.
///
/// Class indices are RAF-DB's labels minus one ([`crate::labels::RAFDB`]). Sources are the
/// image paths.
#[derive(Debug, Clone)]
pub struct RafDb {
    list: Listing,
}

impl RafDb {
    /// Opens the RAF-DB root (holding `EmoLabel/` and `Image/`); `split` is train, test or
    /// `None` (both).
    pub fn open(root: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        if split == Some(SplitName::Val) {
            return Err(Error::format(
                root,
                "RAF-DB has no official val split (use a split plan of train)",
            ));
        }
        let labels = root.join("EmoLabel").join("list_patition_label.txt");
        let text = read_text(&labels)?;
        let mut list = Listing::new(crate::labels::RAFDB.to_vec());
        let mut bad = BadItems { skip: opts.skip_bad, list: &mut list.skipped };
        for (ln, line) in numbered_lines(&text) {
            let at = format!("{}:{ln}", labels.display());
            let (name, label, row_split) = match parse_line(&labels, ln, line) {
                Ok(r) => r,
                Err(e) => {
                    bad.bad(at, e)?;
                    continue;
                }
            };
            if split.is_some_and(|s| s != row_split) {
                continue;
            }
            let path = image_path(root, name, opts.rafdb_images);
            let found = if opts.check_images {
                header_dims(&path).map(|_| ())
            } else if path.is_file() {
                Ok(())
            } else {
                Err(Error::io(&path, std::io::ErrorKind::NotFound.into()))
            };
            if let Err(e) = found {
                bad.bad(at, e)?;
                continue;
            }
            let source = path.display().to_string();
            list.entries.push(Entry {
                img: ImgSrc::File(path),
                label,
                soft: None,
                group: None,
                source,
            });
        }
        Ok(RafDb { list: list.require_samples(root, split)? })
    }
}
listing_dataset!(RafDb);

/// Parses `train_00001.jpg 5` into the name, the class index and the split.
fn parse_line<'a>(file: &Path, ln: usize, line: &'a str) -> Result<(&'a str, usize, SplitName)> {
    let mut it = line.split_whitespace();
    let (Some(name), Some(label), None) = (it.next(), it.next(), it.next()) else {
        return Err(Error::csv(file, ln, format!("`{line}` is not `<image name> <label 1-7>`")));
    };
    let label = match label.parse::<usize>() {
        Ok(v @ 1..=7) => v - 1,
        _ => {
            return Err(Error::csv(file, ln, format!("label `{label}` is not a RAF-DB label 1-7")));
        }
    };
    let split = if name.starts_with("train_") {
        SplitName::Train
    } else if name.starts_with("test_") {
        SplitName::Test
    } else {
        let msg = format!("image name `{name}` starts with neither `train_` nor `test_`");
        return Err(Error::csv(file, ln, msg));
    };
    Ok((name, label, split))
}

/// The image file of a label-file name.
fn image_path(root: &Path, name: &str, which: RafDbImages) -> PathBuf {
    match which {
        RafDbImages::Original => root.join("Image").join("original").join(name),
        RafDbImages::Aligned => {
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "jpg"));
            root.join("Image").join("aligned").join(format!("{stem}_aligned.{ext}"))
        }
    }
}
