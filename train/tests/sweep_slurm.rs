//! `fer-train sweep --slurm --submit` against a real Slurm: the one-node cluster of
//! `scripts/slurm_local.sh` (Debian's slurm-wlm and munge, no cgroups) runs a three-task array
//! to completion. One task was interrupted before submission and resumes under Slurm; another
//! is requeued after it finished (`scontrol requeue`) and skips its finished run.
//!
//! Without a cluster the set-up script starts one (root and apt-get needed the first time). If
//! that fails the test fails under CI (`CI=true`) and is skipped, with the reason printed,
//! elsewhere.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod cli_support;
use cli_support::synth;

fn cluster() -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm_local.sh");
    let o = Command::new("bash").arg(&script).output().map_err(|e| format!("bash: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&o.stderr).trim()))
    }
}

fn ok(o: Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    stdout
}

/// Waits until Slurm lists no task of `job` (pending, running or completing).
fn wait_for(job: &str, limit: Duration) {
    let t0 = Instant::now();
    loop {
        let o = Command::new("squeue").args(["-h", "-j", job, "-o", "%i %T"]).output().unwrap();
        let listed = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.status.success() && listed.trim().is_empty() {
            return;
        }
        assert!(t0.elapsed() < limit, "job {job} still queued after {limit:?}:\n{listed}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_slurm_array_runs_every_task_resumes_an_interrupted_one_and_a_requeued_one_skips() {
    if let Err(why) = cluster() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("no Slurm cluster under CI: {why}");
        }
        eprintln!("skipped: no Slurm cluster: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    synth(t);
    cli_support::config(t, "slurmy", &cli_support::ce_stage(3));
    let exe = cli_support::BIN;
    let sweep = |submit: bool| {
        let mut c = Command::new(exe);
        c.args(["-q", "sweep", "--config", "slurmy.toml", "--seeds", "1,2,3", "--out", "sw"]);
        c.args(["--slurm", "--cpus-per-task", "1", "--time", "00:10:00"]).current_dir(t);
        if submit {
            c.arg("--submit");
        }
        c
    };
    ok(sweep(false).output().unwrap());
    let sw = t.join("sw");

    // Task 1 is interrupted after its first epoch before the array is submitted.
    let mut child = Command::new(exe)
        .args(["sweep-task", "--index", "1", "--sweep"])
        .arg(&sw)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = sw.join("slurmy/seed2/state.safetensors");
    let t0 = Instant::now();
    while !state.exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!sw.join("slurmy/seed2/outcome.json").exists(), "task 1 finished before the kill");

    let stdout = ok(sweep(true).output().unwrap());
    let job = stdout.lines().last().unwrap().trim().to_string();
    assert!(job.chars().all(|c| c.is_ascii_digit()) && !job.is_empty(), "{stdout}");
    wait_for(&job, Duration::from_secs(600));

    let log = |i: usize| std::fs::read_to_string(sw.join(format!("logs/task{i}.log"))).unwrap();
    for (i, seed) in [(0, 1), (1, 2), (2, 3)] {
        let run = sw.join(format!("slurmy/seed{seed}"));
        assert!(run.join("outcome.json").is_file(), "task {i} did not finish:\n{}", log(i));
        assert!(log(i).contains(&format!("== task {i} of job {job}")), "{}", log(i));
    }
    assert!(log(1).contains("resuming"), "{}", log(1));
    assert!(log(1).contains("resumed and finished"), "{}", log(1));
    assert!(log(0).contains("(trained, best epoch"), "{}", log(0));
    let summary = std::fs::read_to_string(sw.join("slurmy/summary.md")).unwrap();
    assert!(summary.contains("| 3 |"), "{summary}");

    // Slurm starts task 0 again (as after a preemption): it finds its run finished and skips it.
    let before = std::fs::read(sw.join("slurmy/seed1/metrics.jsonl")).unwrap();
    let task0 = format!("{job}_0");
    ok(Command::new("scontrol").args(["requeue", &task0]).output().unwrap());
    // A requeued job waits for a begin time; start it now.
    let _ = Command::new("scontrol")
        .args(["update", &format!("jobid={task0}"), "StartTime=now"])
        .output();
    wait_for(&job, Duration::from_secs(300));
    let again = log(0);
    assert!(
        again.contains(&format!("== task 0 of job {job} on")) && again.contains("start 1,"),
        "{again}"
    );
    assert!(again.contains("finished earlier, skipped"), "{again}");
    assert_eq!(std::fs::read(sw.join("slurmy/seed1/metrics.jsonl")).unwrap(), before);

    let entries = fer_infer::report::collect(std::slice::from_ref(&sw)).unwrap();
    assert_eq!(entries.len(), 3);
}
