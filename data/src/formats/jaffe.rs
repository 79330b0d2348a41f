//! JAFFE, the Japanese Female Facial Expression database (Lyons, Akamatsu, Kamachi, Gyoba,
//! 1998): 213 grey 256 × 256 TIFF images of ten subjects in one folder, the label in each file
//! name, `<subject>.<code><n>.<number>.tiff` (`KA.AN1.39.tiff`), with the codes `AN DI FE HA NE
//! SA SU`. No well-kept crate reads it, and it needs only a name parser.

use std::path::Path;

use super::OpenOptions;
use super::common::{
    BadItems, Entry, ExclusionCounter, ImgSrc, Listing, header_dims, listing_dataset,
    no_official_split, read_dir_sorted,
};
use crate::dataset::SplitName;
use crate::error::{Error, Result};
use crate::labels::Emotion;

/// The seven expressions by JAFFE's code, in the toolkit's canonical class order.
const CODES: [(&str, Emotion); 7] = [
    ("NE", Emotion::Neutral),
    ("HA", Emotion::Happiness),
    ("SU", Emotion::Surprise),
    ("SA", Emotion::Sadness),
    ("AN", Emotion::Anger),
    ("DI", Emotion::Disgust),
    ("FE", Emotion::Fear),
];

/// JAFFE: the images under a folder (searched recursively; other files are counted as
/// excluded), labelled by their names; [`crate::Dataset::group`] is the subject (`KA`).
///
/// JAFFE has no official split: open it without one and use a subject-grouped split
/// ([`crate::split::grouped_kfold`]). The classes are the seven in canonical order.
#[derive(Debug, Clone)]
pub struct Jaffe {
    list: Listing,
}

impl Jaffe {
    /// Opens `root`; `split` must be `None`. A `.tif`/`.tiff` file whose name does not follow
    /// JAFFE's pattern is a bad item (skipped and listed with `skip_bad`).
    pub fn open(root: &Path, split: Option<SplitName>, opts: &OpenOptions) -> Result<Self> {
        no_official_split(root, "JAFFE", split)?;
        let mut list = Listing::new(CODES.iter().map(|(_, e)| *e).collect());
        let mut excl = ExclusionCounter::default();
        walk(root, opts, &mut list, &mut excl)?;
        list.excluded = excl.into_vec();
        Ok(Jaffe { list: list.require_samples(root, None)? })
    }
}
listing_dataset!(Jaffe);

fn walk(
    dir: &Path,
    opts: &OpenOptions,
    list: &mut Listing,
    excl: &mut ExclusionCounter,
) -> Result<()> {
    for (name, path, is_dir) in read_dir_sorted(dir)? {
        if is_dir {
            walk(&path, opts, list, excl)?;
            continue;
        }
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("tif" | "tiff")) {
            excl.add("files other than TIFF images");
            continue;
        }
        let source = path.display().to_string();
        let mut bad = BadItems { skip: opts.skip_bad, list: &mut list.skipped };
        let Some((subject, class)) = parse_name(&name) else {
            let msg = "file name is not JAFFE's `<subject>.<code><n>.<number>.tiff` with a code \
                       among AN DI FE HA NE SA SU";
            bad.bad(source, Error::format(&path, msg))?;
            continue;
        };
        if opts.check_images
            && let Err(e) = header_dims(&path)
        {
            bad.bad(source, e)?;
            continue;
        }
        list.entries.push(Entry {
            img: ImgSrc::File(path),
            label: class,
            soft: None,
            group: Some(subject),
            source,
        });
    }
    Ok(())
}

/// The subject and class index of a JAFFE file name such as `KA.AN1.39.tiff`.
pub(crate) fn parse_name(name: &str) -> Option<(String, usize)> {
    let parts: Vec<&str> = name.split('.').collect();
    let [subject, code, number, _ext] = parts[..] else { return None };
    let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !letters(subject) || !digits(number) || code.len() < 3 || !code.is_char_boundary(2) {
        return None;
    }
    let (expr, take) = code.split_at(2);
    if !digits(take) {
        return None;
    }
    let class = CODES.iter().position(|(c, _)| c.eq_ignore_ascii_case(expr))?;
    Some((subject.to_ascii_uppercase(), class))
}

#[cfg(test)]
mod tests {
    use super::parse_name;

    #[test]
    fn names_give_the_subject_and_the_class_or_nothing() {
        assert_eq!(parse_name("KA.AN1.39.tiff"), Some(("KA".into(), 4)));
        assert_eq!(parse_name("YM.NE3.51.tiff"), Some(("YM".into(), 0)));
        assert_eq!(parse_name("nm.su2.99.TIF"), Some(("NM".into(), 2)));
        for bad in ["KA.AN1.tiff", "KA.XX1.39.tiff", "KA.AN.39.tiff", "K1.AN1.39.tiff", "README"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
