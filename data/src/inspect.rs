//! What a dataset holds, as the readers see it: per split and per class counts, groups,
//! and every bad or excluded item. Backs `fer-train data inspect`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Exclusion, SkippedItem, SplitName};
use crate::error::Result;
use crate::formats::{self, Format, OpenOptions};
use crate::labels::Emotion;

/// How many samples of one class a part has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// The class index in the reader's [`Dataset::classes`].
    pub index: usize,
    /// The class.
    pub emotion: Emotion,
    /// Number of samples.
    pub count: usize,
}

/// One split (or the whole set, for sets without official splits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartReport {
    /// The split; `None` for every sample of a set without official splits.
    pub split: Option<SplitName>,
    /// Number of samples.
    pub total: usize,
    /// Counts per class, in class-index order (classes with no samples included).
    pub classes: Vec<ClassCount>,
    /// Number of distinct groups (subjects), when the reader reports groups.
    pub groups: Option<usize>,
    /// Bad items left out, with reasons.
    pub skipped: Vec<SkippedItem>,
    /// Items the protocol excludes, counted by reason.
    pub excluded: Vec<Exclusion>,
    /// Samples that failed to decode (only filled by [`inspect_decoding`]).
    pub decode_failures: Vec<SkippedItem>,
}

/// A split the reader could not open, with the reason (for example RAF-DB has no val).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingSplit {
    /// The split.
    pub split: SplitName,
    /// The reader's error, as text.
    pub reason: String,
}

/// The result of [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectReport {
    /// The format read.
    pub format: Format,
    /// The path read.
    pub path: PathBuf,
    /// One entry per split found.
    pub parts: Vec<PartReport>,
    /// Splits that are not there, with why.
    pub missing: Vec<MissingSplit>,
    /// Whether every sample was decoded ([`inspect_decoding`]).
    pub decoded: bool,
}

/// Counts one opened dataset.
pub fn part_report(split: Option<SplitName>, ds: &dyn Dataset) -> PartReport {
    let mut counts = vec![0usize; ds.classes().len()];
    let mut groups = BTreeSet::new();
    for i in 0..ds.len() {
        if let Some(c) = counts.get_mut(ds.label(i)) {
            *c += 1;
        }
        if let Some(g) = ds.group(i) {
            groups.insert(g);
        }
    }
    let classes = ds
        .classes()
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(index, (emotion, count))| ClassCount { index, emotion: *emotion, count })
        .collect();
    PartReport {
        split,
        total: ds.len(),
        classes,
        groups: (!groups.is_empty()).then_some(groups.len()),
        skipped: ds.skipped().to_vec(),
        excluded: ds.excluded().to_vec(),
        decode_failures: Vec::new(),
    }
}

/// Opens every split of `path` as `format` and counts what the reader finds. Bad items are
/// always skipped and listed (whatever `opts.skip_bad` says), so one report shows them all.
/// A set without official splits gives one part with `split: None`. Images are not decoded;
/// see [`inspect_decoding`].
pub fn inspect(format: Format, path: &Path, opts: &OpenOptions) -> Result<InspectReport> {
    inspect_impl(format, path, opts, false)
}

/// [`inspect`], and also decodes every sample, listing those that fail (slow on big sets).
pub fn inspect_decoding(format: Format, path: &Path, opts: &OpenOptions) -> Result<InspectReport> {
    inspect_impl(format, path, opts, true)
}

fn inspect_impl(
    format: Format,
    path: &Path,
    opts: &OpenOptions,
    decode: bool,
) -> Result<InspectReport> {
    let opts = OpenOptions { skip_bad: true, ..opts.clone() };
    let mut opened: Vec<(Option<SplitName>, Box<dyn Dataset>)> = Vec::new();
    let mut missing = Vec::new();
    for split in SplitName::ALL {
        match formats::open(format, path, Some(split), &opts) {
            Ok(ds) => opened.push((Some(split), ds)),
            Err(e) => missing.push(MissingSplit { split, reason: e.to_string() }),
        }
    }
    if opened.is_empty() {
        opened.push((None, formats::open(format, path, None, &opts)?));
        missing.clear();
    }
    let parts = opened
        .iter()
        .map(|(split, ds)| {
            let mut part = part_report(*split, ds.as_ref());
            if decode {
                for i in 0..ds.len() {
                    if let Err(e) = ds.load(i) {
                        part.decode_failures
                            .push(SkippedItem { source: ds.source(i), reason: e.to_string() });
                    }
                }
            }
            part
        })
        .collect();
    Ok(InspectReport { format, path: path.to_path_buf(), parts, missing, decoded: decode })
}

/// How many bad items a [`fmt::Display`] lists per part before summarising.
const SHOWN: usize = 20;

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {}", self.format, self.path.display())?;
        let mut rows: Vec<Emotion> = Vec::new();
        for p in &self.parts {
            for c in &p.classes {
                if !rows.contains(&c.emotion) {
                    rows.push(c.emotion);
                }
            }
        }
        let heads: Vec<String> =
            self.parts.iter().map(|p| p.split.map_or("all".into(), |s| s.to_string())).collect();
        let w = self
            .parts
            .iter()
            .map(|p| p.total.to_string().len())
            .chain(heads.iter().map(String::len))
            .max()
            .unwrap_or(3)
            .max(5);
        write!(f, "{:<12}", "class")?;
        for h in &heads {
            write!(f, " {h:>w$}")?;
        }
        writeln!(f)?;
        for e in &rows {
            write!(f, "{:<12}", e.name())?;
            for p in &self.parts {
                match p.classes.iter().find(|c| c.emotion == *e) {
                    Some(c) => write!(f, " {:>w$}", c.count)?,
                    None => write!(f, " {:>w$}", "-")?,
                }
            }
            writeln!(f)?;
        }
        let line = |f: &mut fmt::Formatter<'_>, name: &str, v: &dyn Fn(&PartReport) -> String| {
            write!(f, "{name:<12}")?;
            for p in &self.parts {
                write!(f, " {:>w$}", v(p))?;
            }
            writeln!(f)
        };
        line(f, "total", &|p| p.total.to_string())?;
        if self.parts.iter().any(|p| p.groups.is_some()) {
            line(f, "groups", &|p| p.groups.map_or("-".into(), |g| g.to_string()))?;
        }
        line(f, "skipped", &|p| p.skipped.len().to_string())?;
        line(f, "excluded", &|p| p.excluded.iter().map(|e| e.count).sum::<usize>().to_string())?;
        if self.decoded {
            line(f, "undecodable", &|p| p.decode_failures.len().to_string())?;
        }
        for m in &self.missing {
            writeln!(f, "no {} split: {}", m.split, m.reason)?;
        }
        for (p, head) in self.parts.iter().zip(&heads) {
            for e in &p.excluded {
                writeln!(f, "{head}: excluded {} x {}", e.count, e.reason)?;
            }
            let bad = p.skipped.iter().map(|s| ("skipped", s));
            let bad = bad.chain(p.decode_failures.iter().map(|s| ("undecodable", s)));
            let n = p.skipped.len() + p.decode_failures.len();
            for (kind, s) in bad.take(SHOWN) {
                writeln!(f, "{head}: {kind} {}: {}", s.source, s.reason)?;
            }
            if n > SHOWN {
                writeln!(f, "{head}: ... and {} more bad items (see --json)", n - SHOWN)?;
            }
        }
        Ok(())
    }
}
