//! FER-2013 as published: `fer2013.csv` with `emotion,pixels,Usage` rows of 48×48 gray
//! images written as 2304 space-separated values.

use std::path::Path;
use std::sync::Arc;

use super::OpenOptions;
use super::common::{
    BadItems, Entry, FER_PIXELS, ImgSrc, Listing, header_columns, listing_dataset, numbered_lines,
    read_text, split_csv,
};
use crate::dataset::SplitName;
use crate::error::{Error, Result};

/// Maps FER-2013's `Usage` values: Training, PublicTest, PrivateTest.
pub(crate) fn parse_usage(s: &str) -> Option<SplitName> {
    match s.trim().to_ascii_lowercase().as_str() {
        "training" => Some(SplitName::Train),
        "publictest" => Some(SplitName::Val),
        "privatetest" => Some(SplitName::Test),
        _ => None,
    }
}

/// What became of one data row of a FER-2013 CSV.
pub(crate) enum RowState {
    /// Not asked for (pixels not parsed).
    NotKept,
    /// Malformed.
    Bad(Error),
    /// Parsed: the label (when the file has an `emotion` column) and the pixel offset.
    Ok { emotion: Option<usize>, offset: usize },
}

/// One data row: its line, its split (when the `Usage` is valid) and its state.
pub(crate) struct Row {
    pub line: usize,
    pub usage: Option<SplitName>,
    pub state: RowState,
}

/// A parsed FER-2013 CSV.
pub(crate) struct Parsed {
    pub rows: Vec<Row>,
    pub pixels: Vec<u8>,
    pub has_usage: bool,
    pub has_emotion: bool,
}

/// Parses `path`; `keep(row_index, usage)` says which rows to parse pixels of.
pub(crate) fn parse(
    path: &Path,
    keep: &dyn Fn(usize, Option<SplitName>) -> bool,
) -> Result<Parsed> {
    let text = read_text(path)?;
    let mut lines = numbered_lines(&text);
    let (hl, header) = lines.next().ok_or_else(|| Error::format(path, "empty file"))?;
    let header = split_csv(header).map_err(|m| Error::csv(path, hl, m))?;
    let cols = header_columns(&header, &["emotion", "pixels", "Usage"]);
    let pix_col = cols[1].ok_or_else(|| {
        Error::csv(path, hl, format!("header `{}` has no `pixels` column", header.join(",")))
    })?;
    let mut out = Parsed {
        rows: Vec::new(),
        pixels: Vec::new(),
        has_usage: cols[2].is_some(),
        has_emotion: cols[0].is_some(),
    };
    let nfields = header.len();
    for (ri, (ln, line)) in lines.enumerate() {
        let fields = match split_csv(line) {
            Ok(f) if f.len() == nfields => f,
            Ok(f) => {
                let msg = format!("{} fields, the header has {nfields}", f.len());
                out.rows.push(Row {
                    line: ln,
                    usage: None,
                    state: RowState::Bad(Error::csv(path, ln, msg)),
                });
                continue;
            }
            Err(m) => {
                out.rows.push(Row {
                    line: ln,
                    usage: None,
                    state: RowState::Bad(Error::csv(path, ln, m)),
                });
                continue;
            }
        };
        let usage = match cols[2] {
            Some(c) => match parse_usage(&fields[c]) {
                Some(u) => Some(u),
                None => {
                    let msg = format!(
                        "Usage `{}` is not Training, PublicTest or PrivateTest",
                        fields[c].trim()
                    );
                    let state = RowState::Bad(Error::csv(path, ln, msg));
                    out.rows.push(Row { line: ln, usage: None, state });
                    continue;
                }
            },
            None => None,
        };
        if !keep(ri, usage) {
            out.rows.push(Row { line: ln, usage, state: RowState::NotKept });
            continue;
        }
        let state = match parse_fields(path, ln, &fields, cols[0], pix_col, &mut out.pixels) {
            Ok((emotion, offset)) => RowState::Ok { emotion, offset },
            Err(e) => RowState::Bad(e),
        };
        out.rows.push(Row { line: ln, usage, state });
    }
    Ok(out)
}

fn parse_fields(
    path: &Path,
    ln: usize,
    fields: &[String],
    emo_col: Option<usize>,
    pix_col: usize,
    pixels: &mut Vec<u8>,
) -> Result<(Option<usize>, usize)> {
    let emotion = match emo_col {
        Some(c) => {
            let s = fields[c].trim();
            match s.parse::<usize>() {
                Ok(v) if v < 7 => Some(v),
                _ => {
                    let msg = format!("emotion `{s}` is not a FER-2013 label 0-6");
                    return Err(Error::csv(path, ln, msg));
                }
            }
        }
        None => None,
    };
    let offset = pixels.len();
    let mut n = 0usize;
    for tok in fields[pix_col].split_ascii_whitespace() {
        n += 1;
        if n > FER_PIXELS {
            continue;
        }
        match tok.parse::<u8>() {
            Ok(v) => pixels.push(v),
            Err(_) => {
                pixels.truncate(offset);
                let msg = format!("pixel {n} `{tok}` is not a gray value 0-255");
                return Err(Error::csv(path, ln, msg));
            }
        }
    }
    if n != FER_PIXELS {
        pixels.truncate(offset);
        let msg = format!("{n} pixel values, expected {FER_PIXELS} (48x48)");
        return Err(Error::csv(path, ln, msg));
    }
    Ok((emotion, offset))
}

/// FER-2013 from `fer2013.csv`: parsed once at open, pixels kept in memory (2304 bytes per
/// image), samples are 48×48 [`image::DynamicImage::ImageLuma8`] images.
///
/// Splits come from `Usage`: Training → train, PublicTest → val, PrivateTest → test. Class
/// indices are FER-2013's ids ([`crate::labels::FER2013`]). Sources are `fer2013.csv:LINE`.
#[derive(Debug, Clone)]
pub struct Fer2013Csv {
    list: Listing,
}

impl Fer2013Csv {
    /// Opens the CSV file, or `fer2013.csv` inside a folder; `split` picks rows by `Usage`
    /// (`None`: every row).
    pub fn open(path: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        let file = if path.is_dir() { path.join("fer2013.csv") } else { path.to_path_buf() };
        let parsed = parse(&file, &|_, u| split.is_none() || u == split)?;
        if !parsed.has_emotion {
            return Err(Error::csv(&file, 1, "header has no `emotion` column"));
        }
        if split.is_some() && !parsed.has_usage {
            return Err(Error::csv(
                &file,
                1,
                "header has no `Usage` column, so there are no splits",
            ));
        }
        let mut list = Listing::new(crate::labels::FER2013.to_vec());
        let mut bad = BadItems { skip: opts.skip_bad, list: &mut list.skipped };
        for row in parsed.rows {
            let source = format!("{}:{}", file.display(), row.line);
            match row.state {
                RowState::NotKept => {}
                RowState::Bad(e) => bad.bad(source, e)?,
                RowState::Ok { emotion, offset } => list.entries.push(Entry {
                    img: ImgSrc::Gray48(offset),
                    label: emotion.unwrap_or_default(),
                    soft: None,
                    group: None,
                    source,
                }),
            }
        }
        list.pixels = Arc::new(parsed.pixels);
        Ok(Fer2013Csv { list: list.require_samples(&file, split)? })
    }
}
listing_dataset!(Fer2013Csv);
