//! The JAFFE reader on a fixture in JAFFE's layout: grey TIFFs named
//! `<subject>.<code><n>.<number>.tiff` in one folder (under `jaffe/`, as its archive unpacks),
//! beside its README.

use std::path::Path;

use fer_data::formats::{self, Format, Jaffe, OpenOptions};
use fer_data::split::grouped_kfold;
use fer_data::{Dataset, Emotion, SplitName};
use image::{GrayImage, Luma};

const CODES: [&str; 7] = ["AN", "DI", "FE", "HA", "NE", "SA", "SU"];

/// Three subjects × the seven codes, one image each; the pixel value encodes (subject, code).
fn fixture(root: &Path) {
    let dir = root.join("jaffe");
    std::fs::create_dir_all(&dir).unwrap();
    for (s, subject) in ["KA", "KL", "YM"].iter().enumerate() {
        for (c, code) in CODES.iter().enumerate() {
            let v = (s * 7 + c) as u8;
            let img = GrayImage::from_pixel(32, 32, Luma([v]));
            img.save(dir.join(format!("{subject}.{code}{}.{}.tiff", c % 3 + 1, 100 + v))).unwrap();
        }
    }
    std::fs::write(dir.join("README_FIRST.txt"), "terms of use").unwrap();
}

#[test]
fn jaffe_names_give_labels_and_subjects_and_the_images_decode() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let ds = formats::open(Format::Jaffe, tmp.path(), None, &OpenOptions::default()).unwrap();
    assert_eq!(ds.classes(), &Emotion::ALL[..7]);
    assert_eq!(ds.len(), 21);
    assert_eq!(ds.excluded().iter().map(|e| e.count).sum::<usize>(), 1, "the README");
    let expected = |code: &str| match code {
        "AN" => Emotion::Anger,
        "DI" => Emotion::Disgust,
        "FE" => Emotion::Fear,
        "HA" => Emotion::Happiness,
        "NE" => Emotion::Neutral,
        "SA" => Emotion::Sadness,
        _ => Emotion::Surprise,
    };
    for i in 0..ds.len() {
        let source = ds.source(i);
        let name = Path::new(&source).file_name().unwrap().to_str().unwrap().to_owned();
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(ds.classes()[ds.label(i)], expected(&parts[1][..2]), "{name}");
        assert_eq!(ds.group(i), Some(parts[0]), "{name}");
        let pixel = ds.load(i).unwrap().image.to_luma8().get_pixel(5, 5).0[0];
        assert_eq!(u32::from(pixel) + 100, parts[2].parse::<u32>().unwrap(), "{name}");
    }
    // No official split; subject-grouped folds keep each subject in one fold.
    let err = Jaffe::open(tmp.path(), Some(SplitName::Train), &OpenOptions::default());
    assert!(err.unwrap_err().to_string().contains("JAFFE has no official `train` split"));
    let plan = grouped_kfold(&*ds, 3, 0, 7).unwrap();
    let test = &plan.parts.iter().find(|p| p.split == SplitName::Test).unwrap().indices;
    assert_eq!(test.len(), 7);
    assert!(test.iter().all(|&i| ds.group(i) == ds.group(test[0])));
}

#[test]
fn a_tiff_not_named_as_jaffe_names_it_is_named_or_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let odd = tmp.path().join("jaffe/KA.XX1.9.tiff");
    GrayImage::new(8, 8).save(&odd).unwrap();
    let err = Jaffe::open(tmp.path(), None, &OpenOptions::default()).unwrap_err().to_string();
    assert!(err.contains("KA.XX1.9.tiff") && err.contains("AN DI FE HA NE SA SU"), "{err}");
    let skip = OpenOptions { skip_bad: true, ..Default::default() };
    let ds = Jaffe::open(tmp.path(), None, &skip).unwrap();
    assert_eq!((ds.len(), ds.skipped().len()), (21, 1));
    // A JAFFE name on a file that is not an image is found at open, by its header.
    std::fs::write(tmp.path().join("jaffe/KA.HA9.9.tiff"), "not a tiff").unwrap();
    let ds = Jaffe::open(tmp.path(), None, &skip).unwrap();
    let sources: Vec<&str> = ds.skipped().iter().map(|s| s.source.as_str()).collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert!(sources.iter().any(|s| s.ends_with("KA.HA9.9.tiff")), "{sources:?}");
}
