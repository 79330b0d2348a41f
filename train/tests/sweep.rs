//! `fer-train sweep --local` end to end on tiny synthetic data: every (config, seed) task
//! writes what `fer-train run --seeds` writes for that seed, each config gets its mean ± std
//! summary, `fer-infer report` reads the sweep folder, and the same command again trains
//! nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fer_train::trainer::rundir::{EpochRecord, RunDir};

mod cli_support;
use cli_support::synth;

/// A tiny config (MobileNetV3-Small at quarter width, 32 px, 2 epochs) at `<dir>/<name>.toml`.
fn config(dir: &Path, name: &str, lr: f64) -> PathBuf {
    cli_support::config_lr(dir, name, lr, &cli_support::ce_stage(2))
}

fn fer_train(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(cli_support::BIN).args(args).current_dir(dir).output();
    out.unwrap()
}

fn ok(o: &Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    stdout
}

fn untimed(dir: &Path) -> Vec<EpochRecord> {
    let records = RunDir { path: dir.to_path_buf() }.read_metrics().unwrap();
    records
        .into_iter()
        .map(|r| EpochRecord { img_per_s: 0.0, epoch_seconds: 0.0, val_seconds: 0.0, ..r })
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_local_sweep_writes_the_runs_of_run_seeds_their_summaries_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    config(t, "alpha", 0.01);
    config(t, "beta", 0.003);
    let sweep = [
        "-q",
        "sweep",
        "--config",
        "alpha.toml",
        "beta.toml",
        "--seeds",
        "1,2",
        "--set",
        "optim.weight_decay=0.01",
        "--out",
        "sw",
        "--local",
        "--gpus",
        "0",
        "--jobs",
        "2",
    ];
    let stdout = ok(&fer_train(&sweep, t));
    assert!(stdout.contains("# alpha") && stdout.contains("# beta"), "{stdout}");

    let sw = t.join("sw");
    for (i, (name, seed)) in
        [("alpha", 1), ("alpha", 2), ("beta", 1), ("beta", 2)].iter().enumerate()
    {
        let run = sw.join(format!("{name}/seed{seed}"));
        for f in ["outcome.json", "best.safetensors", "config.resolved.toml", "metrics.jsonl"] {
            assert!(run.join(f).is_file(), "{} missing", run.join(f).display());
        }
        assert_eq!(untimed(&run).len(), 2);
        let log = std::fs::read_to_string(sw.join(format!("logs/task{i}.log"))).unwrap();
        assert!(log.contains(&format!("task {i}: {name} seed {seed}: training into")), "{log}");
    }
    for name in ["alpha", "beta"] {
        let s: fer_train::trainer::seeds::SeedSummary =
            serde_json::from_slice(&std::fs::read(sw.join(name).join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(s.name, name);
        assert_eq!(s.seeds.iter().map(|r| r.seed).collect::<Vec<_>>(), [1, 2]);
        assert!(sw.join(name).join("summary.md").is_file());
    }

    // A task's folder is the one `run --seeds` writes for that seed: the same files, the same
    // epochs and the same weights.
    let reference = [
        "-q",
        "run",
        "--config",
        "beta.toml",
        "--seeds",
        "2",
        "--set",
        "optim.weight_decay=0.01",
        "--set",
        "output_dir=ref",
    ];
    ok(&fer_train(&reference, t));
    let (a, b) = (sw.join("beta/seed2"), t.join("ref/beta/seed2"));
    assert_eq!(files(&a), files(&b));
    assert_eq!(untimed(&a), untimed(&b));
    let ca = fer_checkpoint::Checkpoint::load(a.join("last.safetensors")).unwrap();
    let cb = fer_checkpoint::Checkpoint::load(b.join("last.safetensors")).unwrap();
    assert_eq!(ca.tensors, cb.tensors);

    // `fer-infer report <sweep folder>` reads the sweep as it reads `--seeds` runs: one row per
    // config, its two seeds, each at the epoch of best.safetensors.
    let entries = fer_infer::report::collect(std::slice::from_ref(&sw)).unwrap();
    assert_eq!(entries.len(), 4);
    let rows = fer_infer::report::group(&entries);
    let got: Vec<(String, usize, Vec<u64>)> =
        rows.iter().map(|r| (r.experiment.clone(), r.n, r.seeds.clone())).collect();
    assert_eq!(got, [("alpha".into(), 2, vec![1, 2]), ("beta".into(), 2, vec![1, 2])]);
    let md = fer_infer::report::markdown(&rows);
    assert!(md.contains("| alpha | data (val) | 2 | 1, 2 |"), "{md}");

    // The same command again continues the sweep: every task is finished, nothing is written.
    let before = std::fs::read(sw.join("alpha/seed1/metrics.jsonl")).unwrap();
    ok(&fer_train(&sweep, t));
    assert_eq!(std::fs::read(sw.join("alpha/seed1/metrics.jsonl")).unwrap(), before);
    let log = std::fs::read_to_string(sw.join("logs/task0.log")).unwrap();
    assert!(log.contains("finished earlier"), "{log}");

    // Another plan in the same folder is refused, naming it.
    let other = ok_err(&fer_train(
        &["sweep", "--config", "alpha.toml", "--seeds", "3", "--out", "sw", "--local"],
        t,
    ));
    assert!(other.contains("already holds a different sweep"), "{other}");
}

fn ok_err(o: &Output) -> String {
    assert!(!o.status.success());
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn sweep_task_resumes_an_interrupted_run_and_skips_a_finished_one() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    config(t, "gamma", 0.01);
    let write = [
        "-q",
        "sweep",
        "--config",
        "gamma.toml",
        "--seeds",
        "4",
        "--set",
        "stages.0.epochs=3",
        "--out",
        "sw",
        "--slurm",
    ];
    let stdout = ok(&fer_train(&write, t));
    assert!(stdout.contains("submit it with: sbatch"), "{stdout}");
    let sw = t.join("sw");
    let script = std::fs::read_to_string(sw.join("sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-0\n") && script.contains("sweep-task"), "{script}");

    let task = |env: Option<&str>| {
        let mut c = Command::new(cli_support::BIN);
        c.args(["sweep-task", "--sweep"]).arg(&sw).current_dir(t);
        match env {
            Some(i) => c.env("SLURM_ARRAY_TASK_ID", i),
            None => c.args(["--index", "0"]),
        };
        c
    };
    // Killed after its first epoch, as a preempted Slurm task is.
    let mut child = task(None)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run = sw.join("gamma/seed4");
    let t0 = std::time::Instant::now();
    while !run.join("state.safetensors").exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!run.join("outcome.json").exists(), "the task finished before it could be killed");

    let o = task(Some("0")).output().unwrap();
    let stdout = ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("resuming"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("resumed and finished"), "{stdout}");
    assert_eq!(untimed(&run).len(), 3);
    assert!(sw.join("gamma/summary.json").is_file());

    let before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let stdout = ok(&task(None).output().unwrap());
    assert!(stdout.contains("finished earlier, skipped"), "{stdout}");
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), before);

    let e = ok_err(&task(Some("1")).output().unwrap());
    assert!(e.contains("task 1 does not exist"), "{e}");
}
