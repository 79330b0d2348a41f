//! Sweeps: configs × seeds as independent tasks, run by Slurm (a job array) or on one machine.
//!
//! A sweep folder holds the typed plan (`sweep.json`, [`SweepPlan`]), the Slurm script
//! (`sweep.sbatch`, [`slurm`]), the tasks' logs (`logs/`) and one folder per config,
//! `<sweep>/<run name>/seed<k>/`, which is exactly what `fer-train run --config C --seeds k
//! --set output_dir=<sweep>` writes; each config's `summary.json`/`summary.md` (mean ± std, the
//! same [`crate::trainer::seeds::summarize`]) is written by the task that finishes its last
//! seed. `fer-infer report <sweep>` reads the runs as it reads `--seeds` runs.
//!
//! Task `i` is config `i / seeds.len()` with seed `seeds[i % seeds.len()]` ([`SweepPlan::task`]).
//! A task ([`run_task`]) is safe to start again, which is what a requeued Slurm task does: a run
//! with `outcome.json` is read back and left untouched, one with `state.safetensors` is resumed
//! from its last completed epoch, and anything else is trained from the start.
//!
//! The plan keeps each config's absolute path, the `--set` overrides as given and the folder
//! the sweep was planned in (relative `--set` paths resolve against it), so a task started by
//! Slurm in another folder trains the same experiment. Every (config, seed) is loaded, overridden
//! and validated when the plan is made: a mistake is reported before anything is submitted.

pub mod local;
pub mod slurm;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ExperimentConfig};
use crate::device::DeviceChoice;
use crate::error::Result;
use crate::trainer::rundir::{RunDir, io};
use crate::trainer::seeds::{SeedSummary, summarize};
use crate::trainer::{self, Observer, RunOptions, RunOutcome};

/// The plan's file name inside the sweep folder.
pub const PLAN_FILE: &str = "sweep.json";
/// The Slurm script's file name inside the sweep folder.
pub const SCRIPT_FILE: &str = "sweep.sbatch";
/// The tasks' log folder inside the sweep folder.
pub const LOG_DIR: &str = "logs";

/// What can go wrong in a sweep, each with the facts a user acts on.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// No config or no seed.
    #[error("a sweep needs at least one --config and one seed (--seeds 1,2,3)")]
    Empty,
    /// A seed given twice.
    #[error("--seeds lists seed {0} twice")]
    DuplicateSeed(u64),
    /// Two configs train runs of the same name, which would share one folder.
    #[error(
        "{} and {} both name their runs `{name}`: they would write into the same folder; give \
         one of them another `name`",
        first.display(),
        second.display()
    )]
    DuplicateName {
        /// The run name.
        name: String,
        /// The first config.
        first: PathBuf,
        /// The second config.
        second: PathBuf,
    },
    /// A config of the sweep does not load or validate.
    #[error("{}: {source}", config.display())]
    Config {
        /// The config file.
        config: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ConfigError,
    },
    /// The sweep folder already holds another plan.
    #[error(
        "{} already holds a different sweep (its sweep.json lists other configs, seeds or \
         overrides); choose another --out, or delete that folder",
        dir.display()
    )]
    PlanDiffers {
        /// The sweep folder.
        dir: PathBuf,
    },
    /// The plan file is not a sweep plan.
    #[error("{}: not a sweep plan: {msg}", path.display())]
    BadPlan {
        /// `sweep.json`.
        path: PathBuf,
        /// The parse error.
        msg: String,
    },
    /// A task index past the end of the plan.
    #[error("task {index} does not exist: the sweep in {} has {tasks} tasks (0 to {})", dir.display(), tasks.saturating_sub(1))]
    NoSuchTask {
        /// The index asked for.
        index: usize,
        /// The number of tasks.
        tasks: usize,
        /// The sweep folder.
        dir: PathBuf,
    },
    /// `sweep-task` without `--index` outside a Slurm array task.
    #[error("no task index: pass --index, or run inside a Slurm array task (SLURM_ARRAY_TASK_ID)")]
    NoIndex,
    /// `sbatch` is not installed (not on PATH).
    #[error(
        "sbatch was not found on PATH: submit from a Slurm login node, or run the written \
         script later with `sbatch {}`",
        script.display()
    )]
    NoSbatch {
        /// The script that was written.
        script: PathBuf,
    },
    /// `sbatch` ran and refused the script.
    #[error("sbatch refused {} ({status}): {stderr}", script.display())]
    SbatchFailed {
        /// The script.
        script: PathBuf,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// Local tasks failed; the others finished.
    #[error("{} of {total} tasks failed: {}", failed.len(), failed.join("; "))]
    TasksFailed {
        /// One entry per failed task: which, and its log.
        failed: Vec<String>,
        /// Tasks in the sweep.
        total: usize,
    },
    /// Starting a task process failed.
    #[error("starting {}: {source}", exe.display())]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One config of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedConfig {
    /// The config file (absolute).
    pub config: PathBuf,
    /// Its run name (`<sweep>/<name>/seed<k>/`).
    pub name: String,
}

/// `sweep.json`: everything a task needs to train its (config, seed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPlan {
    /// Plan format (1).
    pub version: u32,
    /// The sweep folder (absolute): runs go to `<dir>/<name>/seed<k>/`.
    pub dir: PathBuf,
    /// The folder the sweep was planned in: relative `--set` paths resolve against it.
    pub workdir: PathBuf,
    /// The configs, in the order given.
    pub configs: Vec<PlannedConfig>,
    /// The seeds, in the order given.
    pub seeds: Vec<u64>,
    /// `--set` overrides applied to every config, in order.
    pub sets: Vec<String>,
    /// Overrides each config's device.
    pub device: Option<DeviceChoice>,
}

/// One task: a config and a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The task index (Slurm's `SLURM_ARRAY_TASK_ID`).
    pub index: usize,
    /// Index into [`SweepPlan::configs`].
    pub config: usize,
    /// The seed.
    pub seed: u64,
}

impl SweepPlan {
    /// Plans `configs` × `seeds` into the folder `dir`: loads every config, applies `sets` and
    /// the seed, validates it and checks its files, so that nothing is submitted that a task
    /// would refuse. Writes nothing.
    pub fn new(
        dir: &Path,
        configs: &[PathBuf],
        seeds: &[u64],
        sets: &[String],
        device: Option<DeviceChoice>,
    ) -> Result<SweepPlan> {
        if configs.is_empty() || seeds.is_empty() {
            return Err(SweepError::Empty.into());
        }
        for (i, s) in seeds.iter().enumerate() {
            if seeds[..i].contains(s) {
                return Err(SweepError::DuplicateSeed(*s).into());
            }
        }
        let workdir = std::env::current_dir().map_err(io(Path::new(".")))?;
        let abs = |p: &Path| crate::config::normalize(&workdir.join(p));
        let mut plan = SweepPlan {
            version: 1,
            dir: abs(dir),
            workdir: workdir.clone(),
            configs: Vec::new(),
            seeds: seeds.to_vec(),
            sets: sets.to_vec(),
            device,
        };
        for c in configs {
            let config = abs(c);
            let probe = PlannedConfig { config: config.clone(), name: String::new() };
            let mut name = None;
            for &seed in seeds {
                let cfg = plan.load(&probe, seed)?;
                name = Some(cfg.run_name());
            }
            let name = name.unwrap_or_default();
            if let Some(first) = plan.configs.iter().find(|p| p.name == name) {
                return Err(SweepError::DuplicateName {
                    name,
                    first: first.config.clone(),
                    second: config,
                }
                .into());
            }
            plan.configs.push(PlannedConfig { config, name });
        }
        Ok(plan)
    }

    /// The number of tasks: configs × seeds.
    pub fn len(&self) -> usize {
        self.configs.len() * self.seeds.len()
    }

    /// Whether the plan has no task (never true for a plan made by [`SweepPlan::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Task `index`: config `index / seeds`, seed `seeds[index % seeds]` (the seeds of one
    /// config are neighbours).
    pub fn task(&self, index: usize) -> Result<Task> {
        if index >= self.len() {
            return Err(
                SweepError::NoSuchTask { index, tasks: self.len(), dir: self.dir.clone() }.into()
            );
        }
        let n = self.seeds.len();
        Ok(Task { index, config: index / n, seed: self.seeds[index % n] })
    }

    /// Every task, in index order.
    pub fn tasks(&self) -> Vec<Task> {
        (0..self.len()).filter_map(|i| self.task(i).ok()).collect()
    }

    /// The folder of a config's runs, `<dir>/<name>/` (where its summary goes).
    pub fn config_dir(&self, config: usize) -> PathBuf {
        self.dir.join(&self.configs[config].name)
    }

    /// A task's run folder, `<dir>/<name>/seed<k>/`.
    pub fn run_dir(&self, task: &Task) -> PathBuf {
        self.config_dir(task.config).join(format!("seed{}", task.seed))
    }

    /// A task's log file (Slurm's `%a`-numbered output and `--local`'s).
    pub fn log_file(&self, index: usize) -> PathBuf {
        self.dir.join(LOG_DIR).join(format!("task{index}.log"))
    }

    /// The config of `c` for `seed`, as `fer-train run --config C --set … --seeds seed` with
    /// `output_dir` set to the sweep folder would train it; validated.
    fn load(&self, c: &PlannedConfig, seed: u64) -> Result<ExperimentConfig> {
        let wrap = |source| SweepError::Config { config: c.config.clone(), source };
        let mut cfg = ExperimentConfig::load(&c.config).map_err(wrap)?;
        cfg.apply_overrides_in(&self.sets, Some(&self.workdir)).map_err(wrap)?;
        cfg.seed = seed;
        cfg.output_dir = self.dir.clone();
        cfg.validate().map_err(|e| wrap(ConfigError::from(e)))?;
        cfg.check_files().map_err(|e| wrap(ConfigError::from(e)))?;
        Ok(cfg)
    }

    /// Reads `<dir>/sweep.json`.
    pub fn read(dir: &Path) -> Result<SweepPlan> {
        let path = dir.join(PLAN_FILE);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text)
            .map_err(|e| SweepError::BadPlan { path: path.clone(), msg: e.to_string() }.into())
    }

    /// Writes `sweep.json` (atomically) and creates `logs/`. A folder that holds the same plan
    /// already is reused, so submitting a sweep again continues it; a different plan is an
    /// error.
    pub fn write(&self) -> Result<()> {
        let path = self.dir.join(PLAN_FILE);
        if path.exists() {
            if SweepPlan::read(&self.dir).ok().as_ref() != Some(self) {
                return Err(SweepError::PlanDiffers { dir: self.dir.clone() }.into());
            }
        } else {
            let json =
                serde_json::to_vec_pretty(self).map_err(|e| crate::Error::Input(e.to_string()))?;
            std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
            RunDir { path: self.dir.clone() }.write_atomic(PLAN_FILE, &json)?;
        }
        let logs = self.dir.join(LOG_DIR);
        std::fs::create_dir_all(&logs).map_err(io(&logs))?;
        Ok(())
    }
}

/// How a task's run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// It had finished before (`outcome.json`): read back, nothing written.
    Finished,
    /// It was interrupted after a completed epoch and resumed from `state.safetensors`.
    Resumed,
    /// It was trained from the start.
    Trained,
}

/// What a task did.
#[derive(Debug, Clone)]
pub struct TaskDone {
    /// The task.
    pub task: Task,
    /// How its run started.
    pub start: Start,
    /// The finished run.
    pub outcome: RunOutcome,
    /// The config's summary, when this task found all its seeds finished.
    pub summary: Option<SeedSummary>,
}

/// Runs task `index` of `plan`: skips a finished run, resumes an interrupted one, else trains
/// it; then, when every seed of its config has finished, writes that config's summary.
pub fn run_task(plan: &SweepPlan, index: usize, obs: &dyn Observer) -> Result<TaskDone> {
    let task = plan.task(index)?;
    let dir = plan.run_dir(&task);
    let c = &plan.configs[task.config];
    let what = format!("task {index}: {} seed {}", c.name, task.seed);
    let (start, outcome) = if let Some(done) = trainer::finished(&dir)? {
        obs.message(&format!("{what}: finished earlier in {}; nothing to do", dir.display()));
        (Start::Finished, done)
    } else if (RunDir { path: dir.clone() }).state().exists() {
        obs.message(&format!("{what}: resuming {}", dir.display()));
        (Start::Resumed, trainer::resume(&dir, plan.device, obs)?)
    } else {
        obs.message(&format!("{what}: training into {}", dir.display()));
        let cfg = plan.load(c, task.seed)?;
        // No completed epoch: whatever an earlier start left there is replaced.
        let opts = RunOptions { overwrite: true, device: plan.device, run_dir: Some(dir.clone()) };
        (Start::Trained, trainer::train(&cfg, &opts, obs)?)
    };
    let summary = summary_if_complete(plan, task.config)?;
    Ok(TaskDone { task, start, outcome, summary })
}

/// Writes config `config`'s summary when all its seeds have finished; `None` otherwise.
pub fn summary_if_complete(plan: &SweepPlan, config: usize) -> Result<Option<SeedSummary>> {
    let mut outcomes = Vec::new();
    for t in plan.tasks().into_iter().filter(|t| t.config == config) {
        match trainer::finished(&plan.run_dir(&t))? {
            Some(o) => outcomes.push((t.seed, o)),
            None => return Ok(None),
        }
    }
    summarize(&plan.configs[config].name, &plan.config_dir(config), &outcomes).map(Some)
}

#[cfg(test)]
mod tests;
