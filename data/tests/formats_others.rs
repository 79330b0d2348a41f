//! RAF-DB, AffectNet (CSV and folders), CK+48 and generic image-folder readers on fixtures
//! written into a tempdir.

mod formats_support;

use std::path::Path;

use fer_data::formats::{
    AffectNetClasses, AffectNetCsv, AffectNetFolder, CkPlus, ClassMap, FolderClass, ImageFolder,
    OpenOptions, RafDb, RafDbImages, survey,
};
use fer_data::{Dataset, Emotion, Error, SplitName};
use formats_support::{jpeg, png, px, write};

fn skip() -> OpenOptions {
    OpenOptions { skip_bad: true, ..Default::default() }
}

fn emotions(ds: &dyn Dataset) -> Vec<Emotion> {
    (0..ds.len()).map(|i| ds.classes()[ds.label(i)]).collect()
}

fn rafdb_fixture(root: &Path) {
    let names = ["train_00001", "train_00002", "test_0001", "test_0002"];
    for (k, n) in names.iter().enumerate() {
        jpeg(&root.join(format!("Image/aligned/{n}_aligned.jpg")), 16, 16, k as u32);
        jpeg(&root.join(format!("Image/original/{n}.jpg")), 20, 10, k as u32);
    }
    let labels = "train_00001.jpg 5\ntrain_00002.jpg 1\ntest_0001.jpg 7\r\ntest_0002.jpg 4\n";
    write(&root.join("EmoLabel/list_patition_label.txt"), labels);
}

#[test]
fn rafdb_maps_labels_1_to_7_and_splits_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    rafdb_fixture(dir.path());
    let o = OpenOptions::default();
    let train = RafDb::open(dir.path(), Some(SplitName::Train), &o).unwrap();
    let test = RafDb::open(dir.path(), Some(SplitName::Test), &o).unwrap();
    assert_eq!(emotions(&train), [Emotion::Sadness, Emotion::Surprise]);
    assert_eq!(emotions(&test), [Emotion::Neutral, Emotion::Happiness]);
    assert_eq!(RafDb::open(dir.path(), None, &o).unwrap().len(), 4);
    let s = train.load(0).unwrap();
    assert!(s.source.ends_with("Image/aligned/train_00001_aligned.jpg"), "{}", s.source);
    assert_eq!((s.image.width(), s.image.height()), (16, 16));
    let o2 = OpenOptions { rafdb_images: RafDbImages::Original, ..Default::default() };
    let orig = RafDb::open(dir.path(), Some(SplitName::Test), &o2).unwrap();
    assert_eq!(orig.load(1).unwrap().image.width(), 20);
    let err = RafDb::open(dir.path(), Some(SplitName::Val), &o).unwrap_err();
    assert!(err.to_string().contains("no official val split"), "{err}");
}

#[test]
fn rafdb_bad_lines_and_missing_images_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    rafdb_fixture(dir.path());
    let labels = dir.path().join("EmoLabel/list_patition_label.txt");
    let text = std::fs::read_to_string(&labels).unwrap();
    write(&labels, &(text + "train_00003.jpg 8\nval_0001.jpg 3\ntrain_00004.jpg 2\n"));
    let err = RafDb::open(dir.path(), None, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Csv { line: 5, .. }), "{err}");
    assert!(err.to_string().contains("label `8`"), "{err}");
    let ds = RafDb::open(dir.path(), None, &skip()).unwrap();
    assert_eq!(ds.len(), 4);
    let skipped: Vec<(String, String)> =
        ds.skipped().iter().map(|s| (s.source.clone(), s.reason.clone())).collect();
    assert_eq!(skipped.len(), 3);
    for (k, line) in [5, 6, 7].iter().enumerate() {
        assert_eq!(skipped[k].0, format!("{}:{line}", labels.display()));
    }
    assert!(skipped[1].1.contains("neither `train_` nor `test_`"), "{skipped:?}");
    assert!(skipped[2].1.contains("train_00004_aligned.jpg"), "{skipped:?}");
}

const AN_HEADER: &str = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n";

fn affectnet_fixture(root: &Path) {
    let imgs = root.join("Manually_Annotated_Images");
    png(&imgs.join("1/a.png"), 40, 30, 1);
    png(&imgs.join("1/b.png"), 40, 30, 2);
    png(&imgs.join("1/c.png"), 40, 30, 3);
    png(&imgs.join("2/d.png"), 40, 30, 4);
    png(&imgs.join("2/e.png"), 40, 30, 5);
    let lists = root.join("Manually_Annotated_file_lists");
    let train = AN_HEADER.to_string()
        + "1/a.png,4,2,10,6,\"1.5,2.5,3.5\",1,0.5,0.2\n\
           1/b.png,-5,20,20,20,1;2;3,6,-0.1,0.3\n\
           1/c.png,0,0,5,5,,8,-2,-2\n\
           1/c.png,0,0,5,5,,10,-2,-2\n\
           2/d.png,0,0,5,5,,7,0.1,0.1\n";
    write(&lists.join("training.csv"), &train);
    write(&lists.join("validation.csv"), &(AN_HEADER.to_string() + "2/e.png,1,1,3,3,,0,0,0\n"));
}

#[test]
fn affectnet_csv_crops_the_clamped_face_box_and_counts_excluded_ids() {
    let dir = tempfile::tempdir().unwrap();
    affectnet_fixture(dir.path());
    let o = OpenOptions::default();
    let train = AffectNetCsv::open(dir.path(), Some(SplitName::Train), &o).unwrap();
    assert_eq!(emotions(&train), [Emotion::Happiness, Emotion::Anger, Emotion::Contempt]);
    let a = train.load(0).unwrap().image.into_luma8();
    assert_eq!(a.dimensions(), (10, 6));
    assert!(a.enumerate_pixels().all(|(x, y, p)| p.0[0] == px(1, 4 + x, 2 + y)));
    // x -5..15 and y 20..40 clamp to x 0..15, y 20..30.
    let b = train.load(1).unwrap().image.into_luma8();
    assert_eq!(b.dimensions(), (15, 10));
    assert!(b.enumerate_pixels().all(|(x, y, p)| p.0[0] == px(2, x, 20 + y)));
    let ex: Vec<(String, usize)> =
        train.excluded().iter().map(|e| (e.reason.clone(), e.count)).collect();
    assert_eq!(
        ex,
        [
            ("AffectNet expression 10 (non-face)".to_string(), 1),
            ("AffectNet expression 8 (none)".to_string(), 1)
        ]
    );

    let val = AffectNetCsv::open(dir.path(), Some(SplitName::Val), &o).unwrap();
    assert_eq!(emotions(&val), [Emotion::Neutral]);
    assert!(AffectNetCsv::open(dir.path(), Some(SplitName::Test), &o).is_err());
    let csv = dir.path().join("Manually_Annotated_file_lists/training.csv");
    let seven = OpenOptions { affectnet_classes: AffectNetClasses::Seven, ..Default::default() };
    let ds = AffectNetCsv::open(&csv, None, &seven).unwrap();
    assert_eq!(ds.classes().len(), 7);
    assert_eq!(emotions(&ds), [Emotion::Happiness, Emotion::Anger]);
    assert_eq!(ds.excluded().iter().map(|e| e.count).sum::<usize>(), 3);
}

#[test]
fn affectnet_csv_bad_rows_and_empty_boxes_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    affectnet_fixture(dir.path());
    let csv = dir.path().join("Manually_Annotated_file_lists/training.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let extra = "1/a.png,50,2,10,6,,1,0,0\n1/a.png,1,1,3,3,,12,0,0\n1/a.png,1,1,abc,3,,1,0,0\n";
    write(&csv, &(text + extra));
    let err = AffectNetCsv::open(&csv, None, &OpenOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("a.png") && msg.contains("outside the 40x30 image"), "{msg}");
    let ds = AffectNetCsv::open(&csv, None, &skip()).unwrap();
    assert_eq!(ds.len(), 3);
    let s: Vec<(String, String)> =
        ds.skipped().iter().map(|s| (s.source.clone(), s.reason.clone())).collect();
    assert_eq!(
        s.iter().map(|x| x.0.clone()).collect::<Vec<_>>(),
        [7, 8, 9].map(|l| format!("{}:{l}", csv.display()))
    );
    assert!(s[1].1.contains("expression `12`"), "{s:?}");
    assert!(s[2].1.contains("face_width `abc`"), "{s:?}");
    // Without header checks the empty crop surfaces at load, naming the image.
    let lazy = OpenOptions { check_images: false, skip_bad: true, ..Default::default() };
    let ds = AffectNetCsv::open(&csv, None, &lazy).unwrap();
    let err = ds.load(3).unwrap_err();
    assert!(
        err.to_string().contains("a.png") && err.to_string().contains("face box x=50"),
        "{err}"
    );
}

#[test]
fn affectnet_folder_reads_ids_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    png(&r.join("train/0/x.png"), 8, 8, 1);
    png(&r.join("train/happy/y.png"), 8, 8, 2);
    png(&r.join("train/7/c.png"), 8, 8, 3);
    png(&r.join("train/8/z.png"), 8, 8, 4);
    png(&r.join("val/6/a.png"), 8, 8, 5);
    let train = AffectNetFolder::open(r, Some(SplitName::Train), &OpenOptions::default()).unwrap();
    assert_eq!(emotions(&train), [Emotion::Neutral, Emotion::Contempt, Emotion::Happiness]);
    assert_eq!(train.excluded()[0].reason, "AffectNet expression 8 (none)");
    let val = AffectNetFolder::open(r, Some(SplitName::Val), &OpenOptions::default()).unwrap();
    assert_eq!(emotions(&val), [Emotion::Anger]);
    let seven = OpenOptions { affectnet_classes: AffectNetClasses::Seven, ..Default::default() };
    let train7 = AffectNetFolder::open(r, Some(SplitName::Train), &seven).unwrap();
    assert_eq!(train7.len(), 2);
    assert_eq!(train7.excluded().iter().map(|e| e.count).sum::<usize>(), 2);
    png(&r.join("train/11/q.png"), 8, 8, 1);
    let err =
        AffectNetFolder::open(r, Some(SplitName::Train), &OpenOptions::default()).unwrap_err();
    assert!(matches!(&err, Error::UnknownClass { name, .. } if name == "11"), "{err}");
}

#[test]
fn ckplus_groups_by_subject_and_names_bad_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    png(&r.join("anger/S005_001_00000010.png"), 48, 48, 1);
    png(&r.join("anger/S005_001_00000011.png"), 48, 48, 2);
    png(&r.join("contempt/S010_002_00000014.png"), 48, 48, 3);
    png(&r.join("happy/S011_003_00000007.png"), 48, 48, 4);
    let ds = CkPlus::open(r, None, &OpenOptions::default()).unwrap();
    assert_eq!(ds.classes(), [Emotion::Anger, Emotion::Contempt, Emotion::Happiness]);
    assert_eq!(
        emotions(&ds),
        [Emotion::Anger, Emotion::Anger, Emotion::Contempt, Emotion::Happiness]
    );
    let groups: Vec<_> = (0..ds.len()).map(|i| ds.group(i).unwrap().to_string()).collect();
    assert_eq!(groups, ["S005", "S005", "S010", "S011"]);
    assert!(CkPlus::open(r, Some(SplitName::Train), &OpenOptions::default()).is_err());

    png(&r.join("happy/frame.png"), 48, 48, 5);
    let err = CkPlus::open(r, None, &OpenOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("frame.png") && err.to_string().contains("subject id"),
        "{err}"
    );
    let ds = CkPlus::open(r, None, &skip()).unwrap();
    assert_eq!((ds.len(), ds.skipped().len()), (4, 1));
}

#[test]
fn image_folder_parses_class_names_and_names_unknown_folders() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    png(&r.join("flat/happy/a.png"), 8, 8, 1);
    jpeg(&r.join("flat/surprised/b.jpg"), 8, 8, 2);
    png(&r.join("flat/fearful/c.png"), 8, 8, 3);
    let ds = ImageFolder::open(&r.join("flat"), None, &OpenOptions::default()).unwrap();
    assert_eq!(ds.classes(), [Emotion::Fear, Emotion::Happiness, Emotion::Surprise]);
    assert_eq!(emotions(&ds), [Emotion::Fear, Emotion::Happiness, Emotion::Surprise]);
    let err = ImageFolder::open(&r.join("flat"), Some(SplitName::Val), &OpenOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("no split folders"), "{err}");

    png(&r.join("flat/smirk/d.png"), 8, 8, 4);
    png(&r.join("flat/meh/e.png"), 8, 8, 5);
    let err = ImageFolder::open(&r.join("flat"), None, &OpenOptions::default()).unwrap_err();
    match &err {
        Error::UnknownClasses { path, names, known } => {
            assert_eq!(path.as_path(), r.join("flat").as_path());
            assert_eq!(names, &["`meh`", "`smirk`"], "every unknown folder, at once");
            assert!(known.iter().any(|k| k == "anger"));
        }
        other => panic!("expected UnknownClasses, got {other}"),
    }
    assert!(err.to_string().contains("data.class_map"), "{err}");
    std::fs::remove_dir_all(r.join("flat/meh")).unwrap();
    assert_eq!(ImageFolder::open(&r.join("flat"), None, &skip()).unwrap().skipped().len(), 1);

    png(&r.join("split/train/happy/a.png"), 8, 8, 1);
    png(&r.join("split/train/sad/b.png"), 8, 8, 2);
    png(&r.join("split/test/neutral/c.png"), 8, 8, 3);
    let want = [Emotion::Happiness, Emotion::Neutral, Emotion::Sadness];
    for split in [SplitName::Train, SplitName::Test] {
        let ds = ImageFolder::open(&r.join("split"), Some(split), &OpenOptions::default()).unwrap();
        assert_eq!(ds.classes(), want);
    }
    let test = ImageFolder::open(&r.join("split"), Some(SplitName::Test), &OpenOptions::default())
        .unwrap();
    assert_eq!(emotions(&test), [Emotion::Neutral]);
    std::fs::create_dir_all(r.join("split/val/happy")).unwrap();
    let err = ImageFolder::open(&r.join("split"), Some(SplitName::Val), &OpenOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::EmptySplit { split: SplitName::Val, .. }), "{err}");
}

#[test]
fn image_folder_class_map_relabels_maps_and_skips_folders() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    png(&r.join("train/smiling/a.png"), 8, 8, 1);
    png(&r.join("train/Neutral/b.png"), 8, 8, 2);
    png(&r.join("train/misc/c.png"), 8, 8, 3);
    png(&r.join("val/smiling/d.png"), 8, 8, 4);
    png(&r.join("val/frown/e.png"), 8, 8, 5);
    let err = ImageFolder::open(r, Some(SplitName::Train), &OpenOptions::default()).unwrap_err();
    match &err {
        Error::UnknownClasses { names, .. } => {
            assert_eq!(names, &["`frown` (val)", "`misc` (train)", "`smiling` (train, val)"]);
        }
        other => panic!("expected UnknownClasses, got {other}"),
    }
    let map: ClassMap =
        serde_json::from_str(r#"{"smiling": "happy", "misc": "skip", "frown": "ANGER"}"#).unwrap();
    assert_eq!(map.0["smiling"], FolderClass::Expression(Emotion::Happiness));
    assert_eq!(map.0["misc"], FolderClass::Skip);
    let opts = OpenOptions { class_map: map, ..Default::default() };
    let want = [Emotion::Neutral, Emotion::Anger, Emotion::Happiness];
    let train = ImageFolder::open(r, Some(SplitName::Train), &opts).unwrap();
    assert_eq!(
        train.classes(),
        want,
        "folder names in byte order, as torchvision: Neutral, frown, smiling"
    );
    assert_eq!(emotions(&train), [Emotion::Neutral, Emotion::Happiness]);
    assert_eq!(train.excluded().iter().map(|e| e.count).sum::<usize>(), 1, "misc is left out");
    let val = ImageFolder::open(r, Some(SplitName::Val), &opts).unwrap();
    assert_eq!(val.classes(), want);
    assert_eq!(emotions(&val), [Emotion::Anger, Emotion::Happiness]);

    let bad = serde_json::from_str::<ClassMap>(r#"{"smiling": "glee"}"#).unwrap_err();
    assert!(bad.to_string().contains("neither an expression"), "{bad}");

    let s = survey(r).unwrap();
    assert_eq!(s.splits, [SplitName::Train, SplitName::Val]);
    let names: Vec<_> = s.classes.iter().map(|c| (c.name.as_str(), c.total())).collect();
    assert_eq!(names, [("Neutral", 1), ("frown", 1), ("misc", 1), ("smiling", 2)]);
}
