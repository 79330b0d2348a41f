//! A sweep on this machine (`fer-train sweep --local`): the tasks of the plan, a few at a time,
//! each as its own `fer-train sweep-task` process (the same command as a Slurm array task), its
//! output in `logs/task<i>.log`.
//!
//! Each slot is a GPU (`CUDA_VISIBLE_DEVICES` set to that one device, so a task sees one GPU
//! as `cuda:0`) or a CPU slot (`CUDA_VISIBLE_DEVICES` empty, so `device = "auto"` trains on the
//! CPU). A failed task does not stop the others; the run ends with an error naming every failed
//! task and its log.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{SweepError, SweepPlan, Task};
use crate::error::Result;

/// Where and how the local tasks run.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `fer-train` binary.
    pub exe: PathBuf,
    /// One entry per slot: `Some(gpu)` (the value for `CUDA_VISIBLE_DEVICES`) or `None` (CPU).
    pub slots: Vec<Option<String>>,
}

impl LocalOptions {
    /// `gpus` GPU slots (the devices of this process's `CUDA_VISIBLE_DEVICES`, else `0..gpus`),
    /// or, with `gpus == 0`, `jobs` CPU slots (at least one).
    pub fn new(exe: PathBuf, gpus: usize, jobs: usize) -> LocalOptions {
        let slots = if gpus > 0 {
            let visible: Vec<String> = std::env::var("CUDA_VISIBLE_DEVICES")
                .ok()
                .map(|v| {
                    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
                })
                .unwrap_or_default();
            (0..gpus)
                .map(|i| Some(visible.get(i).cloned().unwrap_or_else(|| i.to_string())))
                .collect()
        } else {
            vec![None; jobs.max(1)]
        };
        LocalOptions { exe, slots }
    }
}

/// Progress of a local sweep.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A task started in a slot.
    Started {
        /// The task.
        task: &'a Task,
        /// Its slot's GPU, or `None` for the CPU.
        gpu: Option<&'a str>,
    },
    /// A task ended.
    Ended {
        /// The task.
        task: &'a Task,
        /// Whether it succeeded.
        ok: bool,
        /// Its wall time.
        seconds: f64,
        /// Tasks ended so far, this one included.
        done: usize,
        /// Tasks in the sweep.
        total: usize,
    },
}

struct Running {
    task: Task,
    slot: usize,
    child: Child,
    started: Instant,
}

/// Runs every task of `plan` (which must be written: the tasks read `sweep.json`), `slots` at a
/// time, calling `progress` as tasks start and end.
pub fn run(plan: &SweepPlan, o: &LocalOptions, progress: &mut dyn FnMut(Event)) -> Result<()> {
    let tasks = plan.tasks();
    let total = tasks.len();
    let mut queue = tasks.into_iter();
    let mut free: Vec<usize> = (0..o.slots.len().max(1)).rev().collect();
    let mut running: Vec<Running> = Vec::new();
    let mut failed = Vec::new();
    let mut done = 0;
    loop {
        while let Some(&slot) = free.last() {
            let Some(task) = queue.next() else { break };
            free.pop();
            let gpu = o.slots.get(slot).cloned().flatten();
            let child = spawn(plan, o, &task, gpu.as_deref())?;
            progress(Event::Started { task: &task, gpu: gpu.as_deref() });
            running.push(Running { task, slot, child, started: Instant::now() });
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut i = 0;
        while i < running.len() {
            let status = running[i]
                .child
                .try_wait()
                .map_err(|source| SweepError::Spawn { exe: o.exe.clone(), source })?;
            let Some(status) = status else {
                i += 1;
                continue;
            };
            let r = running.swap_remove(i);
            done += 1;
            free.push(r.slot);
            let ok = status.success();
            if !ok {
                failed.push(format!(
                    "task {} ({} seed {}, {status}, log {})",
                    r.task.index,
                    plan.configs[r.task.config].name,
                    r.task.seed,
                    plan.log_file(r.task.index).display()
                ));
            }
            let seconds = r.started.elapsed().as_secs_f64();
            progress(Event::Ended { task: &r.task, ok, seconds, done, total });
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(SweepError::TasksFailed { failed, total }.into()) }
}

fn spawn(plan: &SweepPlan, o: &LocalOptions, task: &Task, gpu: Option<&str>) -> Result<Child> {
    let log_path = plan.log_file(task.index);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| crate::Error::Io { path: log_path.clone(), source })?;
    let log2 = log.try_clone().map_err(|source| crate::Error::Io { path: log_path, source })?;
    let mut c = Command::new(&o.exe);
    c.arg("sweep-task").arg("--sweep").arg(&plan.dir).arg("--index").arg(task.index.to_string());
    c.current_dir(&plan.workdir).stdin(Stdio::null()).stdout(log).stderr(log2);
    c.env("CUDA_VISIBLE_DEVICES", gpu.unwrap_or(""));
    c.spawn().map_err(|source| SweepError::Spawn { exe: o.exe.clone(), source }.into())
}
