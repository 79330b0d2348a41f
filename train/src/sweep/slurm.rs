//! The Slurm job array of a sweep: `sweep.sbatch`, one array task per (config, seed), and its
//! submission with `sbatch`.
//!
//! The script stays short: each task runs `fer-train sweep-task --sweep DIR` (the task index
//! comes from `SLURM_ARRAY_TASK_ID`), which reads the typed plan (`sweep.json`). `--requeue`
//! lets Slurm start a preempted or failed-node task again, and the task then resumes its run
//! ([`super::run_task`]); `--open-mode=append` keeps the first attempt's log lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{SweepError, SweepPlan};
use crate::error::Result;

/// The `#SBATCH` settings a user chooses; the rest come from the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmOptions {
    /// The `fer-train` binary the tasks run (absolute; default: the running one).
    pub exe: PathBuf,
    /// `--job-name` (default: `fer-sweep-<sweep folder name>`).
    pub job_name: Option<String>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--gres`, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// `--time`, e.g. `02:00:00`.
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// At most this many tasks at once (`--array=0-N%max`).
    pub max_parallel: Option<usize>,
    /// Further `#SBATCH` lines, each one option as sbatch takes it (`--mem=16G`).
    pub extra: Vec<String>,
}

/// `s` quoted for bash: as it is when it holds only safe characters, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The job array's script for `plan`.
pub fn script(plan: &SweepPlan, o: &SlurmOptions) -> String {
    let n = plan.len();
    let folder = plan.dir.file_name().map(|s| s.to_string_lossy().into_owned());
    let job =
        o.job_name.clone().unwrap_or_else(|| format!("fer-sweep-{}", folder.unwrap_or_default()));
    let array = match o.max_parallel {
        Some(m) => format!("0-{}%{m}", n.saturating_sub(1)),
        None => format!("0-{}", n.saturating_sub(1)),
    };
    // Slurm writes %a as the array index; the same names as `--local`'s logs.
    let log = plan.dir.join(super::LOG_DIR).join("task%a.log");
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# fer-train sweep: {} config(s) x {} seed(s) = {n} tasks; the plan is {}\n",
        plan.configs.len(),
        plan.seeds.len(),
        super::PLAN_FILE
    );
    let mut opt = |k: &str, v: &str| s += &format!("#SBATCH --{k}={v}\n");
    opt("job-name", &job);
    opt("array", &array);
    opt("output", &log.to_string_lossy());
    opt("open-mode", "append");
    opt("chdir", &plan.workdir.to_string_lossy());
    if let Some(p) = &o.partition {
        opt("partition", p);
    }
    if let Some(g) = &o.gres {
        opt("gres", g);
    }
    if let Some(t) = &o.time {
        opt("time", t);
    }
    if let Some(c) = o.cpus_per_task {
        opt("cpus-per-task", &c.to_string());
    }
    s += "#SBATCH --requeue\n";
    for e in &o.extra {
        s += &format!("#SBATCH {e}\n");
    }
    s += "set -euo pipefail\n";
    s += "echo \"== task ${SLURM_ARRAY_TASK_ID} of job ${SLURM_ARRAY_JOB_ID} on $(hostname), \
          start ${SLURM_RESTART_COUNT:-0}, $(date -u +%FT%TZ)\"\n";
    s += &format!(
        "exec {} sweep-task --sweep {} --index \"$SLURM_ARRAY_TASK_ID\"\n",
        shell_quote(&o.exe.to_string_lossy()),
        shell_quote(&plan.dir.to_string_lossy())
    );
    s
}

/// Writes `sweep.sbatch` into the sweep folder and returns its path.
pub fn write_script(plan: &SweepPlan, o: &SlurmOptions) -> Result<PathBuf> {
    let rd = crate::trainer::rundir::RunDir { path: plan.dir.clone() };
    rd.write_atomic(super::SCRIPT_FILE, script(plan, o).as_bytes())?;
    Ok(plan.dir.join(super::SCRIPT_FILE))
}

/// Submits `script` with `sbatch --parsable` and returns the job id.
pub fn submit(script: &Path) -> Result<String> {
    submit_with("sbatch", script)
}

/// [`submit`] with another `sbatch` program (tests).
pub fn submit_with(sbatch: &str, script: &Path) -> Result<String> {
    let out = match Command::new(sbatch).arg("--parsable").arg(script).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SweepError::NoSbatch { script: script.to_path_buf() }.into());
        }
        Err(source) => return Err(SweepError::Spawn { exe: sbatch.into(), source }.into()),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if !out.status.success() || id.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
        return Err(SweepError::SbatchFailed {
            script: script.to_path_buf(),
            status: out.status.to_string(),
            stderr: if stderr.is_empty() { "no message".into() } else { stderr },
        }
        .into());
    }
    Ok(id)
}
