//! `fer-train init`: writes the config [`fer_train::init::plan`] renders, then loads it back as
//! `fer-train run` would, so what is written is known to be accepted.

use std::path::PathBuf;

use anyhow::{Context, Result};
use fer_data::formats::{ClassMap, FolderClass};
use fer_train::init::{InitRequest, Task};

/// `fer-train init` flags.
#[derive(clap::Args)]
pub struct InitArgs {
    /// The dataset folder: one folder per class (`happy/`, `sad/`, …), directly or under
    /// `train/ val/ test/`.
    #[arg(long)]
    data: PathBuf,
    /// What to train: a student from scratch (`baseline`), a `teacher`, or a student distilled
    /// from `--teacher` (`kd`: Hinton KD; `hybrid`: KD + RKD).
    #[arg(long, value_enum, default_value = "baseline")]
    task: Task,
    /// The architecture (default mobilenet_v3_large; resnet18 for a teacher).
    #[arg(long)]
    arch: Option<fer_models_spec::Arch>,
    /// The teacher for `kd`/`hybrid`: its run folder or `best.safetensors`.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// A class folder not named after an expression: `--map smiling=happiness`, or
    /// `--map misc=skip` to leave it out (repeat for several).
    #[arg(long = "map", value_name = "FOLDER=EXPRESSION", value_parser = parse_map)]
    maps: Vec<(String, FolderClass)>,
    /// The config file to write (default `<name>.toml` here).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The run's name (default `<data folder>_<task>`).
    #[arg(long)]
    name: Option<String>,
    /// Training epochs (default 60; 80 for a teacher).
    #[arg(long)]
    epochs: Option<usize>,
    /// Replace the config file if it exists.
    #[arg(long)]
    force: bool,
}

fn parse_map(s: &str) -> Result<(String, FolderClass), String> {
    let (k, v) = s.split_once('=').ok_or("wants FOLDER=EXPRESSION, e.g. smiling=happiness")?;
    Ok((k.to_string(), v.parse()?))
}

/// Writes the config and prints what it holds and the command that trains it.
pub fn run(a: InitArgs) -> Result<()> {
    let class_map = ClassMap(a.maps.into_iter().collect());
    let provisional = a.out.clone().unwrap_or_else(|| PathBuf::from("init.toml"));
    let req = InitRequest {
        data: a.data.clone(),
        out: provisional,
        task: a.task,
        arch: a.arch,
        teacher: a.teacher,
        class_map,
        name: a.name,
        epochs: a.epochs,
    };
    let plan = fer_train::init::plan(&req)
        .with_context(|| format!("making a config for {}", a.data.display()))?;
    let out = a.out.unwrap_or_else(|| PathBuf::from(format!("{}.toml", plan.name)));
    if out.exists() && !a.force {
        anyhow::bail!("{} exists; pass --force to replace it", out.display());
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fer_checkpoint::atomic::write_atomic(&out, plan.text.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    crate::load_config(&out, &[]).with_context(|| {
        format!("{} was written but does not load back (a bug: please report it)", out.display())
    })?;
    outln!("class folders:");
    for line in &plan.classes {
        outln!("  {line}");
    }
    outln!("splits: {}", plan.splits);
    outln!("wrote {}", out.display());
    outln!("next: fer-train run --config {}", out.display());
    Ok(())
}
