//! The core dataset API every reader implements.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::labels::Emotion;

/// One decoded sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The image as stored (gray images stay [`image::DynamicImage::ImageLuma8`]); the
    /// preprocessing step resizes and converts it.
    pub image: image::DynamicImage,
    /// The label, indexing [`Dataset::classes`].
    pub target: Target,
    /// Where the sample came from: a file path, or `file:line` for rows of a CSV.
    pub source: String,
}

/// The label of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A hard label: an index into [`Dataset::classes`].
    Class(usize),
    /// A distribution over [`Dataset::classes`] (same length, sums to 1), for example the
    /// normalised FER+ annotator votes.
    Soft(Vec<f32>),
}

impl Target {
    /// The hard label: the class itself, or the first most probable class of a soft target.
    pub fn hard(&self) -> usize {
        match self {
            Target::Class(c) => *c,
            Target::Soft(p) => argmax(p),
        }
    }
}

/// Index of the first largest value (0 for an empty slice).
pub(crate) fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

/// A labelled image dataset: one split of one dataset, listed at open and decoded on demand.
///
/// Indices run over `0..len()`. `label`, `group` and `source` are cheap (no decoding) and
/// panic on an index past the end, as slice indexing does; `load` decodes and returns an
/// [`crate::Error`] naming the file (or `file:line`) on failure.
pub trait Dataset: Send + Sync {
    /// The classes in the order of the class indices used by [`Target`] and [`Dataset::label`].
    fn classes(&self) -> &[Emotion];
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The hard label of sample `i` without decoding it (the majority class for soft targets).
    fn label(&self, i: usize) -> usize;
    /// The group of sample `i` (the subject id such as CK+'s `S005`), for grouped splits.
    fn group(&self, _i: usize) -> Option<&str> {
        None
    }
    /// Where sample `i` comes from: a file path, or `file:line`.
    fn source(&self, i: usize) -> String;
    /// Decodes sample `i`; errors name the file or `file:line`.
    fn load(&self, i: usize) -> crate::Result<Sample>;
    /// Bad items left out at open because [`crate::formats::OpenOptions::skip_bad`] was set,
    /// each with the reason. Empty for readers that found nothing bad.
    fn skipped(&self) -> &[SkippedItem] {
        &[]
    }
    /// Items the dataset's protocol leaves out (for example AffectNet's classes 8–10, FER+
    /// images whose votes have no majority), counted by reason.
    fn excluded(&self) -> &[Exclusion] {
        &[]
    }
}

/// An item left out at open because it was bad and `skip_bad` was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedItem {
    /// The file or `file:line`.
    pub source: String,
    /// The error the item would have raised.
    pub reason: String,
}

/// A count of items that the dataset's protocol excludes (not errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// Why, for example `AffectNet expression 8 (none)`.
    pub reason: String,
    /// How many items.
    pub count: usize,
}

/// One of the three standard splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    /// Training data.
    Train,
    /// Validation data (model selection). FER-2013's PublicTest.
    Val,
    /// Held-out test data. FER-2013's PrivateTest.
    Test,
}

impl SplitName {
    /// All three, in order.
    pub const ALL: [SplitName; 3] = [SplitName::Train, SplitName::Val, SplitName::Test];

    /// The lowercase name: `train`, `val` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
        }
    }

    /// Parses a split name or a split folder name (`train`, `training`, `val`, `valid`,
    /// `validation`, `test`, `testing`; case-insensitive).
    pub fn parse(s: &str) -> Option<SplitName> {
        match s.to_ascii_lowercase().as_str() {
            "train" | "training" => Some(SplitName::Train),
            "val" | "valid" | "validation" => Some(SplitName::Val),
            "test" | "testing" => Some(SplitName::Test),
            _ => None,
        }
    }
}

impl fmt::Display for SplitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SplitName {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        SplitName::parse(s).ok_or_else(|| {
            crate::Error::invalid("split", format!("`{s}` (expected train, val or test)"))
        })
    }
}
