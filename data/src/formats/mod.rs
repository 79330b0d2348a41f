//! One reader per dataset format and the [`open`] dispatcher.
//!
//! What is checked when:
//! - at open: CSV and label files are parsed in full (labels, pixel counts, splits), folders
//!   are listed, and (with [`OpenOptions::check_images`], on by default) each image file's
//!   header is read, which catches non-image files and unreadable files cheaply;
//! - at [`Dataset::load`]: the image is decoded, which is where truncated or corrupt image
//!   data shows up ([`crate::inspect::inspect_decoding`] decodes everything up front).
//!
//! Bad items make open fail with an error naming the file or `file:line`, unless
//! [`OpenOptions::skip_bad`] is set: then they are left out and listed by
//! [`Dataset::skipped`], never dropped silently.

mod affectnet;
mod class_map;
mod common;
mod fer2013_csv;
mod ferplus;
mod folder;
mod jaffe;
mod rafdb;

pub use affectnet::AffectNetCsv;
pub use class_map::{ClassFolder, ClassMap, FolderClass, FolderSurvey, survey};
pub use fer2013_csv::Fer2013Csv;
pub use ferplus::FerPlus;
pub use folder::{AffectNetFolder, CkPlus, Fer2013Folder, ImageFolder};
pub use jaffe::Jaffe;
pub use rafdb::RafDb;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, SplitName};
use crate::error::{Error, Result};

/// The dataset formats the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// FER-2013 as published: `fer2013.csv` with `emotion,pixels,Usage`.
    Fer2013Csv,
    /// FER-2013 as image folders: `train/ [val/] test/` of class-named folders.
    Fer2013Folder,
    /// FER+ votes (`fer2013new.csv`) joined with FER-2013 pixels or a folder of images.
    #[serde(rename = "ferplus", alias = "fer-plus")]
    FerPlus,
    /// RAF-DB basic emotions: `EmoLabel/list_patition_label.txt` and `Image/aligned/`.
    #[serde(rename = "rafdb", alias = "raf-db")]
    RafDb,
    /// AffectNet annotation CSVs with face boxes, images under a root.
    #[serde(rename = "affectnet-csv", alias = "affect-net-csv")]
    AffectNetCsv,
    /// AffectNet class-folder release: `train/ val/` with folders named by class or id.
    #[serde(rename = "affectnet-folder", alias = "affect-net-folder")]
    AffectNetFolder,
    /// CK+48: class folders of `S###_###_########.png`, grouped by subject.
    #[serde(rename = "ckplus", alias = "ck-plus")]
    CkPlus,
    /// JAFFE: TIFF images named `<subject>.<code><n>.<number>.tiff`, grouped by subject.
    Jaffe,
    /// Any folder of class-named folders (optionally under `train/ val/ test/`).
    ImageFolder,
}

impl Format {
    /// All formats, in declaration order.
    pub const ALL: [Format; 9] = [
        Format::Fer2013Csv,
        Format::Fer2013Folder,
        Format::FerPlus,
        Format::RafDb,
        Format::AffectNetCsv,
        Format::AffectNetFolder,
        Format::CkPlus,
        Format::Jaffe,
        Format::ImageFolder,
    ];

    /// The name on the command line and in JSON: `fer2013-csv`, `fer2013-folder`, `ferplus`,
    /// `rafdb`, `affectnet-csv`, `affectnet-folder`, `ckplus`, `jaffe`, `image-folder`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Fer2013Csv => "fer2013-csv",
            Format::Fer2013Folder => "fer2013-folder",
            Format::FerPlus => "ferplus",
            Format::RafDb => "rafdb",
            Format::AffectNetCsv => "affectnet-csv",
            Format::AffectNetFolder => "affectnet-folder",
            Format::CkPlus => "ckplus",
            Format::Jaffe => "jaffe",
            Format::ImageFolder => "image-folder",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    /// Accepts the names of [`Format::name`], plus `fer-plus`, `fer+`, `raf-db`,
    /// `affect-net-csv`, `affect-net-folder`, `ck-plus`, `ck+` and `ckplus48`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.to_ascii_lowercase();
        let alias = match s.as_str() {
            "fer-plus" | "fer+" => Some(Format::FerPlus),
            "raf-db" => Some(Format::RafDb),
            "affect-net-csv" => Some(Format::AffectNetCsv),
            "affect-net-folder" => Some(Format::AffectNetFolder),
            "ck-plus" | "ck+" | "ckplus48" => Some(Format::CkPlus),
            _ => None,
        };
        alias.or_else(|| Format::ALL.into_iter().find(|f| f.name() == s)).ok_or_else(|| {
            let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            Error::invalid("format", format!("`{s}` (expected one of {})", names.join(", ")))
        })
    }
}

/// How FER+ votes become targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FerPlusMode {
    /// One hard label: the emotion with strictly the most votes. Images whose top count is
    /// tied, or goes to `unknown` or `NF`, are excluded (as in the FER+ paper).
    #[default]
    Majority,
    /// [`crate::Target::Soft`]: the votes of the eight emotions, normalised to sum 1. Images
    /// with no emotion votes, or where `NF` has the most votes, are excluded.
    Soft,
}

/// Which RAF-DB images to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RafDbImages {
    /// `Image/aligned/train_00001_aligned.jpg` (100×100 aligned faces).
    #[default]
    Aligned,
    /// `Image/original/train_00001.jpg` (full images).
    Original,
}

/// AffectNet class sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AffectNetClasses {
    /// Ids 0–6, contempt excluded (counted).
    Seven,
    /// Ids 0–7.
    #[default]
    Eight,
}

/// Options shared by all readers; each reader reads only the fields that concern it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenOptions {
    /// Leave bad items (malformed rows, unreadable or non-image files) out instead of failing,
    /// and list them in [`Dataset::skipped`]. Default false.
    pub skip_bad: bool,
    /// Read each image file's header at open (cheap: no decoding), so non-image and unreadable
    /// files are found at open rather than mid-training. Default true.
    pub check_images: bool,
    /// FER+ targets. Default [`FerPlusMode::Majority`].
    pub ferplus_mode: FerPlusMode,
    /// FER+ images: the FER-2013 CSV to join by row order, or a folder of images named by the
    /// `Image name` column (directly or under `FER2013Train/ FER2013Valid/ FER2013Test/`).
    /// Default: `fer2013.csv` beside `fer2013new.csv`.
    pub ferplus_images: Option<PathBuf>,
    /// RAF-DB image variant. Default aligned.
    pub rafdb_images: RafDbImages,
    /// AffectNet class set. Default eight classes.
    pub affectnet_classes: AffectNetClasses,
    /// AffectNet CSV: the folder that `subDirectory_filePath` is relative to. Default:
    /// `Manually_Annotated_Images/` beside the CSV's folder if present, else the CSV's folder.
    pub image_root: Option<PathBuf>,
    /// Image folders only: what class folders not named after an expression hold, by exact
    /// folder name (`smiling → happiness`, `other → skip`); see [`ClassMap`]. Default empty.
    pub class_map: ClassMap,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            skip_bad: false,
            check_images: true,
            ferplus_mode: FerPlusMode::default(),
            ferplus_images: None,
            rafdb_images: RafDbImages::default(),
            affectnet_classes: AffectNetClasses::default(),
            image_root: None,
            class_map: ClassMap::default(),
        }
    }
}

/// Opens `path` as `format`. `split` picks an official split; `None` reads every sample
/// (all official splits together, or the only pool of a set without splits such as CK+).
pub fn open(
    format: Format,
    path: &Path,
    split: Option<SplitName>,
    opts: &OpenOptions,
) -> Result<Box<dyn Dataset>> {
    Ok(match format {
        Format::Fer2013Csv => Box::new(Fer2013Csv::open(path, split, opts)?),
        Format::Fer2013Folder => Box::new(Fer2013Folder::open(path, split, opts)?),
        Format::FerPlus => Box::new(FerPlus::open(path, split, opts)?),
        Format::RafDb => Box::new(RafDb::open(path, split, opts)?),
        Format::AffectNetCsv => Box::new(AffectNetCsv::open(path, split, opts)?),
        Format::AffectNetFolder => Box::new(AffectNetFolder::open(path, split, opts)?),
        Format::CkPlus => Box::new(CkPlus::open(path, split, opts)?),
        Format::Jaffe => Box::new(Jaffe::open(path, split, opts)?),
        Format::ImageFolder => Box::new(ImageFolder::open(path, split, opts)?),
    })
}
