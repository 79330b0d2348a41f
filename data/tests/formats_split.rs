//! Split plans, the inspect report, and the label map.

mod formats_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fer_data::formats::{CkPlus, Format, OpenOptions};
use fer_data::inspect::inspect;
use fer_data::labels::{self, shared_classes};
use fer_data::split::{self, SplitPlan, Strategy};
use fer_data::{Dataset, Emotion, Error, Sample, SplitName};
use formats_support::{fer_line, fer_pixels, png, write};

/// An in-memory listing: labels and groups only.
struct Toy {
    prefix: &'static str,
    /// Added to the index in the source name: another listing of files.
    shift: usize,
    labels: Vec<usize>,
    groups: Vec<String>,
}

impl Dataset for Toy {
    fn classes(&self) -> &[Emotion] {
        &labels::FER2013
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn group(&self, i: usize) -> Option<&str> {
        self.groups.get(i).map(String::as_str)
    }
    fn source(&self, i: usize) -> String {
        format!("{}/{}", self.prefix, i + self.shift)
    }
    fn load(&self, i: usize) -> fer_data::Result<Sample> {
        Err(Error::Index { index: i, len: 0 })
    }
}

/// 1400 samples, class c has 50 * (c + 1) samples (50..350), interleaved.
fn toy() -> Toy {
    let mut labels = Vec::new();
    for c in 0..7 {
        labels.extend(std::iter::repeat_n(c, 50 * (c + 1)));
    }
    let n = labels.len();
    let labels = (0..n).map(|i| labels[(i * 7919) % n]).collect();
    Toy { prefix: "toy", shift: 0, labels, groups: Vec::new() }
}

#[test]
fn stratified_split_is_deterministic_per_seed_and_balanced_by_class() {
    let ds = toy();
    let a = split::stratified(&ds, 0.1, 0.2, 42).unwrap();
    assert_eq!(a, split::stratified(&ds, 0.1, 0.2, 42).unwrap());
    assert_ne!(
        a.part(SplitName::Val),
        split::stratified(&ds, 0.1, 0.2, 43).unwrap().part(SplitName::Val)
    );
    let mut seen = HashSet::new();
    for p in &a.parts {
        for &i in &p.indices {
            assert!(seen.insert(i), "index {i} in two parts");
        }
    }
    assert_eq!(seen.len(), ds.len());
    for c in 0..7 {
        let n = 50 * (c + 1);
        let count = |s| a.part(s).unwrap().indices.iter().filter(|&&i| ds.label(i) == c).count();
        let want_val = (n as f64 * 0.1).round() as usize;
        let want_test = (n as f64 * 0.2).round() as usize;
        assert_eq!(
            (count(SplitName::Val), count(SplitName::Test)),
            (want_val, want_test),
            "class {c}"
        );
        assert_eq!(count(SplitName::Train), n - want_val - want_test);
    }
    assert!(matches!(split::stratified(&ds, 0.5, 0.5, 1), Err(Error::Invalid { .. })));
}

#[test]
fn grouped_kfold_never_puts_a_subject_in_two_folds() {
    let dir = tempfile::tempdir().unwrap();
    let classes = ["anger", "contempt", "happy", "surprise"];
    let mut n = 0;
    for subject in 1..=23u32 {
        for seq in 0..(1 + subject % 3) {
            let class = classes[((subject + seq) % 4) as usize];
            for frame in 0..3 {
                let name = format!("{class}/S{subject:03}_{seq:03}_{frame:08}.png");
                png(&dir.path().join(name), 4, 4, n);
                n += 1;
            }
        }
    }
    let ds = CkPlus::open(dir.path(), None, &OpenOptions::default()).unwrap();
    assert_eq!(ds.len(), n as usize);
    let folds = split::grouped_folds(&ds, 5, 3).unwrap();
    assert_eq!(folds, split::grouped_folds(&ds, 5, 3).unwrap());
    let mut fold_of: HashMap<&str, usize> = HashMap::new();
    for (f, idx) in folds.iter().enumerate() {
        for &i in idx {
            let g = ds.group(i).unwrap();
            assert_eq!(*fold_of.entry(g).or_insert(f), f, "subject {g} in two folds");
        }
    }
    assert_eq!(fold_of.len(), 23);
    assert_eq!(folds.iter().map(Vec::len).sum::<usize>(), ds.len());
    let sizes: Vec<usize> = folds.iter().map(Vec::len).collect();
    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(hi - lo <= 9, "unbalanced folds {sizes:?}");

    let plan = split::grouped_kfold(&ds, 5, 2, 3).unwrap();
    assert_eq!(plan.strategy, Strategy::GroupedKFold { k: 5, fold: 2, seed: 3 });
    assert_eq!(plan.part(SplitName::Test).unwrap().indices, folds[2]);
    let train: HashSet<_> =
        plan.part(SplitName::Train).unwrap().indices.iter().map(|&i| ds.group(i)).collect();
    assert!(folds[2].iter().all(|&i| !train.contains(&ds.group(i))));
    assert!(split::grouped_folds(&ds, 24, 0).is_err());
    assert!(split::grouped_folds(&toy(), 2, 0).is_err(), "samples without groups");
}

#[test]
fn split_plan_round_trips_as_json_and_checks_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let ds: Arc<dyn Dataset> = Arc::new(toy());
    let plan = split::stratified(ds.as_ref(), 0.25, 0.0, 9).unwrap();
    assert_eq!(plan.parts.len(), 2, "no empty test part");
    let path = dir.path().join("split.json");
    plan.save(&path).unwrap();
    let back = SplitPlan::load(&path).unwrap();
    assert_eq!(back, plan);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["strategy"]["kind"], "stratified");
    assert_eq!(json["parts"][1]["split"], "val");

    let val = back.subset(SplitName::Val, ds.clone()).unwrap();
    let want: usize = (1..=7).map(|c| (50.0 * c as f64 * 0.25).round() as usize).sum();
    assert_eq!(val.len(), want);
    let i = val.indices()[5];
    assert_eq!((val.label(5), val.source(5)), (ds.label(i), format!("toy/{i}")));
    assert!(matches!(back.subset(SplitName::Test, ds.clone()), Err(Error::Invalid { .. })));
    // The same files elsewhere (another machine's copy) are the same listing...
    let moved: Arc<dyn Dataset> = Arc::new(Toy { prefix: "/elsewhere/toy", ..toy() });
    assert_eq!(back.subset(SplitName::Val, moved).unwrap().indices(), val.indices());
    // ...other files are not.
    let other: Arc<dyn Dataset> = Arc::new(Toy { shift: 1, ..toy() });
    let err = back.subset(SplitName::Val, other).unwrap_err();
    assert!(err.to_string().contains("different listing"), "{err}");
    let short: Arc<dyn Dataset> = Arc::new(Toy { labels: vec![0; 10], ..toy() });
    assert!(matches!(back.subset(SplitName::Train, short), Err(Error::Index { .. })));
    write(
        &path,
        "{\"version\": 1, \"strategy\": {\"kind\": \"official\"}, \"parts\": [], \"extra\": 1}",
    );
    let err = SplitPlan::load(&path).unwrap_err();
    assert!(err.to_string().contains("split.json") && err.to_string().contains("extra"), "{err}");
}

#[test]
fn inspect_reports_counts_per_split_and_class_with_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fer2013.csv");
    let mut text = "emotion,pixels,Usage\n".to_string();
    for (e, u) in [("3", "Training"), ("3", "Training"), ("0", "Training"), ("6", "PublicTest")] {
        text += &fer_line(e, &fer_pixels(1), u);
    }
    text += "2,1 2 3,PrivateTest\n";
    write(&csv, &text);
    let report = inspect(Format::Fer2013Csv, &csv, &OpenOptions::default()).unwrap();
    let counts: Vec<(Option<SplitName>, usize, usize, usize)> = report
        .parts
        .iter()
        .map(|p| (p.split, p.total, p.classes[3].count, p.skipped.len()))
        .collect();
    assert_eq!(counts, [(Some(SplitName::Train), 3, 2, 0), (Some(SplitName::Val), 1, 0, 0)]);
    assert_eq!(report.missing.len(), 1);
    assert!(report.missing[0].reason.contains("split `test` has no samples (1 bad items skipped"));
    let table = report.to_string();
    assert!(table.contains("happiness        2     0"), "{table}");
    assert!(table.contains("total            3     1"), "{table}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["format"], "fer2013-csv");
    assert_eq!(json["parts"][0]["classes"][3]["emotion"], "happiness");

    let missing = inspect(Format::CkPlus, &dir.path().join("nothing"), &OpenOptions::default());
    assert!(matches!(missing, Err(Error::Io { .. })));
}

#[test]
fn emotion_names_parse_across_datasets_and_shared_classes_explain_drops() {
    let spellings = [
        ("Angry", Emotion::Anger),
        ("anger", Emotion::Anger),
        ("HAPPY", Emotion::Happiness),
        ("happiness", Emotion::Happiness),
        ("sad", Emotion::Sadness),
        ("sadness", Emotion::Sadness),
        ("surprised", Emotion::Surprise),
        ("surprise", Emotion::Surprise),
        ("fearful", Emotion::Fear),
        ("disgusted", Emotion::Disgust),
        ("neutral", Emotion::Neutral),
        ("contempt", Emotion::Contempt),
    ];
    for (s, e) in spellings {
        assert_eq!(Emotion::parse(s), Some(e), "{s}");
        assert_eq!(Emotion::parse(e.name()), Some(e));
    }
    assert_eq!(Emotion::parse("smirk"), None);
    assert_eq!(labels::RAFDB[0], Emotion::Surprise);
    assert_eq!(labels::AFFECTNET[2], Emotion::Sadness);
    assert_eq!(labels::FER2013[6], Emotion::Neutral);

    let ck = [
        Emotion::Anger,
        Emotion::Contempt,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happiness,
        Emotion::Sadness,
        Emotion::Surprise,
    ];
    let s = shared_classes(&labels::FER2013, &ck);
    assert_eq!(s.shared, &labels::FER2013[..6]);
    assert_eq!(s.model_indices, [0, 1, 2, 3, 4, 5]);
    assert_eq!(s.data_indices, [0, 2, 3, 4, 5, 6]);
    assert_eq!(
        (s.dropped_from_model.as_slice(), s.dropped_from_data.as_slice()),
        ([Emotion::Neutral].as_slice(), [Emotion::Contempt].as_slice())
    );
    let why = s.reason().unwrap();
    assert!(
        why.contains("neutral are not in the dataset")
            && why.contains("contempt are not predicted"),
        "{why}"
    );
    assert_eq!(shared_classes(&labels::FER2013, &labels::FER2013).reason(), None);

    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().unwrap(), f);
        assert_eq!(serde_json::to_value(f).unwrap(), f.name());
    }
    assert_eq!("FER-Plus".parse::<Format>().unwrap(), Format::FerPlus);
    assert_eq!(serde_json::from_str::<Format>("\"ck-plus\"").unwrap(), Format::CkPlus);
    assert_eq!(Format::AffectNetCsv.to_string(), "affectnet-csv");
    assert!("fer".parse::<Format>().unwrap_err().to_string().contains("fer2013-csv"));
}

#[test]
fn calibration_hold_out_comes_out_of_train_only_stratified_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let ds: Arc<dyn Dataset> = Arc::new(toy());
    let mut plan = split::stratified(ds.as_ref(), 0.2, 0.0, 3).unwrap();
    let val_before = plan.part(SplitName::Val).unwrap().clone();
    let train_before: HashSet<usize> =
        plan.part(SplitName::Train).unwrap().indices.iter().copied().collect();
    plan.hold_out(ds.as_ref(), 0.1, 7).unwrap();

    let held = plan.calibration.clone().unwrap();
    let train: HashSet<usize> =
        plan.part(SplitName::Train).unwrap().indices.iter().copied().collect();
    let calib: HashSet<usize> = held.indices.iter().copied().collect();
    assert_eq!(plan.part(SplitName::Val).unwrap(), &val_before, "validation untouched");
    assert!(train.is_disjoint(&calib));
    assert_eq!(train.union(&calib).copied().collect::<HashSet<_>>(), train_before);
    for c in 0..7 {
        let in_train = train_before.iter().filter(|&&i| ds.label(i) == c).count();
        let n = held.indices.iter().filter(|&&i| ds.label(i) == c).count();
        assert_eq!(n, (in_train as f64 * 0.1).round() as usize, "class {c}");
    }
    // The same seed draws the same samples; another seed others.
    let mut again = split::stratified(ds.as_ref(), 0.2, 0.0, 3).unwrap();
    again.hold_out(ds.as_ref(), 0.1, 7).unwrap();
    assert_eq!(again, plan);
    let mut other = split::stratified(ds.as_ref(), 0.2, 0.0, 3).unwrap();
    other.hold_out(ds.as_ref(), 0.1, 8).unwrap();
    assert_ne!(other.calibration, plan.calibration);

    let path = dir.path().join("split.json");
    plan.save(&path).unwrap();
    let back = SplitPlan::load(&path).unwrap();
    assert_eq!(back, plan);
    let sub = back.calibration_subset(ds.clone()).unwrap();
    assert_eq!(sub.indices(), held.indices.as_slice());
    let moved: Arc<dyn Dataset> = Arc::new(Toy { prefix: "/data/copy", ..toy() });
    assert_eq!(back.calibration_subset(moved).unwrap().indices(), held.indices.as_slice());
    let other: Arc<dyn Dataset> = Arc::new(Toy { shift: 1, ..toy() });
    let err = back.calibration_subset(other).unwrap_err();
    assert!(err.to_string().contains("calibration hold-out"), "{err}");
    // A plan written before hold-outs existed still loads, and says it has none.
    let old = split::stratified(ds.as_ref(), 0.2, 0.0, 3).unwrap();
    old.save(&path).unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains("calibration"));
    let err = SplitPlan::load(&path).unwrap().calibration_subset(ds.clone()).unwrap_err();
    assert!(err.to_string().contains("calib_fraction"), "{err}");

    assert!(matches!(plan.hold_out(ds.as_ref(), 0.1, 1), Err(Error::Invalid { .. })));
    let mut p = split::stratified(ds.as_ref(), 0.2, 0.0, 3).unwrap();
    assert!(matches!(p.hold_out(ds.as_ref(), 1.0, 1), Err(Error::Invalid { .. })));
    let tiny: Arc<dyn Dataset> = Arc::new(Toy { labels: vec![0, 1, 1, 1], ..toy() });
    let mut p = SplitPlan::official(&[(SplitName::Train, tiny.as_ref())]);
    let err = p.hold_out(tiny.as_ref(), 0.5, 1).unwrap_err();
    assert!(err.to_string().contains("leaves none to train on"), "{err}");
}

#[test]
fn cross_fit_folds_partition_the_training_part_stratified_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ds: Arc<dyn Dataset> = Arc::new(toy());
    let base = split::stratified(ds.as_ref(), 0.1, 0.0, 3).unwrap();
    let train_all: HashSet<usize> =
        base.part(SplitName::Train).unwrap().indices.iter().copied().collect();
    let (k, seed) = (4, 11);
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut sizes = Vec::new();
    for fold in 0..k {
        let mut plan = base.clone();
        plan.leave_out_fold(ds.as_ref(), k, fold, seed).unwrap();
        let left = plan.left_out.clone().unwrap();
        assert_eq!((left.folds, left.fold, left.seed), (k, fold, seed));
        let train: HashSet<usize> =
            plan.part(SplitName::Train).unwrap().indices.iter().copied().collect();
        let out: HashSet<usize> = left.indices.iter().copied().collect();
        assert!(train.is_disjoint(&out), "fold {fold} is not trained on");
        assert_eq!(train.union(&out).copied().collect::<HashSet<_>>(), train_all);
        assert_eq!(plan.part(SplitName::Val), base.part(SplitName::Val), "validation untouched");
        for c in 0..7 {
            let n = train_all.iter().filter(|&&i| ds.label(i) == c).count();
            let m = out.iter().filter(|&&i| ds.label(i) == c).count();
            assert!(m == n / k || m == n.div_ceil(k), "class {c}: {m} of {n} in fold {fold}");
        }
        for i in out {
            *seen.entry(i).or_default() += 1;
        }
        sizes.push(left.indices.len());
        // Saved and read back unchanged; the same call again is the same fold.
        let path = dir.path().join(format!("split{fold}.json"));
        plan.save(&path).unwrap();
        assert_eq!(SplitPlan::load(&path).unwrap(), plan);
        let mut again = base.clone();
        again.leave_out_fold(ds.as_ref(), k, fold, seed).unwrap();
        assert_eq!(again, plan);
        assert!(matches!(
            plan.leave_out_fold(ds.as_ref(), k, fold, seed),
            Err(Error::Invalid { .. })
        ));
    }
    // The k folds are disjoint and cover the training part: each sample left out exactly once.
    assert_eq!(seen.len(), train_all.len());
    assert!(seen.values().all(|&n| n == 1));
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
    // Another seed deals other folds.
    let (mut a, mut b) = (base.clone(), base.clone());
    a.leave_out_fold(ds.as_ref(), k, 0, seed).unwrap();
    b.leave_out_fold(ds.as_ref(), k, 0, seed + 1).unwrap();
    assert_ne!(a.left_out, b.left_out);

    let mut p = base.clone();
    for (folds, fold) in [(1, 0), (3, 3)] {
        let err = p.leave_out_fold(ds.as_ref(), folds, fold, 1).unwrap_err();
        assert!(err.to_string().contains("0 <= fold < folds"), "{err}");
    }
    let tiny: Arc<dyn Dataset> = Arc::new(Toy { labels: vec![0, 0, 0, 1, 1], ..toy() });
    let mut p = SplitPlan::official(&[(SplitName::Train, tiny.as_ref())]);
    let err = p.leave_out_fold(tiny.as_ref(), 3, 0, 1).unwrap_err();
    assert!(err.to_string().contains("fewer than 3 folds"), "{err}");
}
