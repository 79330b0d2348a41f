//! The GPU scripts' plans, tried on the CPU: `scripts/gpu/issue16_programme.sh` run with
//! `scripts/gpu/check_only.sh` standing in for fer-train, so that every run it would launch on
//! the device is checked by `fer-train check` (config, overrides, teacher checkpoints) and its
//! resolved config compared with what `docs/results.md` says the round trains. A device call
//! lost to a typo in a script costs ten minutes of a thirty-minute budget; this costs seconds.
//! Also: every shell script of the repository parses (`bash -n`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_fer-train");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs the programme script with `env` on the CPU under check_only.sh, with `<tmp>/data`
/// (an empty `fer2013/`), `<tmp>/runs` and `<tmp>/out`.
fn programme(tmp: &Path, env: &[(&str, &str)]) -> Output {
    std::fs::create_dir_all(tmp.join("data/fer2013")).unwrap();
    Command::new("bash")
        .arg(repo().join("scripts/gpu/issue16_programme.sh"))
        .env("REAL_FER_TRAIN", BIN)
        .env("FER_TRAIN", repo().join("scripts/gpu/check_only.sh"))
        .env("DATA", tmp.join("data"))
        .env("RUNS", tmp.join("runs"))
        .env("OUT", tmp.join("out"))
        .env("NO_MPS", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// [`programme`], which must succeed; returns the resolved config of every run it launched,
/// by run name.
fn plan(tmp: &Path, env: &[(&str, &str)]) -> BTreeMap<String, toml::Value> {
    let status = programme(tmp, env);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let mut plans = BTreeMap::new();
    for entry in std::fs::read_dir(tmp.join("runs")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(name) = file.strip_suffix(".log") {
            // check_only.sh writes the check's error there; a launched run that passed leaves it empty.
            let log = std::fs::read_to_string(&path).unwrap();
            assert!(log.is_empty(), "{name} would fail on the device:\n{log}");
        }
        if let Some(name) = file.strip_suffix(".resolved.toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            plans.insert(name.to_string(), toml::from_str(&text).unwrap());
        }
    }
    plans
}

fn get<'a>(v: &'a toml::Value, path: &str) -> &'a toml::Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => v.get(k).unwrap_or_else(|| panic!("no {path} (at {k}) in {v}")),
    })
}

fn f(v: &toml::Value, path: &str) -> f64 {
    let x = get(v, path);
    x.as_float().or_else(|| x.as_integer().map(|i| i as f64)).unwrap()
}

/// Round 22 as pre-registered in docs/results.md: round 21's command with SEEDS="4 5".
#[test]
fn round_22s_command_launches_six_unsmoothed_teachers_and_dkd_students_on_95_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let plans = plan(
        tmp.path(),
        &[
            ("PHASE", "cached"),
            ("TEACHER_LS", "0"),
            ("EXP3", "0"),
            ("TEACHER_EPOCHS", "80"),
            ("EPOCHS", "240"),
            ("SEEDS", "4 5"),
            ("VIEWS", "20"),
            ("KDS", "dkd8"),
            ("VARIANTS", "d95+sm0"),
            ("LIMIT", "570"),
        ],
    );
    let teachers: Vec<String> = ["resnet18", "resnet18strong"]
        .iter()
        .flat_map(|a| (0..3).map(move |s| format!("teacher_{a}_ls0_s{s}")))
        .collect();
    let students = ["4", "5"].map(|s| format!("L112_dkd6c_b8_v20_e240_d95_sm0_tls0_s{s}"));
    let launched: Vec<&String> = plans.keys().collect();
    let mut expected: Vec<&String> = teachers.iter().chain(&students).collect();
    expected.sort();
    assert_eq!(launched, expected);

    for t in &teachers {
        let c = &plans[t];
        assert_eq!(get(c, "model.arch").as_str(), Some("resnet18"), "{t}");
        assert_eq!(f(c, "stages.0.epochs"), 80.0, "{t}");
        assert_eq!(f(c, "stages.0.loss.0.label_smoothing"), 0.0, "{t}: smoothing");
        assert_eq!(f(c, "seed"), t[t.len() - 1..].parse::<f64>().unwrap(), "{t}");
    }
    // The stronger augmentation (round 9) only in the `strong` teachers.
    assert_eq!(f(&plans["teacher_resnet18strong_ls0_s0"], "augment.erase_prob"), 0.5);
    assert_ne!(f(&plans["teacher_resnet18_ls0_s0"], "augment.erase_prob"), 0.5);

    for (s, seed) in students.iter().zip([4.0, 5.0]) {
        let c = &plans[s];
        assert_eq!(get(c, "model.arch").as_str(), Some("mobilenet_v3_large"));
        assert_eq!(f(c, "seed"), seed);
        assert_eq!(f(c, "model.input_size"), 112.0);
        assert_eq!(f(c, "augment.views"), 20.0);
        assert_eq!(f(c, "optim.ema_decay"), 0.999);
        assert_eq!(f(c, "stages.0.epochs"), 240.0);
        assert_eq!(get(c, "stages.0.teacher_cache").as_bool(), Some(true));
        // 95 % of train: a 5 % validation share and no calibration hold-out.
        assert_eq!(f(c, "data.val_fraction"), 0.05);
        assert!(get(c, "data").get("calib_fraction").is_none_or(|v| v.as_float() == Some(0.0)));
        // 1.0 CE without smoothing + 1.0 DKD (beta 8, T = 4) towards the six teachers.
        assert_eq!(get(c, "stages.0.loss.0.kind").as_str(), Some("cross_entropy"));
        assert_eq!(f(c, "stages.0.loss.0.label_smoothing"), 0.0);
        assert_eq!(get(c, "stages.0.loss.1.kind").as_str(), Some("dkd"));
        assert_eq!(f(c, "stages.0.loss.1.beta"), 8.0);
        assert_eq!(f(c, "stages.0.loss.1.temperature"), 4.0);
        let named: Vec<&str> = get(c, "teachers")
            .as_array()
            .unwrap()
            .iter()
            .map(|t| get(t, "checkpoint").as_str().unwrap())
            .collect();
        let want: Vec<String> = teachers
            .iter()
            .map(|t| tmp.path().join("runs").join(t).join("best.safetensors"))
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(named, want);
    }
}

/// Next 2's exp3 at 240 epochs on the distillation students' data (`PHASE=res VARIANT=d95`).
#[test]
fn phase_res_with_variant_d95_trains_exp3_on_95_percent_of_train() {
    let tmp = tempfile::tempdir().unwrap();
    let plans = plan(
        tmp.path(),
        &[
            ("PHASE", "res"),
            ("SIZES", "112"),
            ("VIEWS", "20"),
            ("VARIANT", "d95"),
            ("EPOCHS", "240"),
            ("SEEDS", "1 2"),
        ],
    );
    let names: Vec<&String> = plans.keys().collect();
    assert_eq!(names, ["L112_exp3_v20_e240_d95_s1", "L112_exp3_v20_e240_d95_s2"]);
    for c in plans.values() {
        assert!(get(c, "data").get("calib_fraction").is_none_or(|v| v.as_float() == Some(0.0)));
        assert_eq!(f(c, "augment.views"), 20.0);
        assert_eq!(f(c, "stages.0.epochs"), 240.0);
        // exp3 as configured: cross-entropy with smoothing 0.1, no teacher.
        assert_eq!(get(c, "stages.0.loss").as_array().unwrap().len(), 1);
        assert_eq!(f(c, "stages.0.loss.0.label_smoothing"), 0.1);
        assert!(c.get("teachers").is_none_or(|t| t.as_array().unwrap().is_empty()));
    }
}

/// A plan that asks for something the script does not offer stops before launching anything.
#[test]
fn an_unknown_variant_stops_the_script_before_any_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = programme(tmp.path(), &[("PHASE", "res"), ("VARIANT", "d90")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("VARIANTS takes base"));
    let launched = std::fs::read_dir(tmp.path().join("runs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert_eq!(launched, 0);
}

/// Every shell script of the repository parses.
#[test]
fn every_shell_script_parses() {
    let mut scripts = Vec::new();
    for dir in ["scripts", "scripts/gpu", ".ci"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            let sh = p.extension().is_some_and(|x| x == "sh") || p.ends_with(".ci/run");
            if sh {
                scripts.push(p);
            }
        }
    }
    assert!(scripts.len() >= 15, "found only {scripts:?}");
    for s in scripts {
        let out = Command::new("bash").arg("-n").arg(&s).output().unwrap();
        assert!(out.status.success(), "{}: {}", s.display(), String::from_utf8_lossy(&out.stderr));
    }
}
