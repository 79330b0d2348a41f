//! AffectNet's annotation CSVs (`training.csv`, `validation.csv`) with face boxes.

use std::path::{Path, PathBuf};

use super::common::{
    BadItems, Entry, ExclusionCounter, ImgSrc, Listing, clamp_box, header_columns, header_dims,
    listing_dataset, numbered_lines, read_text, split_csv,
};
use super::folder::Resolved;
use super::{AffectNetClasses, OpenOptions};
use crate::dataset::SplitName;
use crate::error::{Error, Result};
use crate::labels::{AFFECTNET, AFFECTNET_EXCLUDED, Emotion};

/// The classes of an AffectNet class set, in id order.
pub(crate) fn affectnet_classes(set: AffectNetClasses) -> Vec<Emotion> {
    match set {
        AffectNetClasses::Seven => AFFECTNET[..7].to_vec(),
        AffectNetClasses::Eight => AFFECTNET.to_vec(),
    }
}

/// What an AffectNet expression id (`"0"`–`"10"`) or name means with `n` classes.
pub(crate) fn resolve_expression(s: &str, n: usize) -> Option<Resolved> {
    let s = s.trim();
    let id = match s.parse::<usize>() {
        Ok(id) => id,
        Err(_) => {
            let lower = s.to_ascii_lowercase();
            let lower =
                if lower == "nonface" || lower == "non_face" { "non-face".into() } else { lower };
            if let Some(i) = AFFECTNET_EXCLUDED.iter().position(|x| *x == lower) {
                i + 8
            } else {
                AFFECTNET.iter().position(|e| Some(*e) == Emotion::parse(s))?
            }
        }
    };
    match id {
        i if i < n => Some(Resolved::Class(i)),
        7 => Some(Resolved::Exclude("AffectNet expression 7 (contempt) in 7-class mode".into())),
        8..=10 => Some(Resolved::Exclude(format!(
            "AffectNet expression {id} ({})",
            AFFECTNET_EXCLUDED[id - 8]
        ))),
        _ => None,
    }
}

const COLUMNS: [&str; 6] =
    ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression"];

/// AffectNet's manually annotated set read from its CSVs: each row names an image relative
/// to the image root, a face box (cropped at load, clamped to the image) and an expression.
///
/// Class indices are AffectNet's ids ([`crate::labels::AFFECTNET`]); ids 8–10, and 7 in
/// 7-class mode, are excluded and counted.
#[derive(Debug, Clone)]
pub struct AffectNetCsv {
    list: Listing,
}

impl AffectNetCsv {
    /// Opens a CSV file, or a root holding `training.csv`/`validation.csv` (directly or in
    /// `Manually_Annotated_file_lists/`). For a root, `split` picks `training.csv` (train) or
    /// `validation.csv` (val), `None` both; AffectNet's test set is not public. For a file,
    /// every row is read whatever `split` says.
    pub fn open(path: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        let (csvs, default_root) = if path.is_dir() {
            let wanted: Vec<(SplitName, &str)> = match split {
                Some(SplitName::Train) => vec![(SplitName::Train, "training.csv")],
                Some(SplitName::Val) => vec![(SplitName::Val, "validation.csv")],
                Some(SplitName::Test) => {
                    return Err(Error::format(
                        path,
                        "AffectNet has no public test split (use val, or a split plan of train)",
                    ));
                }
                None => {
                    vec![(SplitName::Train, "training.csv"), (SplitName::Val, "validation.csv")]
                }
            };
            let mut csvs = Vec::new();
            for (_, name) in wanted {
                let found =
                    [path.join(name), path.join("Manually_Annotated_file_lists").join(name)]
                        .into_iter()
                        .find(|p| p.is_file());
                match found {
                    Some(p) => csvs.push(p),
                    None if split.is_some() => {
                        return Err(Error::format(
                            path,
                            format!(
                                "no {name} (looked in the root and Manually_Annotated_file_lists/)"
                            ),
                        ));
                    }
                    None => {}
                }
            }
            if csvs.is_empty() {
                return Err(Error::format(path, "no training.csv or validation.csv found"));
            }
            (csvs, path.to_path_buf())
        } else {
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            let up = dir.parent().map(Path::to_path_buf).unwrap_or_else(|| dir.clone());
            let root = if up.join("Manually_Annotated_Images").is_dir() { up } else { dir };
            (vec![path.to_path_buf()], root)
        };
        let image_root = match &opts.image_root {
            Some(r) => r.clone(),
            None => {
                let m = default_root.join("Manually_Annotated_Images");
                if m.is_dir() { m } else { default_root }
            }
        };
        let classes = affectnet_classes(opts.affectnet_classes);
        let mut list = Listing::new(classes);
        let mut excl = ExclusionCounter::default();
        for csv in &csvs {
            read_csv(csv, &image_root, opts, &mut list, &mut excl)?;
        }
        list.excluded = excl.into_vec();
        Ok(AffectNetCsv { list: list.require_samples(path, split)? })
    }
}
listing_dataset!(AffectNetCsv);

fn read_csv(
    csv: &Path,
    image_root: &Path,
    opts: &OpenOptions,
    list: &mut Listing,
    excl: &mut ExclusionCounter,
) -> Result<()> {
    let text = read_text(csv)?;
    let mut lines = numbered_lines(&text);
    let (hl, header) = lines.next().ok_or_else(|| Error::format(csv, "empty file"))?;
    let header = split_csv(header).map_err(|m| Error::csv(csv, hl, m))?;
    let cols = header_columns(&header, &COLUMNS);
    let mut idx = [0usize; 6];
    for (k, c) in cols.iter().enumerate() {
        idx[k] = c.ok_or_else(|| {
            Error::csv(
                csv,
                hl,
                format!("header has no `{}` column (expected {})", COLUMNS[k], COLUMNS.join(",")),
            )
        })?;
    }
    let n = list.classes.len();
    let mut bad = BadItems { skip: opts.skip_bad, list: &mut list.skipped };
    for (ln, line) in lines {
        let at = format!("{}:{ln}", csv.display());
        let row = match parse_row(csv, ln, line, &idx, n) {
            Ok(r) => r,
            Err(e) => {
                bad.bad(at, e)?;
                continue;
            }
        };
        let (rel, bx, class) = match row {
            Row::Excluded(reason) => {
                excl.add(reason);
                continue;
            }
            Row::Sample { rel, bx, class } => (rel, bx, class),
        };
        let path: PathBuf = image_root.join(&rel);
        if opts.check_images {
            let checked = header_dims(&path).and_then(|(w, h)| clamp_box(&path, bx, w, h));
            if let Err(e) = checked {
                bad.bad(at, e)?;
                continue;
            }
        }
        let source = path.display().to_string();
        let (x, y, w, h) = bx;
        list.entries.push(Entry {
            img: ImgSrc::Crop { path, x, y, w, h },
            label: class,
            soft: None,
            group: None,
            source,
        });
    }
    Ok(())
}

enum Row {
    Excluded(String),
    Sample { rel: String, bx: (i64, i64, i64, i64), class: usize },
}

fn parse_row(csv: &Path, ln: usize, line: &str, idx: &[usize; 6], n: usize) -> Result<Row> {
    let f = split_csv(line).map_err(|m| Error::csv(csv, ln, m))?;
    let need = idx.iter().max().copied().unwrap_or(0) + 1;
    if f.len() < need {
        return Err(Error::csv(csv, ln, format!("{} fields, expected at least {need}", f.len())));
    }
    let num = |k: usize| -> Result<i64> {
        let s = f[idx[k]].trim();
        s.parse::<i64>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v.round() as i64))
            .ok_or_else(|| Error::csv(csv, ln, format!("{} `{s}` is not a number", COLUMNS[k])))
    };
    let class = match resolve_expression(&f[idx[5]], n) {
        Some(Resolved::Class(c)) => c,
        Some(Resolved::Exclude(reason)) => return Ok(Row::Excluded(reason)),
        None => {
            let msg = format!("expression `{}` is not an AffectNet id 0-10", f[idx[5]].trim());
            return Err(Error::csv(csv, ln, msg));
        }
    };
    let rel = f[idx[0]].trim().to_string();
    if rel.is_empty() {
        return Err(Error::csv(csv, ln, "empty subDirectory_filePath"));
    }
    let bx = (num(1)?, num(2)?, num(3)?, num(4)?);
    if bx.2 <= 0 || bx.3 <= 0 {
        let msg = format!("face box width {} and height {} must be positive", bx.2, bx.3);
        return Err(Error::csv(csv, ln, msg));
    }
    Ok(Row::Sample { rel, bx, class })
}
