//! FER+ (Barsoum et al. 2016): ten annotators' votes per FER-2013 image in
//! `fer2013new.csv`, joined with FER-2013's pixels by row order or with image files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::common::{
    BadItems, Entry, ExclusionCounter, ImgSrc, Listing, header_dims, listing_dataset,
    numbered_lines, read_text, split_csv,
};
use super::fer2013_csv::{self, RowState, parse_usage};
use super::{FerPlusMode, OpenOptions};
use crate::dataset::{SplitName, argmax};
use crate::error::{Error, Result};

/// The header of `fer2013new.csv`.
const HEADER: [&str; 12] = [
    "Usage",
    "Image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
];

/// One parsed vote row.
struct VoteRow {
    line: usize,
    usage: SplitName,
    image: String,
    votes: [f32; 10],
}

/// What the votes of one image give under a mode.
enum Decision {
    Hard(usize),
    Soft(Box<[f32]>),
    Excluded(&'static str),
}

/// Applies `mode` to ten vote counts (eight emotions, unknown, NF).
fn decide(votes: &[f32; 10], mode: FerPlusMode) -> Decision {
    let top = votes.iter().copied().fold(0.0f32, f32::max);
    if top <= 0.0 {
        return Decision::Excluded("FER+ no votes");
    }
    match mode {
        FerPlusMode::Majority => {
            if votes.iter().filter(|v| **v == top).count() > 1 {
                return Decision::Excluded("FER+ majority: tied top vote");
            }
            match argmax(votes) {
                8 => Decision::Excluded("FER+ majority: unknown"),
                9 => Decision::Excluded("FER+ majority: not a face (NF)"),
                c => Decision::Hard(c),
            }
        }
        FerPlusMode::Soft => {
            let emo = &votes[..8];
            let sum: f32 = emo.iter().sum();
            let top_emo = emo.iter().copied().fold(0.0f32, f32::max);
            if votes[9] > 0.0 && votes[9] >= top_emo {
                return Decision::Excluded("FER+ soft: not a face (NF has the most votes)");
            }
            if sum <= 0.0 {
                return Decision::Excluded("FER+ soft: no emotion votes");
            }
            Decision::Soft(emo.iter().map(|v| v / sum).collect())
        }
    }
}

fn parse_votes(path: &Path, ln: usize, line: &str) -> Result<VoteRow> {
    let f = split_csv(line).map_err(|m| Error::csv(path, ln, m))?;
    if f.len() != HEADER.len() {
        let msg = format!("{} fields, expected {}", f.len(), HEADER.len());
        return Err(Error::csv(path, ln, msg));
    }
    let usage = parse_usage(&f[0]).ok_or_else(|| {
        let msg = format!("Usage `{}` is not Training, PublicTest or PrivateTest", f[0].trim());
        Error::csv(path, ln, msg)
    })?;
    let mut votes = [0f32; 10];
    for (k, v) in votes.iter_mut().enumerate() {
        let s = f[k + 2].trim();
        *v = s.parse::<f32>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
            Error::csv(path, ln, format!("{} votes `{s}` is not a count", HEADER[k + 2]))
        })?;
    }
    Ok(VoteRow { line: ln, usage, image: f[1].trim().to_string(), votes })
}

/// FER+ labels over FER-2013 images.
///
/// Classes are the eight FER+ emotions ([`crate::labels::FERPLUS`], the canonical order).
/// With [`FerPlusMode::Majority`] targets are hard; with [`FerPlusMode::Soft`] they are
/// [`crate::Target::Soft`] normalised votes. Rows with no image name (removed by the FER+
/// authors) and rows the mode rejects are excluded and counted. Sources are
/// `fer2013new.csv:LINE`.
#[derive(Debug, Clone)]
pub struct FerPlus {
    list: Listing,
}

impl FerPlus {
    /// Opens `fer2013new.csv` (or a folder holding it). Images come from
    /// [`OpenOptions::ferplus_images`] (the FER-2013 CSV, or a folder of images named by
    /// `Image name`), by default `fer2013.csv` beside it. `split` picks rows by `Usage`.
    pub fn open(path: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        let file = if path.is_dir() { path.join("fer2013new.csv") } else { path.to_path_buf() };
        let images = match &opts.ferplus_images {
            Some(p) => p.clone(),
            None => file.parent().unwrap_or(Path::new(".")).join("fer2013.csv"),
        };
        if !images.exists() {
            return Err(Error::format(
                &images,
                "FER+ images not found: set the FER+ images option to fer2013.csv or to a \
                 folder of the images named in `Image name`",
            ));
        }
        let text = read_text(&file)?;
        let mut lines = numbered_lines(&text);
        let (hl, header) = lines.next().ok_or_else(|| Error::format(&file, "empty file"))?;
        let header = split_csv(header).map_err(|m| Error::csv(&file, hl, m))?;
        let matches = header.len() == HEADER.len()
            && header.iter().zip(HEADER).all(|(h, w)| h.trim().eq_ignore_ascii_case(w));
        if !matches {
            let msg = format!("header `{}`, expected `{}`", header.join(","), HEADER.join(","));
            return Err(Error::csv(&file, hl, msg));
        }
        let mut list = Listing::new(crate::labels::FERPLUS.to_vec());
        let mut excl = ExclusionCounter::default();
        let mut bad = BadItems { skip: opts.skip_bad, list: &mut list.skipped };
        // Per data row: the row and its decision, or None when not wanted.
        let mut wanted: Vec<Option<(VoteRow, Decision)>> = Vec::new();
        for (ln, line) in lines {
            let row = match parse_votes(&file, ln, line) {
                Ok(r) => r,
                Err(e) => {
                    bad.bad(format!("{}:{ln}", file.display()), e)?;
                    wanted.push(None);
                    continue;
                }
            };
            if split.is_some_and(|s| s != row.usage) {
                wanted.push(None);
                continue;
            }
            if row.image.is_empty() {
                excl.add("FER+ no image name (removed by the FER+ authors)");
                wanted.push(None);
                continue;
            }
            match decide(&row.votes, opts.ferplus_mode) {
                Decision::Excluded(reason) => {
                    excl.add(reason);
                    wanted.push(None);
                }
                d => wanted.push(Some((row, d))),
            }
        }
        let push = |row: &VoteRow, d: &Decision, img: ImgSrc, list: &mut Vec<Entry>| {
            let (label, soft) = match d {
                Decision::Hard(c) => (*c, None),
                Decision::Soft(p) => (argmax(p), Some(p.clone())),
                Decision::Excluded(_) => return,
            };
            let source = format!("{}:{}", file.display(), row.line);
            list.push(Entry { img, label, soft, group: None, source });
        };
        let mut entries = Vec::new();
        if images.is_dir() {
            for (row, d) in wanted.iter().flatten() {
                let source = format!("{}:{}", file.display(), row.line);
                match find_image(&images, row, opts.check_images) {
                    Ok(p) => push(row, d, ImgSrc::File(p), &mut entries),
                    Err(e) => bad.bad(source, e)?,
                }
            }
        } else {
            let fer = fer2013_csv::parse(&images, &|i, _| matches!(wanted.get(i), Some(Some(_))))?;
            if fer.rows.len() != wanted.len() {
                let msg = format!(
                    "{} data rows, but {} has {}; FER+ joins the two by row order",
                    fer.rows.len(),
                    file.display(),
                    wanted.len()
                );
                return Err(Error::format(&images, msg));
            }
            let fer2013_csv::Parsed { rows, pixels, .. } = fer;
            for (fr, w) in rows.into_iter().zip(&wanted) {
                let Some((row, d)) = w else { continue };
                let source = format!("{}:{}", file.display(), row.line);
                match fr.state {
                    RowState::Ok { offset, .. } if fr.usage.is_none_or(|u| u == row.usage) => {
                        push(row, d, ImgSrc::Gray48(offset), &mut entries);
                    }
                    RowState::Ok { .. } => {
                        let msg = format!(
                            "Usage {} differs from {}:{}'s",
                            row.usage,
                            images.display(),
                            fr.line
                        );
                        bad.bad(source, Error::csv(&file, row.line, msg))?;
                    }
                    RowState::Bad(e) => bad.bad(source, e)?,
                    RowState::NotKept => {}
                }
            }
            list.pixels = Arc::new(pixels);
        }
        list.entries = entries;
        list.excluded = excl.into_vec();
        Ok(FerPlus { list: list.require_samples(&file, split)? })
    }
}
listing_dataset!(FerPlus);

/// Finds a FER+ image in `dir` or in its `FER2013Train/ FER2013Valid/ FER2013Test/` folder.
fn find_image(dir: &Path, row: &VoteRow, check: bool) -> Result<PathBuf> {
    let sub = match row.usage {
        SplitName::Train => "FER2013Train",
        SplitName::Val => "FER2013Valid",
        SplitName::Test => "FER2013Test",
    };
    let direct = dir.join(&row.image);
    let path = if direct.is_file() { direct } else { dir.join(sub).join(&row.image) };
    if check {
        header_dims(&path)?;
    } else if !path.is_file() {
        return Err(Error::io(&path, std::io::ErrorKind::NotFound.into()));
    }
    Ok(path)
}
