//! Readers of class-folder layouts: any image folder, FER-2013's folders, AffectNet's folder
//! release and CK+48.

use std::path::{Path, PathBuf};

use super::OpenOptions;
use super::class_map::FolderClass;
use super::common::{
    BadItems, Entry, ExclusionCounter, ImgSrc, Listing, header_dims, listing_dataset,
    no_official_split, read_dir_sorted,
};
use crate::dataset::SplitName;
use crate::error::{Error, Result};
use crate::labels::Emotion;

/// What a class folder's name means.
pub(crate) enum Resolved {
    /// Samples of this class index.
    Class(usize),
    /// Not used by the protocol; its files are counted under this reason.
    Exclude(String),
}

/// File name → group (subject id).
pub(crate) type GroupFn<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How to read the class folders of one layout.
pub(crate) struct ClassFolders<'a> {
    /// Folder name → meaning; `None` for an unknown name.
    pub resolve: &'a dyn Fn(&str) -> Option<Resolved>,
    /// Folder names that would be accepted (for [`Error::UnknownClass`]).
    pub known: Vec<String>,
    /// File name → group (subject id); when set, a file without a group is a bad item.
    pub group: Option<GroupFn<'a>>,
}

/// Lists the class folders under `dir` into `list`.
pub(crate) fn read_class_folders(
    dir: &Path,
    spec: &ClassFolders<'_>,
    opts: &OpenOptions,
    list: &mut Listing,
    excl: &mut ExclusionCounter,
) -> Result<()> {
    let mut bad = BadItems { skip: opts.skip_bad, list: &mut list.skipped };
    for (name, folder, is_dir) in read_dir_sorted(dir)? {
        if !is_dir {
            excl.add("files outside class folders");
            continue;
        }
        let class = match (spec.resolve)(&name) {
            Some(Resolved::Class(c)) => c,
            Some(Resolved::Exclude(reason)) => {
                for _ in read_dir_sorted(&folder)? {
                    excl.add(reason.clone());
                }
                continue;
            }
            None => {
                let err = Error::UnknownClass {
                    path: folder.clone(),
                    name: name.clone(),
                    known: spec.known.clone(),
                };
                bad.bad(folder.display().to_string(), err)?;
                continue;
            }
        };
        for (fname, path, is_dir) in read_dir_sorted(&folder)? {
            if is_dir {
                excl.add("folders inside class folders");
                continue;
            }
            let source = path.display().to_string();
            if opts.check_images
                && let Err(e) = header_dims(&path)
            {
                bad.bad(source, e)?;
                continue;
            }
            let group = match spec.group {
                Some(g) => match g(&fname) {
                    Some(id) => Some(id),
                    None => {
                        let msg = "file name does not start with a subject id `S<digits>_`";
                        bad.bad(source, Error::format(&path, msg))?;
                        continue;
                    }
                },
                None => None,
            };
            list.entries.push(Entry {
                img: ImgSrc::File(path),
                label: class,
                soft: None,
                group,
                source,
            });
        }
    }
    Ok(())
}

/// The split folders (`train/`, `val/`, `test/` and their aliases) directly under `root`.
pub(crate) fn split_folders(root: &Path) -> Result<Vec<(SplitName, PathBuf)>> {
    let mut out: Vec<_> = read_dir_sorted(root)?
        .into_iter()
        .filter(|(_, _, d)| *d)
        .filter_map(|(n, p, _)| SplitName::parse(&n).map(|s| (s, p)))
        .collect();
    out.sort_by_key(|(s, _)| *s);
    Ok(out)
}

/// The folders to read for `split`: that split's folder, or all split folders for `None`.
pub(crate) fn pick_split_folders(
    root: &Path,
    split: Option<SplitName>,
) -> Result<Vec<(SplitName, PathBuf)>> {
    let all = split_folders(root)?;
    if all.is_empty() {
        return Err(Error::format(root, "no split folders (expected train/, val/ or test/)"));
    }
    match split {
        None => Ok(all),
        Some(s) => match all.iter().find(|(n, _)| *n == s) {
            Some(found) => Ok(vec![found.clone()]),
            None => {
                let names: Vec<_> = all
                    .iter()
                    .map(|(_, p)| p.file_name().unwrap_or_default().to_string_lossy())
                    .collect();
                Err(Error::format(
                    root,
                    format!("no folder for split `{s}` (found: {})", names.join(", ")),
                ))
            }
        },
    }
}

/// Reads a split layout: the class folders of every picked split folder.
fn read_splits(
    root: &Path,
    split: Option<SplitName>,
    classes: Vec<Emotion>,
    spec: &ClassFolders<'_>,
    opts: &OpenOptions,
) -> Result<Listing> {
    let mut list = Listing::new(classes);
    let mut excl = ExclusionCounter::default();
    for (_, dir) in pick_split_folders(root, split)? {
        read_class_folders(&dir, spec, opts, &mut list, &mut excl)?;
    }
    list.excluded = excl.into_vec();
    list.require_samples(root, split)
}

/// Any folder of class-named folders (names parsed with [`Emotion::parse`], or mapped by
/// [`OpenOptions::class_map`]), either directly under the root or under split folders
/// `train/ val/ test/`. Folders neither names are listed all at once in one error
/// ([`Error::UnknownClasses`]), or, with `skip_bad`, left out and listed as skipped.
///
/// Class indices follow the sorted folder names (as torchvision's `ImageFolder`), taken over
/// all split folders so every split has the same indices.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    list: Listing,
}

impl ImageFolder {
    /// Opens `root`. With split folders, `split` picks one (`None`: all); without them,
    /// `split` must be `None`.
    pub fn open(root: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        let splits = split_folders(root)?;
        let class_dirs: Vec<PathBuf> = if splits.is_empty() {
            if let Some(s) = split {
                return Err(Error::format(
                    root,
                    format!(
                        "has no split folders, so split `{s}` does not exist; open it without a \
                         split and make a split plan"
                    ),
                ));
            }
            vec![root.to_path_buf()]
        } else {
            splits.iter().map(|(_, p)| p.clone()).collect()
        };
        // Every class folder name, with the split folders it is in.
        let mut names: Vec<(String, Vec<String>)> = Vec::new();
        for dir in &class_dirs {
            let split = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            for (n, _, is_dir) in read_dir_sorted(dir)? {
                if !is_dir {
                    continue;
                }
                match names.iter_mut().find(|(m, _)| *m == n) {
                    Some((_, in_splits)) => in_splits.push(split.clone()),
                    None => names.push((n, vec![split.clone()])),
                }
            }
        }
        names.sort();
        let map = &opts.class_map;
        let unknown: Vec<String> = names
            .iter()
            .filter(|(n, _)| map.resolve(n).is_none())
            .map(|(n, in_splits)| match splits.is_empty() {
                true => format!("`{n}`"),
                false => format!("`{n}` ({})", in_splits.join(", ")),
            })
            .collect();
        if !unknown.is_empty() && !opts.skip_bad {
            return Err(Error::UnknownClasses {
                path: root.to_path_buf(),
                names: unknown,
                known: Emotion::ALL.iter().map(|e| e.name().to_string()).collect(),
            });
        }
        let mut classes: Vec<Emotion> = Vec::new();
        for (n, _) in &names {
            if let Some(FolderClass::Expression(e)) = map.resolve(n)
                && !classes.contains(&e)
            {
                classes.push(e);
            }
        }
        let lookup = classes.clone();
        let resolve = move |n: &str| match map.resolve(n)? {
            FolderClass::Expression(e) => lookup.iter().position(|c| *c == e).map(Resolved::Class),
            FolderClass::Skip => Some(Resolved::Exclude("class folders mapped to `skip`".into())),
        };
        let spec = ClassFolders { resolve: &resolve, known: Emotion::known_names(), group: None };
        let list = if splits.is_empty() {
            let mut list = Listing::new(classes);
            let mut excl = ExclusionCounter::default();
            read_class_folders(root, &spec, opts, &mut list, &mut excl)?;
            list.excluded = excl.into_vec();
            list.require_samples(root, None)?
        } else {
            read_splits(root, split, classes, &spec, opts)?
        };
        Ok(ImageFolder { list })
    }
}
listing_dataset!(ImageFolder);

/// FER-2013's image-folder release: `train/` and `test/` (or `train/ val/ test/`) of the
/// class folders `angry disgust fear happy neutral sad surprise`.
///
/// Class indices are FER-2013's ids ([`crate::labels::FER2013`]), the same as
/// [`super::Fer2013Csv`]'s, so models move between the two releases unchanged.
#[derive(Debug, Clone)]
pub struct Fer2013Folder {
    list: Listing,
}

impl Fer2013Folder {
    /// Opens `root`; `split` picks a split folder (`None`: all of them).
    pub fn open(root: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        let classes = crate::labels::FER2013.to_vec();
        let resolve = |n: &str| {
            Emotion::parse(n)
                .and_then(|e| crate::labels::FER2013.iter().position(|c| *c == e))
                .map(Resolved::Class)
        };
        let known = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];
        let spec = ClassFolders {
            resolve: &resolve,
            known: known.iter().map(|s| s.to_string()).collect(),
            group: None,
        };
        Ok(Fer2013Folder { list: read_splits(root, split, classes, &spec, opts)? })
    }
}
listing_dataset!(Fer2013Folder);

/// AffectNet's class-folder release: `train/ val/` with class folders named by id (`0`–`7`)
/// or by name. Ids 8–10 (none, uncertain, non-face), and contempt in 7-class mode, are
/// excluded and counted.
///
/// Class indices are AffectNet's ids ([`crate::labels::AFFECTNET`]).
#[derive(Debug, Clone)]
pub struct AffectNetFolder {
    list: Listing,
}

impl AffectNetFolder {
    /// Opens `root`; `split` picks a split folder (`None`: all of them).
    pub fn open(root: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        let classes = super::affectnet::affectnet_classes(opts.affectnet_classes);
        let n = classes.len();
        let resolve = |name: &str| super::affectnet::resolve_expression(name, n);
        let mut known: Vec<String> = (0..=10).map(|i| i.to_string()).collect();
        known.extend(crate::labels::AFFECTNET.iter().map(|e| e.name().to_string()));
        known.extend(crate::labels::AFFECTNET_EXCLUDED.iter().map(|s| s.to_string()));
        let spec = ClassFolders { resolve: &resolve, known, group: None };
        Ok(AffectNetFolder { list: read_splits(root, split, classes, &spec, opts)? })
    }
}
listing_dataset!(AffectNetFolder);

/// CK+48: class folders (`anger contempt disgust fear happy sadness surprise`) of
/// `S###_###_########.png` frames; [`crate::Dataset::group`] is the subject `S###`.
///
/// CK+ has no official split: open it with no split and use a grouped split
/// ([`crate::split::grouped_kfold`]). Class indices follow the sorted folder names.
#[derive(Debug, Clone)]
pub struct CkPlus {
    list: Listing,
}

impl CkPlus {
    /// Opens `root`; `split` must be `None`.
    pub fn open(root: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        no_official_split(root, "CK+", split)?;
        let mut classes: Vec<Emotion> = Vec::new();
        for (n, _, is_dir) in read_dir_sorted(root)? {
            if let (true, Some(e)) = (is_dir, Emotion::parse(&n))
                && !classes.contains(&e)
            {
                classes.push(e);
            }
        }
        let lookup = classes.clone();
        let resolve = move |n: &str| {
            Emotion::parse(n).and_then(|e| lookup.iter().position(|c| *c == e)).map(Resolved::Class)
        };
        let group = |f: &str| subject_id(f);
        let spec =
            ClassFolders { resolve: &resolve, known: Emotion::known_names(), group: Some(&group) };
        let mut list = Listing::new(classes);
        let mut excl = ExclusionCounter::default();
        read_class_folders(root, &spec, opts, &mut list, &mut excl)?;
        list.excluded = excl.into_vec();
        Ok(CkPlus { list: list.require_samples(root, None)? })
    }
}
listing_dataset!(CkPlus);

/// The CK+ subject id `S###` at the start of a file name such as `S005_001_00000011.png`.
pub(crate) fn subject_id(file_name: &str) -> Option<String> {
    let head = file_name.split('_').next()?;
    let digits = head.strip_prefix('S').or_else(|| head.strip_prefix('s'))?;
    if file_name.len() > head.len()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        Some(format!("S{digits}"))
    } else {
        None
    }
}
