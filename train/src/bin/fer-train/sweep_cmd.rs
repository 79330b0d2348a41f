//! `fer-train sweep` (configs × seeds on Slurm or this machine) and the internal
//! `fer-train sweep-task` each task runs; the logic is `fer_train::sweep`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use fer_train::device::DeviceChoice;
use fer_train::sweep::{self, SweepPlan, local, slurm};
use fer_train::trainer::Observer;

/// Arguments of `sweep`.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("engine").required(true).args(["slurm", "local"]))]
pub struct SweepArgs {
    /// The TOML configs (`--config a.toml b.toml`, or the flag repeated).
    #[arg(long = "config", num_args = 1.., required = true)]
    configs: Vec<PathBuf>,
    /// The seeds; every config runs once per seed, into `<out>/<name>/seed<k>/`.
    #[arg(long, value_delimiter = ',', required = true)]
    seeds: Vec<u64>,
    /// Overrides applied to every config, as for `run`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// The sweep folder: the plan (sweep.json), the Slurm script, logs/ and the runs. The same
    /// command again continues the sweep (finished runs are skipped).
    #[arg(long)]
    out: PathBuf,
    /// Overrides every config's device.
    #[arg(long, value_enum)]
    device: Option<DeviceChoice>,
    /// Write a Slurm job array (sweep.sbatch), one task per (config, seed).
    #[arg(long)]
    slurm: bool,
    /// Also submit it with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// Run the tasks on this machine instead.
    #[arg(long)]
    local: bool,
    /// `--local`: GPUs to use, one task per GPU at a time (default: every GPU libtorch sees;
    /// 0 trains on the CPU).
    #[arg(long, requires = "local")]
    gpus: Option<usize>,
    /// `--local` on the CPU: tasks at once (each uses every core libtorch is given).
    #[arg(long, requires = "local", default_value_t = 1)]
    jobs: usize,
    /// The fer-train binary the tasks run (default: this one).
    #[arg(long)]
    exe: Option<PathBuf>,
    /// Slurm: the job name (default fer-sweep-<out folder name>).
    #[arg(long, requires = "slurm")]
    job_name: Option<String>,
    /// Slurm: the partition.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Slurm: generic resources per task, e.g. gpu:1.
    #[arg(long, requires = "slurm")]
    gres: Option<String>,
    /// Slurm: the time limit per task, e.g. 02:00:00.
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// Slurm: CPUs per task.
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<u32>,
    /// Slurm: at most this many tasks at once (the array's %N).
    #[arg(long, requires = "slurm")]
    max_parallel: Option<usize>,
    /// Slurm: a further #SBATCH option, e.g. --sbatch-arg=--mem=16G (repeatable).
    #[arg(
        long = "sbatch-arg",
        value_name = "OPTION",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    sbatch_args: Vec<String>,
}

/// Arguments of the internal `sweep-task`.
#[derive(Args)]
pub struct TaskArgs {
    /// The sweep folder (holds sweep.json).
    #[arg(long)]
    sweep: PathBuf,
    /// The task index (default: SLURM_ARRAY_TASK_ID).
    #[arg(long)]
    index: Option<usize>,
}

fn exe(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(std::path::absolute(&p)?),
        None => std::env::current_exe().context("finding the fer-train binary (pass --exe)"),
    }
}

pub fn sweep(a: SweepArgs, quiet: bool) -> Result<()> {
    let plan = SweepPlan::new(&a.out, &a.configs, &a.seeds, &a.sets, a.device)
        .context("planning the sweep")?;
    plan.write().with_context(|| format!("writing the plan into {}", a.out.display()))?;
    let exe = exe(a.exe)?;
    let n = plan.len();
    if a.slurm {
        let o = slurm::SlurmOptions {
            exe,
            job_name: a.job_name,
            partition: a.partition,
            gres: a.gres,
            time: a.time,
            cpus_per_task: a.cpus_per_task,
            max_parallel: a.max_parallel,
            extra: a.sbatch_args,
        };
        let script = slurm::write_script(&plan, &o)?;
        outln!(
            "wrote {} ({n} tasks) and {}",
            script.display(),
            plan.dir.join(sweep::PLAN_FILE).display()
        );
        if a.submit {
            let id = slurm::submit(&script)?;
            outln!("submitted job array {id}; logs in {}", plan.dir.join(sweep::LOG_DIR).display());
            outln!("{id}");
        } else {
            outln!("submit it with: sbatch {}", script.display());
        }
        return Ok(());
    }
    let gpus = a.gpus.unwrap_or_else(|| tch::Cuda::device_count().max(0) as usize);
    let o = local::LocalOptions::new(exe, gpus, a.jobs);
    if !quiet {
        eprintln!(
            "sweep: {n} tasks, {} at a time on {}; logs in {}",
            o.slots.len(),
            if gpus > 0 { format!("{gpus} GPU(s)") } else { "the CPU".into() },
            plan.dir.join(sweep::LOG_DIR).display()
        );
    }
    let result = local::run(&plan, &o, &mut |e| {
        if quiet {
            return;
        }
        match e {
            local::Event::Started { task, gpu } => eprintln!(
                "task {} started: {} seed {}{}",
                task.index,
                plan.configs[task.config].name,
                task.seed,
                gpu.map(|g| format!(" on GPU {g}")).unwrap_or_default()
            ),
            local::Event::Ended { task, ok, seconds, done, total } => eprintln!(
                "[{done}/{total}] task {} {} in {seconds:.0} s: {} seed {}",
                task.index,
                if ok { "finished" } else { "FAILED" },
                plan.configs[task.config].name,
                task.seed,
            ),
        }
    });
    // Summaries of the configs whose seeds all finished, even when another config failed.
    for c in 0..plan.configs.len() {
        if let Some(s) = sweep::summary_if_complete(&plan, c)? {
            outln!("{}", s.markdown());
        }
    }
    result?;
    outln!(
        "sweep finished: {}; `fer-infer report {}` puts it in one table",
        plan.dir.display(),
        plan.dir.display()
    );
    Ok(())
}

pub fn task(a: TaskArgs, obs: &dyn Observer) -> Result<()> {
    let index = match a.index {
        Some(i) => i,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or(fer_train::Error::from(sweep::SweepError::NoIndex))?,
    };
    let plan = SweepPlan::read(&a.sweep)?;
    let done = sweep::run_task(&plan, index, obs)
        .with_context(|| format!("sweep task {index} in {}", a.sweep.display()))?;
    let how = match done.start {
        sweep::Start::Finished => "finished earlier, skipped",
        sweep::Start::Resumed => "resumed and finished",
        sweep::Start::Trained => "trained",
    };
    outln!(
        "task {index}: {} ({how}, best epoch {})",
        done.outcome.dir.display(),
        done.outcome.best_epoch
    );
    if let Some(s) = done.summary {
        outln!("{}", s.markdown());
    }
    Ok(())
}
