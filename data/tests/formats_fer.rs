//! FER-2013 (CSV and folders) and FER+ readers on fixtures written into a tempdir.

mod formats_support;

use std::path::Path;

use fer_data::formats::{Fer2013Csv, Fer2013Folder, FerPlus, FerPlusMode, OpenOptions};
use fer_data::inspect::inspect_decoding;
use fer_data::{Dataset, Emotion, Error, SplitName, Target};
use formats_support::{fer_line, fer_pixels, png, truncate, write};

const HEADER: &str = "emotion,pixels,Usage\n";

fn skip() -> OpenOptions {
    OpenOptions { skip_bad: true, ..Default::default() }
}

fn gray(ds: &dyn Dataset, i: usize) -> Vec<u8> {
    ds.load(i).unwrap().image.into_luma8().into_raw()
}

#[test]
fn fer2013_csv_maps_ids_splits_by_usage_and_round_trips_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer2013.csv");
    let rows = [
        ("3", "Training"),
        ("0", "Training"),
        ("6", "PublicTest"),
        ("5", "PrivateTest"),
        ("2", "PrivateTest"),
    ];
    let mut text = HEADER.to_string();
    for (k, (e, u)) in rows.iter().enumerate() {
        text += &fer_line(e, &fer_pixels(k as u32), u);
    }
    write(&csv, &text);
    let o = OpenOptions::default();
    let train = Fer2013Csv::open(&csv, Some(SplitName::Train), &o).unwrap();
    let val = Fer2013Csv::open(dir.path(), Some(SplitName::Val), &o).unwrap();
    let test = Fer2013Csv::open(&csv, Some(SplitName::Test), &o).unwrap();
    let all = Fer2013Csv::open(&csv, None, &o).unwrap();
    assert_eq!((train.len(), val.len(), test.len(), all.len()), (2, 1, 2, 5));
    let names = |ds: &Fer2013Csv| -> Vec<Emotion> {
        (0..ds.len()).map(|i| ds.classes()[ds.label(i)]).collect()
    };
    assert_eq!(names(&train), [Emotion::Happiness, Emotion::Anger]);
    assert_eq!(names(&val), [Emotion::Neutral]);
    assert_eq!(names(&test), [Emotion::Surprise, Emotion::Fear]);
    for (i, row) in [3usize, 4].into_iter().enumerate() {
        let s = test.load(i).unwrap();
        assert_eq!(s.source, format!("{}:{}", csv.display(), row + 2));
        assert_eq!((s.image.width(), s.image.height()), (48, 48));
        assert!(matches!(s.image, image::DynamicImage::ImageLuma8(_)));
        assert_eq!(s.image.into_luma8().into_raw(), fer_pixels(row as u32));
    }
    assert_eq!(gray(&all, 2), fer_pixels(2));
    assert!(train.skipped().is_empty());
}

#[test]
fn fer2013_csv_bad_rows_name_their_line_and_skip_bad_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer2013.csv");
    let p = fer_pixels(0);
    let mut text = HEADER.to_string();
    text += &fer_line("1", &p, "Training"); // line 2: good
    text += &fer_line("1", &p[..2303], "Training"); // line 3: 2303 values
    text += &fer_line("9", &p, "Training"); // line 4: label out of range
    text += &fer_line("1", &p, "Dev"); // line 5: bad Usage
    let vals: Vec<String> = p.iter().map(|v| v.to_string()).collect();
    text += &format!("1,300 {},Training\n", vals[1..].join(" ")); // line 6: a value of 300
    text += &fer_line("4", &p, "PublicTest"); // line 7: good
    write(&csv, &text);

    let err = Fer2013Csv::open(&csv, None, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Csv { line: 3, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}:3", csv.display())) && msg.contains("2303"), "{msg}");

    let all = Fer2013Csv::open(&csv, None, &skip()).unwrap();
    assert_eq!(all.len(), 2);
    let lines: Vec<String> = all.skipped().iter().map(|s| s.source.clone()).collect();
    let want: Vec<String> = [3, 4, 5, 6].iter().map(|l| format!("{}:{l}", csv.display())).collect();
    assert_eq!(lines, want);
    let reasons: Vec<&str> = all.skipped().iter().map(|s| s.reason.as_str()).collect();
    assert!(reasons[1].contains("emotion `9`"), "{reasons:?}");
    assert!(reasons[2].contains("Usage `Dev`"), "{reasons:?}");
    assert!(reasons[3].contains("`300`"), "{reasons:?}");
    // Training rows of other splits are not parsed; the row with a bad Usage belongs to none.
    let val = Fer2013Csv::open(&csv, Some(SplitName::Val), &skip()).unwrap();
    assert_eq!((val.len(), val.skipped().len()), (1, 1));
    assert_eq!(gray(&val, 0), p);
}

#[test]
fn fer2013_csv_empty_split_and_bad_header_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer2013.csv");
    write(&csv, &(HEADER.to_string() + &fer_line("0", &fer_pixels(1), "Training")));
    let err = Fer2013Csv::open(&csv, Some(SplitName::Test), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, Error::EmptySplit { split: SplitName::Test, .. }), "{err}");
    assert!(err.to_string().contains(&csv.display().to_string()), "{err}");
    write(&csv, "label,image\n0,1 2 3\n");
    let err = Fer2013Csv::open(&csv, None, &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Csv { line: 1, .. }), "{err}");
}

fn fer_folder(root: &Path) {
    png(&root.join("train/angry/a0.png"), 48, 48, 1);
    png(&root.join("train/angry/a1.png"), 48, 48, 2);
    png(&root.join("train/happy/h0.png"), 48, 48, 3);
    png(&root.join("train/neutral/n0.png"), 48, 48, 4);
    png(&root.join("val/happy/h1.png"), 48, 48, 5);
    png(&root.join("val/sad/s0.png"), 48, 48, 6);
    write(&root.join("train/.DS_Store"), "junk");
    write(&root.join("train/README.txt"), "not a class");
}

#[test]
fn fer2013_folder_uses_fer_ids_and_split_folders() {
    let dir = tempfile::tempdir().unwrap();
    fer_folder(dir.path());
    let o = OpenOptions::default();
    let train = Fer2013Folder::open(dir.path(), Some(SplitName::Train), &o).unwrap();
    let val = Fer2013Folder::open(dir.path(), Some(SplitName::Val), &o).unwrap();
    assert_eq!(train.classes(), fer_data::labels::FER2013);
    let labels: Vec<usize> = (0..train.len()).map(|i| train.label(i)).collect();
    assert_eq!(labels, [0, 0, 3, 6]);
    assert_eq!((0..val.len()).map(|i| val.label(i)).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(train.excluded().len(), 1);
    assert_eq!(
        (train.excluded()[0].reason.as_str(), train.excluded()[0].count),
        ("files outside class folders", 1)
    );
    let s = val.load(1).unwrap();
    assert!(s.source.ends_with("s0.png"));
    assert_eq!(s.target, Target::Class(4));
    let want: Vec<u8> = (0..48 * 48).map(|i| formats_support::px(6, i % 48, i / 48)).collect();
    assert_eq!(s.image.into_luma8().into_raw(), want);

    let err = Fer2013Folder::open(dir.path(), Some(SplitName::Test), &o).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("split `test`") && msg.contains("found: train, val"), "{msg}");
}

#[test]
fn fer2013_folder_bad_files_and_unknown_classes_are_named_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    png(&root.join("train/angry/a.png"), 48, 48, 1);
    write(&root.join("train/angry/notes.txt"), "this is not an image");
    write(&root.join("train/angry/z.jpg"), "garbage with a jpeg name");
    png(&root.join("train/happy/t.png"), 48, 48, 2);
    truncate(&root.join("train/happy/t.png"), 70);
    png(&root.join("train/smirk/x.png"), 48, 48, 3);
    png(&root.join("train/contempt/c.png"), 48, 48, 3);

    let err =
        Fer2013Folder::open(root, Some(SplitName::Train), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedImage { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt: not an image in a format read here"), "{err}");

    let ds = Fer2013Folder::open(root, Some(SplitName::Train), &skip()).unwrap();
    assert_eq!(ds.len(), 2);
    let sources: Vec<&str> = ds.skipped().iter().map(|s| s.source.as_str()).collect();
    assert_eq!(sources.len(), 4, "{sources:?}");
    assert!(sources[0].ends_with("notes.txt"), "{sources:?}");
    assert!(sources[1].ends_with("z.jpg"), "{sources:?}");
    assert!(ds.skipped()[1].reason.contains("cannot decode image"), "{:?}", ds.skipped());
    assert!(
        sources[2].ends_with("contempt")
            && ds.skipped()[2].reason.contains("unknown class `contempt`")
    );
    assert!(
        sources[3].ends_with("smirk") && ds.skipped()[3].reason.contains("known: angry, disgust")
    );
    // The truncated PNG has a valid header: found when decoding, naming the file.
    let err = ds.load(1).unwrap_err();
    assert!(matches!(err, Error::Image { .. }) && err.to_string().contains("t.png"), "{err}");
    let report =
        inspect_decoding(fer_data::formats::Format::Fer2013Folder, root, &OpenOptions::default())
            .unwrap();
    let part = &report.parts[0];
    assert_eq!((part.total, part.skipped.len(), part.decode_failures.len()), (2, 4, 1));
    assert!(part.decode_failures[0].source.ends_with("t.png"));
}

/// `fer2013.csv` rows (seeds 0..6) and the matching `fer2013new.csv`.
fn ferplus_fixture(dir: &Path) {
    let usages = ["Training", "Training", "Training", "PublicTest", "PublicTest", "PrivateTest"];
    let mut fer = HEADER.to_string();
    for (k, u) in usages.iter().enumerate() {
        fer += &fer_line("0", &fer_pixels(k as u32), u);
    }
    write(&dir.join("fer2013.csv"), &fer);
    let votes = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n\
        Training,fer0000000.png,0,8,2,0,0,0,0,0,0,0\n\
        Training,fer0000001.png,0,0,0,4,4,0,0,0,2,0\n\
        Training,,10,0,0,0,0,0,0,0,0,0\n\
        PublicTest,fer0000003.png,0,0,0,0,0,0,4,0,6,0\n\
        PublicTest,fer0000004.png,3,0,0,0,0,0,0,0,0,7\n\
        PrivateTest,fer0000005.png,0,0,0,0,0,3,0,6,0,1\n";
    write(&dir.join("fer2013new.csv"), votes);
}

fn excluded(ds: &FerPlus) -> Vec<(String, usize)> {
    ds.excluded().iter().map(|e| (e.reason.clone(), e.count)).collect()
}

#[test]
fn ferplus_majority_mode_keeps_clear_majorities_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    ferplus_fixture(dir.path());
    let ds = FerPlus::open(dir.path(), None, &OpenOptions::default()).unwrap();
    assert_eq!(ds.classes(), Emotion::ALL);
    assert_eq!(ds.len(), 2);
    assert_eq!(
        (ds.classes()[ds.label(0)], ds.classes()[ds.label(1)]),
        (Emotion::Happiness, Emotion::Contempt)
    );
    assert_eq!(gray(&ds, 0), fer_pixels(0));
    assert_eq!(gray(&ds, 1), fer_pixels(5));
    assert_eq!(ds.source(1), format!("{}:7", dir.path().join("fer2013new.csv").display()));
    let e = excluded(&ds);
    let want = [
        ("FER+ majority: not a face (NF)", 1),
        ("FER+ majority: tied top vote", 1),
        ("FER+ majority: unknown", 1),
        ("FER+ no image name (removed by the FER+ authors)", 1),
    ];
    assert_eq!(e, want.map(|(r, c)| (r.to_string(), c)));
    let train = FerPlus::open(dir.path(), Some(SplitName::Train), &OpenOptions::default()).unwrap();
    assert_eq!(train.len(), 1);
}

#[test]
fn ferplus_soft_mode_gives_normalised_votes() {
    let dir = tempfile::tempdir().unwrap();
    ferplus_fixture(dir.path());
    let o = OpenOptions { ferplus_mode: FerPlusMode::Soft, ..Default::default() };
    let ds = FerPlus::open(&dir.path().join("fer2013new.csv"), None, &o).unwrap();
    let targets: Vec<Target> = (0..ds.len()).map(|i| ds.load(i).unwrap().target).collect();
    let t = |v: [f32; 8]| Target::Soft(v.to_vec());
    assert_eq!(
        targets,
        [
            t([0.0, 0.8, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0]),
            t([0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0]),
            t([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            t([0.0, 0.0, 0.0, 0.0, 0.0, 3.0 / 9.0, 0.0, 6.0 / 9.0]),
        ]
    );
    let labels: Vec<usize> = (0..ds.len()).map(|i| ds.label(i)).collect();
    assert_eq!(labels, [1, 3, 6, 7]);
    assert_eq!(gray(&ds, 2), fer_pixels(3));
    assert_eq!(excluded(&ds).iter().map(|e| e.1).sum::<usize>(), 2);
}

#[test]
fn ferplus_reads_an_image_folder_and_names_missing_images() {
    let dir = tempfile::tempdir().unwrap();
    ferplus_fixture(dir.path());
    let imgs = dir.path().join("images");
    png(&imgs.join("FER2013Train/fer0000000.png"), 48, 48, 40);
    png(&imgs.join("fer0000005.png"), 48, 48, 45);
    let o = OpenOptions { ferplus_images: Some(imgs.clone()), ..Default::default() };
    let train = FerPlus::open(dir.path(), Some(SplitName::Train), &o).unwrap();
    assert_eq!(train.len(), 1);
    let s = train.load(0).unwrap();
    assert_eq!(s.target, Target::Class(1));
    assert_eq!(s.image.into_luma8().get_pixel(3, 2).0[0], formats_support::px(40, 3, 2));
    let test = FerPlus::open(dir.path(), Some(SplitName::Test), &o).unwrap();
    assert_eq!(test.label(0), 7);

    std::fs::remove_file(imgs.join("fer0000005.png")).unwrap();
    let err = FerPlus::open(dir.path(), Some(SplitName::Test), &o).unwrap_err();
    assert!(err.to_string().contains("fer0000005.png"), "{err}");
    let o = OpenOptions { skip_bad: true, ..o };
    let err = FerPlus::open(dir.path(), Some(SplitName::Test), &o).unwrap_err();
    assert!(
        matches!(err, Error::EmptySplit { .. }) && err.to_string().contains("1 bad items"),
        "{err}"
    );
}

#[test]
fn ferplus_bad_votes_and_row_count_mismatch_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    ferplus_fixture(dir.path());
    let new = dir.path().join("fer2013new.csv");
    let text = std::fs::read_to_string(&new).unwrap();
    write(&new, &text.replace("0,0,0,4,4,0,0,0,2,0", "0,0,0,x,4,0,0,0,2,0"));
    let err = FerPlus::open(dir.path(), None, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::Csv { line: 3, .. }) && err.to_string().contains("sadness votes `x`"),
        "{err}"
    );
    let ds = FerPlus::open(dir.path(), None, &skip()).unwrap();
    assert_eq!((ds.len(), ds.skipped().len()), (2, 1));

    write(&new, &text);
    let fer = dir.path().join("fer2013.csv");
    let lines: Vec<String> =
        std::fs::read_to_string(&fer).unwrap().lines().take(5).map(str::to_string).collect();
    write(&fer, &(lines.join("\n") + "\n"));
    let err = FerPlus::open(dir.path(), None, &OpenOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("4 data rows") && err.to_string().contains("fer2013.csv"),
        "{err}"
    );
}
