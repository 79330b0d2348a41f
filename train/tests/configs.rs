//! The experiment configs: every shipped file is valid, errors name their field and line,
//! `--set` works, the resolved TOML round-trips and hashes stably.

use std::path::{Path, PathBuf};
use std::process::Command;

use fer_train::config::{ConfigError, ExperimentConfig, Validation};
use fer_train::lower::WeightInit;

const REPO: &str = env!("FER_REPO_ROOT");

/// Every `.toml` under `configs/`, walked at test time so new files are covered.
fn config_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(REPO).join("configs"), &mut out);
    out
}

/// A small valid config; tests edit its text.
const BASE: &str = r#"
version = 1
name = "t"

[data]
format = "fer2013-folder"
root = "data"
train_split = "train"
val_split = "val"

[model]
arch = "mobilenet_v3_small"
num_classes = 7
input_size = 64

[optim]
optimizer = "sgd"
lr = 0.1

[[teachers]]
name = "resnet50"
checkpoint = "runs/teacher/best.safetensors"

[[stages]]
name = "one"
epochs = 2

[[stages.loss]]
kind = "cross_entropy"
weight = 1.0

[[stages.loss]]
kind = "kd"
weight = 0.5
temperature = 4.0
"#;

fn parse(text: &str) -> Result<ExperimentConfig, ConfigError> {
    ExperimentConfig::from_toml_str(text, Path::new("/cfg/exp/test.toml"))
}

#[test]
fn every_shipped_config_parses_validates_and_references_existing_teacher_runs() {
    let files = config_files();
    let datasets = ["affectnet", "ckplus", "demo", "fer2013", "rafdb"];
    let families = ["exp1_finetune", "exp2_response_kd_two_phase", "exp3_baseline", "exp4_rkd"];
    for ds in datasets {
        for stem in families.iter().chain(&["exp5_hybrid_kd", "teacher_inception_v3"]) {
            let p = Path::new(REPO).join(format!("configs/{ds}/{stem}.toml"));
            assert!(files.contains(&p), "missing {}", p.display());
        }
    }
    let mut loaded = Vec::new();
    for f in &files {
        let cfg = ExperimentConfig::load(f).unwrap_or_else(|e| panic!("{e}"));
        cfg.validate().unwrap_or_else(|e| panic!("{e}"));
        loaded.push(cfg);
    }
    // Every teacher checkpoint is the best.safetensors of a shipped config's run (or of one
    // seed of it, `--seeds`: RUN/seed<k>/), with the same classes; so configs can be chained
    // (teacher run, then student run). A teacher is named after its producer: the run name
    // after `teacher_` (which starts with the architecture, as `resnet18` or `resnet18_strong`),
    // with `_s<k>` when it is seed k's run.
    let best = |c: &ExperimentConfig| c.run_dir().join("best.safetensors");
    for cfg in &loaded {
        for t in &cfg.teachers {
            let want = cfg.resolve_path(&t.checkpoint);
            let seed = want
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("seed"))
                .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
            let producer = loaded.iter().find(|c| {
                let mut c = (*c).clone();
                c.data.fold = cfg.data.fold;
                best(&c) == want
                    || seed.is_some_and(|k| {
                        c.run_dir().join(format!("seed{k}")).join("best.safetensors") == want
                    })
            });
            let producer = producer.unwrap_or_else(|| {
                panic!("{}: teacher {} ({}) is made by no config", cfg.name, t.name, want.display())
            });
            assert_eq!(producer.model.net.num_classes, cfg.model.net.num_classes, "{}", cfg.name);
            let arch = producer.model.net.arch.id();
            let stem = producer.name.split_once("teacher_").map_or(arch, |(_, s)| s);
            // A CK+ teacher is trained per fold (`..._fold{fold}`); its name leaves that out.
            let stem = stem.strip_suffix("_fold{fold}").unwrap_or(stem);
            assert!(
                stem.starts_with(arch),
                "{}: teacher run {} is not a {arch}",
                cfg.name,
                producer.name
            );
            let name = match seed {
                Some(k) => format!("{stem}_s{k}"),
                None => stem.to_string(),
            };
            assert_eq!(name, t.name, "{}", cfg.name);
        }
    }
    // Initial weights from a run of ours are likewise made by a shipped config.
    for cfg in &loaded {
        let Some(init) = &cfg.model.init else { continue };
        let want = cfg.resolve_path(&init.weights);
        if want.extension().is_some_and(|e| e == "safetensors") {
            let made = loaded.iter().any(|c| best(c) == want);
            assert!(made, "{}: init {} is made by no config", cfg.name, want.display());
        }
    }
    let names: std::collections::BTreeSet<_> = loaded.iter().map(|c| c.run_name()).collect();
    assert_eq!(names.len(), loaded.len(), "two configs share a run name");
}

#[test]
fn a_typo_in_a_field_names_its_path_and_line() {
    let text = BASE.replace("temperature = 4.0", "temprature = 4.0");
    let line = text.lines().position(|l| l.starts_with("temprature")).unwrap() + 1;
    let e = parse(&text).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "/cfg/exp/test.toml:{line}:1: stages[0].loss[1]: unknown field `temprature`, \
             expected one of `weight`, `temperature`, `teacher`, `standardize`"
        )
    );

    let text = BASE.replace("lr = 0.1", "lr = 0.1\nlearning_rate = 0.1");
    let line = text.lines().position(|l| l.starts_with("learning_rate")).unwrap() + 1;
    let e = parse(&text).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "/cfg/exp/test.toml:{line}:1: optim.learning_rate: unknown field `learning_rate`, \
             expected one of \
             `optimizer`, `lr`, `momentum`, `nesterov`, `betas`, `eps`, `weight_decay`, \
             `batch_size`, `micro_batches`, `grad_clip_norm`, `precision`, `schedule`, \
             `warmup_epochs`, `min_lr`, `milestones`, `gamma`, `precise_bn_batches`, \
             `channels_last`, `cuda_graphs`, `cudnn_benchmark`, `deterministic`, `ema_decay`"
        )
    );

    let text = BASE.replace("epochs = 2", "epochs = \"two\"");
    let line = text.lines().position(|l| l.starts_with("epochs")).unwrap() + 1;
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.starts_with(&format!("/cfg/exp/test.toml:{line}:10: stages[0].epochs: ")), "{e}");
    assert!(e.contains("invalid type: string \"two\""), "{e}");
}

/// `[model]` is read as models-spec's `ArchConfig` plus `init`, `weight_init` and
/// `zero_init_residual`
/// (`fer_train::config::ModelConfig`): its errors still name the field and line, whichever part
/// owns the field, and an unknown key lists every key of the table.
#[test]
fn model_section_errors_name_the_field_and_line_whichever_part_owns_it() {
    let model = |extra: &str| BASE.replace("input_size = 64", &format!("input_size = 64\n{extra}"));
    let cases = [
        (
            model("widthmult = 1.0"),
            "15:1: model.widthmult: unknown field `widthmult`, expected one of `arch`, \
             `num_classes`, `in_channels`, `input_size`, `width_mult`, `dropout`, `init`, \
             `weight_init`, `zero_init_residual`",
        ),
        (
            model("width_mult = \"x\""),
            "15:14: model.width_mult: invalid type: string \"x\", expected f64",
        ),
        (
            model("weight_init = \"xavier\""),
            "15:15: model.weight_init: unknown variant `xavier`, expected `torchvision` or `kaiming`",
        ),
        (
            model("zero_init_residual = 1"),
            "15:22: model.zero_init_residual: invalid type: integer `1`, expected a boolean",
        ),
        (
            model("init = { weights = 3 }"),
            "15:20: model.init.weights: invalid type: integer `3`, expected path string",
        ),
        (BASE.replace("num_classes = 7\n", ""), "11:1: model: missing field `num_classes`"),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert_eq!(e, format!("/cfg/exp/test.toml:{want}"));
    }
    let mut cfg = parse(BASE).unwrap();
    let e = cfg.apply_overrides(&["model.dropout=\"a\""]).unwrap_err().to_string();
    assert_eq!(
        e,
        "--set model.dropout=\"a\": model.dropout: invalid type: string \"a\", expected f64"
    );
    cfg.apply_overrides(&["model.width_mult=0.5", "model.weight_init=kaiming"]).unwrap();
    assert_eq!((cfg.model.net.width_mult, cfg.model.weight_init), (0.5, WeightInit::Kaiming));
    let resolved = cfg.resolved_toml().unwrap();
    assert!(
        resolved.contains("\n[model]\narch = \"mobilenet_v3_small\"\nnum_classes = 7\n"),
        "{resolved}"
    );
}
#[test]
fn an_unknown_loss_kind_lists_the_known_ones() {
    let e = parse(&BASE.replace("kind = \"kd\"", "kind = \"kdd\"")).unwrap_err().to_string();
    assert!(
        e.contains(
            "unknown variant `kdd`, expected one of `cross_entropy`, `kd`, `kd_ensemble`, \
             `dkd`, `rkd_distance`, `rkd_angle`"
        ),
        "{e}"
    );
    let e = parse(&BASE.replace("\"fer2013-folder\"", "\"fer2013\"")).unwrap_err().to_string();
    assert!(e.contains("data.format: unknown variant `fer2013`, expected one of"), "{e}");
}

#[test]
fn validation_reports_every_problem_with_its_field_and_allowed_values() {
    let text = format!(
        "{BASE}\n[[stages]]\nname = \"two\"\nepochs = 1\n\n[[stages.loss]]\nkind = \"kd\"\n\
         weight = 1.0\ntemperature = 0.0\nteacher = \"inception\"\n"
    )
    .replace("lr = 0.1", "lr = 0.0\n\n[augment]\nhflip_prob = 1.5")
    .replace("arch = \"mobilenet_v3_small\"", "arch = \"inception_v3\"");
    let cfg = parse(&text).unwrap();
    let errs = cfg.validate().unwrap_err();
    let shown: Vec<String> = errs.issues.iter().map(|i| i.to_string()).collect();
    for want in [
        "stages[1].loss[0].teacher: \"inception\" is not a teacher of this config (teachers: \
         resnet50)",
        "stages[1].loss[0].temperature: must be a finite number > 0 (got 0)",
        "optim.lr: must be a finite number > 0 (got 0)",
        "augment.hflip_prob: 1.5 (expected in [0, 1])",
        "model.input_size: 64 is not supported by inception_v3 (allowed: between 75 and 1024 \
         pixels)",
    ] {
        assert!(shown.iter().any(|s| s == want), "missing {want:?} in {shown:#?}");
    }
    assert_eq!(shown.len(), 5, "{shown:#?}");
    assert!(errs.to_string().starts_with("/cfg/exp/test.toml: 5 problems\n  "), "{errs}");

    // A KD term and no teacher at all; no validation set; fold without folds.
    let text = BASE.replace(
        "[[teachers]]\nname = \"resnet50\"\ncheckpoint = \"runs/teacher/best.safetensors\"\n",
        "",
    );
    let text = text.replace("val_split = \"val\"", "fold = 1");
    let errs = parse(&text).unwrap().validate().unwrap_err();
    let shown: Vec<String> = errs.issues.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        shown,
        [
            "data: no validation set: set one of val_split (an official split), val_fraction (a \
             stratified held-out fraction) or folds + fold (subject-grouped folds)",
            "data.fold: needs data.folds (the number of folds)",
            "stages[0].loss[1]: a kd term needs a teacher, but the config has no [[teachers]]",
        ]
    );
}

#[test]
fn a_dkd_term_needs_hard_labels_and_teachers_of_the_config() {
    let dkd = |rest: &str| {
        BASE.replace("kind = \"kd\"\nweight = 0.5", &format!("kind = \"dkd\"\nweight = 0.5{rest}"))
    };
    // The only teacher, by default; alpha defaults to 1.
    let cfg = parse(&dkd("\nbeta = 8.0")).unwrap();
    cfg.validate().unwrap();
    assert!(
        cfg.resolved_toml()
            .unwrap()
            .contains("kind = \"dkd\"\nweight = 0.5\ntemperature = 4.0\nalpha = 1.0\nbeta = 8.0\n")
    );
    let two = dkd("\nbeta = 8.0").replace(
        "[[stages]]",
        "[[teachers]]\nname = \"vgg\"\ncheckpoint = \"v.safetensors\"\n\n[[stages]]",
    );
    let errs = parse(&two).unwrap().validate().unwrap_err().to_string();
    assert!(
        errs.contains(
            "stages[0].loss[1].teachers: required with several teachers (teachers: resnet50, vgg)"
        ),
        "{errs}"
    );
    let e = parse(&dkd("")).unwrap_err().to_string();
    assert!(e.contains("missing field `beta`"), "{e}");
    let text = dkd("\nbeta = -1.0\nteachers = [\"resnet50\", \"vgg\"]")
        .replace("lr = 0.1", "lr = 0.1\n\n[augment]\nmixup_alpha = 0.2");
    let errs = parse(&text).unwrap().validate().unwrap_err();
    let shown: Vec<String> = errs.issues.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        shown,
        [
            "stages[0].loss[1].beta: must be a finite number >= 0 (got -1)",
            "stages[0].loss[1]: a dkd term needs hard labels; mixup and CutMix turn them into \
             distributions (set augment.mixup_alpha and augment.cutmix_alpha to 0)",
            "stages[0].loss[1].teachers[1]: \"vgg\" is not a teacher of this config (teachers: \
             resnet50)",
        ]
    );
}

#[test]
fn folds_substitute_into_the_run_name_and_teacher_paths() {
    let text = BASE
        .replace("name = \"t\"", "name = \"t_fold{fold}\"")
        .replace("val_split = \"val\"", "folds = 10\nfold = 0")
        .replace("train_split = \"train\"\n", "")
        .replace("runs/teacher/", "runs/teacher_fold{fold}/");
    let mut cfg = parse(&text).unwrap();
    cfg.validate().unwrap();
    cfg.apply_overrides(&["data.fold=7"]).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.run_name(), "t_fold7");
    assert_eq!(cfg.data.validation(0), Some(Validation::Fold { fold: 7, folds: 10, seed: 0 }));
    let r = cfg.resolved();
    assert_eq!(r.teachers[0].checkpoint, Path::new("/cfg/exp/runs/teacher_fold7/best.safetensors"));
    assert_eq!(r.run_dir(), Path::new("/cfg/exp/runs/t_fold7"));
    cfg.apply_overrides(&["data.fold=10"]).unwrap();
    let errs = cfg.validate().unwrap_err();
    assert_eq!(errs.issues[0].to_string(), "data.fold: 10 is not a fold of 10 (allowed: 0 to 9)");
    let no_placeholder = text.replace("t_fold{fold}", "t");
    let errs = parse(&no_placeholder).unwrap().validate().unwrap_err();
    assert!(errs.concerns("name"), "{errs}");
    let no_folds = BASE.replace("runs/teacher/", "runs/teacher_fold{fold}/");
    let errs = parse(&no_folds).unwrap().validate().unwrap_err();
    assert_eq!(
        errs.issues[0].to_string(),
        "teachers[0].checkpoint: \"runs/teacher_fold{fold}/best.safetensors\" uses `{fold}` \
         but data.fold is not set"
    );
}

#[test]
fn set_overrides_change_fields_and_reject_unknown_paths() {
    let mut cfg = parse(BASE).unwrap();
    cfg.apply_overrides(&[
        "optim.lr=0.05",
        "stages.0.epochs=3",
        "stages[0].loss[1].temperature = 2",
        "data.root=some/data",
        "model.init.weights=w.pth",
        "optim.milestones=[3, 6]",
        "optim.schedule=step",
        "description=\"quoted text\"",
    ])
    .unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.optim.lr, 0.05);
    assert_eq!(cfg.stages[0].epochs, 3);
    assert_eq!(cfg.optim.milestones, [3, 6]);
    assert_eq!(cfg.description, "quoted text");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(cfg.data.root, cwd.join("some/data"), "--set paths are relative to the cwd");
    assert_eq!(cfg.resolve_path(&cfg.data.root), cwd.join("some/data"));
    let init = cfg.model.init.as_ref().unwrap();
    assert_eq!((init.weights.clone(), init.skip_classifier), (cwd.join("w.pth"), false));
    match &cfg.stages[0].loss[1] {
        fer_train::losses::LossTerm::Kd { temperature, .. } => assert_eq!(*temperature, 2.0),
        other => panic!("{other:?}"),
    }

    let before = cfg.clone();
    let fails = [
        ("optim.lrr=1", "--set optim.lrr=1: optim.lrr: unknown field `lrr`, expected one of"),
        ("stages.5.epochs=1", "--set stages.5.epochs=1: stages: has 1 entries: index 5"),
        (
            "optim.lr=abc",
            "--set optim.lr=abc: optim.lr: invalid type: string \"abc\", expected f64",
        ),
        ("optim.lr.x=1", "--set optim.lr.x=1: optim.lr: is a float, not a table"),
        ("nonsense", "--set nonsense: expected key=value"),
        ("bogus.field=1", "--set bogus.field=1: bogus: unknown field `bogus`, expected one of"),
    ];
    for (set, want) in fails {
        let e = cfg.apply_overrides(&["optim.lr=0.01", set]).unwrap_err().to_string();
        assert!(e.starts_with(want), "{set}: {e}");
        assert_eq!(cfg, before, "a failed --set must leave the config unchanged");
    }
}

#[test]
fn resolved_toml_round_trips_to_an_equal_config() {
    let dir = tempfile::tempdir().unwrap();
    for f in config_files() {
        let cfg = ExperimentConfig::load(&f).unwrap();
        let text = cfg.resolved_toml().unwrap();
        let copy_path = dir.path().join("config.resolved.toml");
        let back = ExperimentConfig::from_toml_str(&text, &copy_path).unwrap();
        assert_eq!(back, cfg.resolved(), "{}", f.display());
        assert_eq!(back.resolved(), back, "resolving twice changes nothing: {}", f.display());
        assert_eq!(back.config_hash().unwrap(), cfg.config_hash().unwrap());
        assert_eq!(back.run_dir(), cfg.run_dir(), "{}", f.display());
        back.validate().unwrap();
    }
}

#[test]
fn config_hash_is_the_sha256_of_the_resolved_toml_and_ignores_formatting() {
    let cfg = parse(BASE).unwrap();
    let hash = cfg.config_hash().unwrap();
    // Comments, layout and defaults written out do not change what runs.
    let spelled_out = BASE
        .replace("version = 1", "# a comment\nversion   = 1\nseed = 0\ndevice = \"auto\"")
        .replace("lr = 0.1", "lr = 1e-1\nmomentum = 0.9\nschedule = \"cosine\"");
    assert_eq!(parse(&spelled_out).unwrap().config_hash().unwrap(), hash);
    let changed = parse(&BASE.replace("lr = 0.1", "lr = 0.2")).unwrap();
    assert_ne!(changed.config_hash().unwrap(), hash);

    // An independent reference: Python's hashlib on the same text, and tomllib reads it back.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resolved.toml");
    std::fs::write(&file, cfg.resolved_toml().unwrap()).unwrap();
    let script = "import hashlib, sys, tomllib\n\
                  raw = open(sys.argv[1], 'rb').read()\n\
                  doc = tomllib.loads(raw.decode())\n\
                  print(hashlib.sha256(raw).hexdigest(), doc['optim']['lr'], \
                  doc['stages'][0]['loss'][1]['kind'], doc['model']['input_size'])";
    let out =
        Command::new(fer_test_support::python()).arg("-c").arg(script).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim(), format!("{hash} 0.1 kd 64"));
}
