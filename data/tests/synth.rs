//! The synthetic expression set: reproducibility, layout, and that it is hard for a linear
//! model on pixels yet learnable by a small CNN (scikit-learn and torch, whose answers on the
//! seeded set are committed in `tests/golden/synth.json`, so this test needs no Python).

use std::path::{Path, PathBuf};

use fer_data::dataset::{Dataset, SplitName, Target};
use fer_data::synth::{FER_NAMES, SynthConfig, SynthDataset, render, write_fer_folder};

use fer_test_support::{GOLDEN_INPUTS_VAR, assert_golden_inputs, golden_json};

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for split in ["train", "val"] {
        for class in FER_NAMES {
            let dir = root.join(split).join(class);
            let mut names: Vec<_> =
                std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            names.sort();
            for p in names {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_identical_bytes_and_the_fer_folder_layout() {
    let cfg = SynthConfig { seed: 5, train_per_class: 3, val_per_class: 2, size: 48 };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(write_fer_folder(a.path(), &cfg).unwrap(), 35);
    write_fer_folder(b.path(), &cfg).unwrap();
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.len(), 35);
    assert_eq!(fa, fb, "same seed, same bytes");
    assert!(fa[0].0.ends_with("train/angry/synth_00000.png"), "{:?}", fa[0].0);
    assert!(fa[34].0.ends_with("val/neutral/synth_00001.png"), "{:?}", fa[34].0);
    let c = tempfile::tempdir().unwrap();
    write_fer_folder(c.path(), &SynthConfig { seed: 6, ..cfg.clone() }).unwrap();
    let fc = files(c.path());
    assert!(fa.iter().zip(&fc).all(|(x, y)| x.1 != y.1), "another seed draws other faces");
    // Splits and classes draw different faces too, and sizes are configurable.
    assert_ne!(render(5, SplitName::Train, 0, 0, 48), render(5, SplitName::Val, 0, 0, 48));
    assert_ne!(render(5, SplitName::Train, 0, 0, 48), render(5, SplitName::Train, 1, 0, 48));
    assert_eq!(render(5, SplitName::Train, 0, 0, 64).dimensions(), (64, 64));
    let bad = SynthConfig { size: 8, ..cfg };
    assert!(write_fer_folder(c.path(), &bad).unwrap_err().to_string().contains("synth.size"));
}

#[test]
fn synth_dataset_equals_the_written_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig { seed: 9, train_per_class: 2, val_per_class: 1, size: 40 };
    write_fer_folder(dir.path(), &cfg).unwrap();
    let ds = SynthDataset::new(9, SplitName::Val, 1, 40).unwrap();
    assert_eq!(ds.len(), 7);
    for (i, name) in FER_NAMES.iter().enumerate() {
        let s = ds.load(i).unwrap();
        assert_eq!(s.target, Target::Class(i));
        assert_eq!(ds.label(i), i);
        let path = dir.path().join("val").join(name).join("synth_00000.png");
        let disk = image::open(&path).unwrap();
        assert_eq!(disk, s.image, "{}", path.display());
        assert!(s.source.ends_with(&format!("val/{name}/synth_00000.png")));
    }
    assert!(ds.load(7).is_err());
}

/// The learnability set: 100 training and 50 validation faces per class, seed 1, 48 px.
const LEARNABILITY: SynthConfig =
    SynthConfig { seed: 1, train_per_class: 100, val_per_class: 50, size: 48 };

/// The decoded pixels of every image under `root` in (split, class, file name) order, as
/// `make_golden.py synth` reads them.
fn pixels(root: &Path) -> Vec<Vec<u8>> {
    files(root)
        .into_iter()
        .map(|(p, bytes)| {
            let img = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            img.into_luma8().into_raw()
        })
        .collect()
}

/// The first step of `scripts/golden/make_golden.sh`: with `FER_GOLDEN_INPUTS` set, the
/// learnability set is written there for the reference script. Otherwise it does nothing.
#[test]
fn golden_inputs_are_written_when_asked() {
    if let Some(dir) = std::env::var_os(GOLDEN_INPUTS_VAR).filter(|v| !v.is_empty()) {
        write_fer_folder(&Path::new(&dir).join("synth"), &LEARNABILITY).unwrap();
    }
}

/// Ridge regression on raw pixels (scikit-learn) and a 3-layer CNN (torch, 20 epochs, seeded)
/// were trained on this set by `make_golden.py synth`; `tests/golden/synth.json` keeps their
/// validation accuracies and the SHA-256 of the pixels they saw.
#[test]
fn classes_are_hard_for_a_linear_classifier_and_learnable_by_a_small_cnn() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(write_fer_folder(dir.path(), &LEARNABILITY).unwrap(), 1050);
    let r = golden_json(env!("CARGO_MANIFEST_DIR"), "synth.json");
    let px = pixels(dir.path());
    let parts: Vec<&[u8]> = px.iter().map(Vec::as_slice).collect();
    assert_golden_inputs("synth learnability", &r, &parts);
    assert_eq!((r["train"].as_u64(), r["val"].as_u64()), (Some(700), Some(350)));
    eprintln!("synth learnability (golden): {r}");
    let (linear, cnn) = (r["linear"].as_f64().unwrap(), r["cnn"].as_f64().unwrap());
    assert!(linear < 0.6, "ridge on raw pixels reaches {linear:.3}: the set is too easy");
    assert!(cnn >= 0.85, "a 3-layer CNN reaches only {cnn:.3}: the set is not learnable enough");
    assert!(cnn - linear > 0.3, "CNN {cnn:.3} vs linear {linear:.3}");
}
