//! The plan, the task mapping and the Slurm script, without training anything.

use std::path::{Path, PathBuf};

use super::slurm::{SlurmOptions, script, shell_quote, submit_with};
use super::*;

/// A valid config named `name` in `dir` (its data folder exists but is empty: nothing trains).
fn config(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let text = format!(
        r#"
version = 1
name = "{name}"
device = "cpu"
output_dir = "runs"
[data]
format = "fer2013-folder"
root = "data"
train_split = "train"
val_split = "val"
[model]
arch = "mobilenet_v3_small"
num_classes = 7
width_mult = 0.25
input_size = 32
[optim]
optimizer = "adamw"
lr = 0.01
batch_size = 16
[[stages]]
name = "train"
epochs = 2
[[stages.loss]]
kind = "cross_entropy"
weight = 1.0
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn plan(dir: &Path, seeds: &[u64]) -> SweepPlan {
    let cs = [config(dir, "alpha"), config(dir, "beta")];
    SweepPlan::new(&dir.join("sweep"), &cs, seeds, &["optim.lr=0.02".into()], None).unwrap()
}

#[test]
fn task_indices_go_config_by_config_with_the_seeds_of_one_config_as_neighbours() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), &[7, 8, 9]);
    assert_eq!(p.len(), 6);
    let got: Vec<(usize, u64)> = p.tasks().iter().map(|t| (t.config, t.seed)).collect();
    assert_eq!(got, [(0, 7), (0, 8), (0, 9), (1, 7), (1, 8), (1, 9)]);
    let t = p.task(4).unwrap();
    assert_eq!(p.run_dir(&t), tmp.path().join("sweep/beta/seed8"));
    assert_eq!(p.config_dir(0), tmp.path().join("sweep/alpha"));
    let e = p.task(6).unwrap_err().to_string();
    assert!(e.contains("task 6 does not exist") && e.contains("6 tasks (0 to 5)"), "{e}");
}

#[test]
fn a_task_trains_its_config_with_the_overrides_its_seed_and_the_sweep_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), &[3, 4]);
    let cfg = p.load(&p.configs[1], 4).unwrap();
    assert_eq!((cfg.name.as_str(), cfg.seed, cfg.optim.lr), ("beta", 4, 0.02));
    assert_eq!(cfg.run_dir(), tmp.path().join("sweep/beta"));
    assert_eq!(cfg.data.root, PathBuf::from("data"));
    assert_eq!(cfg.resolve_path(&cfg.data.root), tmp.path().join("data"));
}

#[test]
fn relative_paths_in_overrides_resolve_against_the_folder_the_sweep_was_planned_in() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = plan(tmp.path(), &[1]);
    p.workdir = tmp.path().to_path_buf();
    p.sets = vec!["data.root=data".into()];
    let cfg = p.load(&p.configs[0], 1).unwrap();
    assert_eq!(cfg.data.root, tmp.path().join("data"));
}

#[test]
fn mistakes_are_refused_when_the_sweep_is_planned_naming_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let a = config(tmp.path(), "alpha");
    let out = tmp.path().join("sweep");
    let e = SweepPlan::new(&out, std::slice::from_ref(&a), &[1, 2, 1], &[], None).unwrap_err();
    assert_eq!(e.to_string(), "--seeds lists seed 1 twice");
    let e = SweepPlan::new(&out, &[a.clone(), a.clone()], &[1], &[], None).unwrap_err();
    assert!(e.to_string().contains("both name their runs `alpha`"), "{e}");
    let e = SweepPlan::new(&out, std::slice::from_ref(&a), &[1], &["optim.nope=1".into()], None)
        .unwrap_err();
    let msg = fer_checkpoint::error_line(&e);
    assert!(msg.contains("alpha.toml") && msg.contains("optim.nope"), "{msg}");
    let e = SweepPlan::new(&out, &[], &[1], &[], None).unwrap_err();
    assert!(e.to_string().contains("at least one --config"), "{e}");
}

#[test]
fn the_same_plan_is_reused_and_a_different_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), &[1, 2]);
    p.write().unwrap();
    assert!(tmp.path().join("sweep/logs").is_dir());
    assert_eq!(SweepPlan::read(&p.dir).unwrap(), p);
    p.write().unwrap();
    let other = plan(tmp.path(), &[1, 2, 3]);
    let e = other.write().unwrap_err().to_string();
    assert!(e.contains("already holds a different sweep"), "{e}");
}

#[test]
fn the_script_is_an_array_over_every_task_that_requeues_and_calls_sweep_task() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), &[1, 2, 3]);
    let o = SlurmOptions {
        exe: "/opt/fer tools/fer-train".into(),
        partition: Some("gpu".into()),
        gres: Some("gpu:1".into()),
        time: Some("01:30:00".into()),
        cpus_per_task: Some(8),
        max_parallel: Some(2),
        extra: vec!["--mem=16G".into()],
        ..SlurmOptions::default()
    };
    let s = script(&p, &o);
    let sweep = tmp.path().join("sweep");
    for line in [
        "#!/bin/bash",
        "#SBATCH --job-name=fer-sweep-sweep",
        "#SBATCH --array=0-5%2",
        &format!("#SBATCH --output={}/logs/task%a.log", sweep.display()),
        "#SBATCH --open-mode=append",
        &format!("#SBATCH --chdir={}", p.workdir.display()),
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=01:30:00",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --requeue",
        "#SBATCH --mem=16G",
        &format!(
            "exec '/opt/fer tools/fer-train' sweep-task --sweep {} --index \"$SLURM_ARRAY_TASK_ID\"",
            shell_quote(&sweep.to_string_lossy())
        ),
    ] {
        assert!(s.lines().any(|l| l == line), "no line `{line}` in:\n{s}");
    }
    // Every #SBATCH line comes before the first command, as sbatch requires.
    let lines: Vec<&str> = s.lines().collect();
    let last_opt = lines.iter().rposition(|l| l.starts_with("#SBATCH")).unwrap();
    let first_cmd = lines.iter().position(|l| !l.starts_with('#')).unwrap();
    assert!(last_opt < first_cmd, "{s}");

    let plain = script(&p, &SlurmOptions { exe: "/x/fer-train".into(), ..Default::default() });
    assert!(plain.contains("#SBATCH --array=0-5\n"), "{plain}");
    assert!(!plain.contains("--gres") && !plain.contains("--partition"), "{plain}");
}

#[test]
fn shell_quoting_keeps_plain_paths_and_quotes_the_rest() {
    assert_eq!(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
    assert_eq!(shell_quote("/a b"), "'/a b'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote("$HOME"), "'$HOME'");
    assert_eq!(shell_quote(""), "''");
}

#[test]
fn submitting_without_sbatch_or_with_a_failing_sbatch_is_one_sentence() {
    let script = Path::new("/tmp/x/sweep.sbatch");
    let e = submit_with("fer-no-such-sbatch", script).unwrap_err().to_string();
    assert_eq!(
        e,
        "sbatch was not found on PATH: submit from a Slurm login node, or run the written \
         script later with `sbatch /tmp/x/sweep.sbatch`"
    );
    let e = submit_with("false", script).unwrap_err().to_string();
    assert!(e.starts_with("sbatch refused /tmp/x/sweep.sbatch (exit status: 1)"), "{e}");
}

#[test]
fn local_slots_follow_the_visible_gpus_or_are_cpu_jobs() {
    let o = LocalOptions::new("/x".into(), 0, 3);
    assert_eq!(o.slots, vec![None, None, None]);
    let o = LocalOptions::new("/x".into(), 0, 0);
    assert_eq!(o.slots, vec![None]);
    let o = LocalOptions::new("/x".into(), 2, 1);
    assert_eq!(o.slots.len(), 2);
    assert!(o.slots.iter().all(Option::is_some));
}

use super::local::LocalOptions;
