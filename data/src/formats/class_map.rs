//! What the class folders of an image folder hold: expression names as they are, other names
//! through a [`ClassMap`]; and [`survey`], which lists a folder's layout before anything is
//! read, so `fer-train init` can name every folder it does not understand at once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::common::read_dir_sorted;
use super::folder::split_folders;
use crate::dataset::SplitName;
use crate::error::Result;
use crate::labels::Emotion;

/// What one class folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderClass {
    /// Images of this expression.
    Expression(Emotion),
    /// Images the dataset leaves out (counted as excluded, never read).
    Skip,
}

impl FromStr for FolderClass {
    type Err = String;

    /// An expression in any spelling [`Emotion::parse`] accepts, or `skip`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("skip") {
            return Ok(FolderClass::Skip);
        }
        Emotion::parse(s).map(FolderClass::Expression).ok_or_else(|| {
            let names: Vec<_> = Emotion::ALL.iter().map(|e| e.name()).collect();
            format!("`{s}` is neither an expression ({}) nor `skip`", names.join(", "))
        })
    }
}

impl fmt::Display for FolderClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderClass::Expression(e) => f.write_str(e.name()),
            FolderClass::Skip => f.write_str("skip"),
        }
    }
}

impl Serialize for FolderClass {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FolderClass {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Folder name (exact) → what it holds, for class folders not named after an expression
/// (`smiling = "happiness"`, `misc = "skip"`). A mapped name wins over its parse as an
/// expression, so a folder can also be re-labelled or left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassMap(pub BTreeMap<String, FolderClass>);

impl ClassMap {
    /// What the folder `name` holds: its mapping, else its parse as an expression; `None`
    /// for a name neither knows.
    pub fn resolve(&self, name: &str) -> Option<FolderClass> {
        self.0.get(name).copied().or_else(|| Emotion::parse(name).map(FolderClass::Expression))
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One class folder found by [`survey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFolder {
    /// The folder's name.
    pub name: String,
    /// Files in it, per split folder (`None` when the root has no split folders).
    pub files: Vec<(Option<SplitName>, usize)>,
}

impl ClassFolder {
    /// Files in the folder over all splits.
    pub fn total(&self) -> usize {
        self.files.iter().map(|(_, n)| n).sum()
    }
}

/// The layout of an image folder, before any image is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSurvey {
    /// The split folders (`train/ val/ test/` or their aliases), in split order; empty when
    /// the class folders are directly under the root.
    pub splits: Vec<SplitName>,
    /// The class folders by name (sorted), over all splits.
    pub classes: Vec<ClassFolder>,
}

/// Lists `root`'s split folders and the class folders in them, with their file counts.
pub fn survey(root: &Path) -> Result<FolderSurvey> {
    let splits = split_folders(root)?;
    let dirs: Vec<(Option<SplitName>, std::path::PathBuf)> = if splits.is_empty() {
        vec![(None, root.to_path_buf())]
    } else {
        splits.iter().map(|(s, p)| (Some(*s), p.clone())).collect()
    };
    let mut classes: BTreeMap<String, Vec<(Option<SplitName>, usize)>> = BTreeMap::new();
    for (split, dir) in &dirs {
        for (name, path, is_dir) in read_dir_sorted(dir)? {
            if is_dir {
                let files = read_dir_sorted(&path)?.into_iter().filter(|(_, _, d)| !d).count();
                classes.entry(name).or_default().push((*split, files));
            }
        }
    }
    Ok(FolderSurvey {
        splits: splits.into_iter().map(|(s, _)| s).collect(),
        classes: classes.into_iter().map(|(name, files)| ClassFolder { name, files }).collect(),
    })
}
