//! `fer-train`: trains FER students and teachers from TOML experiment configs.

#[macro_use]
mod out;
mod init_cmd;
mod launch;
mod progress;
mod sweep_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use fer_checkpoint::cli::{CompletionsArgs, Verbosity};
use fer_data::formats::{Format, OpenOptions};
use fer_train::config::ExperimentConfig;
use fer_train::device::DeviceChoice;
use fer_train::trainer::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "fer-train",
    version,
    about = "Train facial-expression models on libtorch, with knowledge distillation.",
    after_help = "Examples:\n  fer-train synth --out data/synth                      a small built-in dataset\n  fer-train init --data my_faces/                       a config for your own class folders\n  fer-train run --config configs/fer2013/exp3_baseline.toml --set optim.lr=0.05\n  fer-train run --config C.toml --seeds 1,2,3            one run per seed, mean ± std\n  fer-train resume runs/NAME                             continue after a crash or a kill\n  fer-train sweep --config A.toml B.toml --seeds 1,2,3 --out runs/sw --slurm --submit\n  fer-train check --config C.toml                        validate, print the resolved config"
)]
struct Cli {
    /// `-q`: no progress bars; `-v`: also the resolved config and where libtorch was loaded
    /// from, before training.
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train an experiment config (see configs/README.md) into `<output_dir>/<name>/`.
    Run {
        /// The TOML config.
        #[arg(long)]
        config: PathBuf,
        /// Override a field: `--set optim.lr=0.05 --set stages.0.epochs=3` (TOML values).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Run once per seed (`--seeds 1,2,3`) into `<run>/seed<k>/` and write the mean ± std
        /// summary; without it the config's `seed` is used.
        #[arg(long, value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Overrides the config's device.
        #[arg(long, value_enum)]
        device: Option<DeviceChoice>,
        /// Replace an existing run in the same directory instead of refusing.
        #[arg(long)]
        overwrite: bool,
        /// Data-parallel training on this machine: N processes (one per GPU, or Gloo on the
        /// CPU), each on its share of every epoch, gradients averaged over them. An external
        /// launcher (torchrun, srun) sets RANK, WORLD_SIZE, MASTER_ADDR… instead.
        #[arg(long, value_name = "N", value_parser = at_least_one)]
        nproc: Option<usize>,
    },
    /// Configs × seeds as independent tasks: a Slurm job array (`--slurm`, `--submit`) or
    /// this machine's GPUs (`--local`); each task writes what `run --seeds` writes for its seed,
    /// resumes if started again, and `fer-infer report <out>` gathers them.
    Sweep(sweep_cmd::SweepArgs),
    /// One task of a sweep (what each Slurm array task runs): trains, resumes or skips it.
    #[command(hide = true)]
    SweepTask(sweep_cmd::TaskArgs),
    /// Write a complete, commented config for a folder of class folders (your own data),
    /// which `run` accepts as it is.
    Init(init_cmd::InitArgs),
    /// Parse and validate a config, print it fully resolved; trains nothing.
    Check {
        /// The TOML config (or `--config FILE`, as for `run`).
        #[arg(required_unless_present = "config_flag")]
        config: Option<PathBuf>,
        /// The TOML config.
        #[arg(long = "config", conflicts_with = "config")]
        config_flag: Option<PathBuf>,
        /// Overrides, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Continue an interrupted run from its last completed epoch.
    Resume {
        /// The run directory (holds config.resolved.toml and state.safetensors).
        run_dir: PathBuf,
        /// Overrides the recorded device.
        #[arg(long, value_enum)]
        device: Option<DeviceChoice>,
        /// Continue a data-parallel run with N processes (as `run --nproc`).
        #[arg(long, value_name = "N", value_parser = at_least_one)]
        nproc: Option<usize>,
    },
    /// Write the built-in synthetic expression set in the FER-2013 folder layout.
    Synth {
        /// Output folder (gets train/<class>/ and val/<class>/).
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed writes the same images.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Training images per class.
        #[arg(long, default_value_t = 200)]
        train_per_class: usize,
        /// Validation images per class.
        #[arg(long, default_value_t = 50)]
        val_per_class: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 48)]
        size: u32,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        cmd: DataCmd,
    },
    /// Print the version and commit, where libtorch was loaded from, and whether CUDA is usable.
    Env,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Training-step throughput on synthetic inputs (img/s after warm-up), one JSON line per
    /// configuration; the PyTorch counterpart is scripts/gpu/torch_eager_bench.py.
    Bench {
        /// Student architectures (comma-separated), e.g. mobilenet_v3_small,efficientnet_b0.
        #[arg(long, value_delimiter = ',', required = true)]
        arch: Vec<fer_models_spec::Arch>,
        /// Input sides in pixels (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [112], value_parser = at_least_one)]
        size: Vec<usize>,
        /// Images per step.
        #[arg(long, default_value_t = 256, value_parser = at_least_one)]
        batch: usize,
        /// Precisions (comma-separated): fp32, bf16, fp16.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "fp32")]
        precision: Vec<fer_train::config::Precision>,
        /// Channels-last weights and inputs.
        #[arg(long)]
        channels_last: bool,
        /// Add a frozen teacher, `ARCH@SIZE` (the exp5 step: CE + Hinton KD + RKD distance).
        #[arg(long, value_parser = parse_arch_at)]
        teacher: Option<(fer_models_spec::Arch, usize)>,
        /// Capture the step as a CUDA graph and replay it (as training does by default on
        /// CUDA); without it every step is launched eagerly.
        #[arg(long)]
        cuda_graphs: bool,
        /// Untimed warm-up steps.
        #[arg(long, default_value_t = 15)]
        warmup: usize,
        /// Timed steps.
        #[arg(long, default_value_t = 50, value_parser = at_least_one)]
        steps: usize,
        /// Device.
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
}

#[derive(Subcommand)]
enum DataCmd {
    /// Count images per split and class, and list bad items, so a download can be checked.
    Inspect {
        /// Dataset format: fer2013-csv, fer2013-folder, ferplus, rafdb, affectnet-csv,
        /// affectnet-folder, ckplus, jaffe, image-folder.
        #[arg(long)]
        format: Format,
        /// The dataset's root folder or file.
        #[arg(long)]
        root: PathBuf,
        /// Decode every image too (slow), to find corrupt files.
        #[arg(long)]
        decode: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn load_config(path: &std::path::Path, sets: &[String]) -> Result<ExperimentConfig> {
    let mut cfg = ExperimentConfig::load(path)?;
    cfg.apply_overrides(sets)?;
    cfg.validate().map_err(fer_train::config::ConfigError::from)?;
    cfg.check_files().map_err(fer_train::config::ConfigError::from)?;
    Ok(cfg)
}

/// A count that must be at least 1 (`fer-train bench --batch 0` would fail inside the loss);
/// clap reports the flag and this sentence, exit 2.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// `--teacher ARCH@SIZE`; a bad value is a usage error (exit 2) naming what is wrong.
fn parse_arch_at(s: &str) -> Result<(fer_models_spec::Arch, usize), String> {
    let (a, size) = s.split_once('@').ok_or("wants ARCH@SIZE, e.g. resnet50@112")?;
    let arch = a.parse().map_err(|e| format!("{e}"))?;
    Ok((arch, at_least_one(size).map_err(|e| format!("size `{size}`: {e}"))?))
}

fn run(cli: Cli) -> Result<()> {
    fer_train::device::load_cuda_backend();
    match &cli.cmd {
        Cmd::Run { nproc: Some(_), seeds, .. } if !seeds.is_empty() => anyhow::bail!(
            "--nproc trains one run at a time: give one seed per run, or use `fer-train sweep`"
        ),
        Cmd::Run { nproc: Some(n), .. } | Cmd::Resume { nproc: Some(n), .. } if *n > 1 => {
            return launch::spawn(*n);
        }
        _ => {}
    }
    let ranks = fer_train::dist::DistEnv::from_env()?;
    if let (Some(_), Cmd::Run { seeds, .. }) = (&ranks, &cli.cmd)
        && !seeds.is_empty()
    {
        anyhow::bail!("a data-parallel run (WORLD_SIZE is set) trains one seed: drop --seeds");
    }
    // Only rank 0 of a data-parallel run draws progress and prints the outcome.
    let rank0 = ranks.as_ref().is_none_or(|r| r.rank == 0);
    let quiet = cli.verbosity.quiet || !rank0;
    let obs = progress::Bars::new(quiet);
    let verbose = cli.verbosity.verbose > 0;
    match cli.cmd {
        Cmd::Run { config, sets, seeds, device, overwrite, nproc: _ } => {
            let cfg = load_config(&config, &sets)
                .with_context(|| format!("reading config {}", config.display()))?;
            if verbose {
                eprintln!("{}", libtorch_line());
                eprintln!("resolved config:\n{}", cfg.resolved_toml()?);
            }
            let opts = RunOptions { overwrite, device, run_dir: None };
            if seeds.is_empty() {
                let out = trainer::train(&cfg, &opts, &obs)?;
                if rank0 {
                    outln!("run directory: {} (best epoch {})", out.dir.display(), out.best_epoch);
                }
            } else {
                let s = trainer::seeds::train_seeds(&cfg, &seeds, &opts, &obs)?;
                outln!("{}", s.markdown());
            }
        }
        Cmd::Init(a) => init_cmd::run(a)?,
        Cmd::Sweep(a) => sweep_cmd::sweep(a, cli.verbosity.quiet)?,
        Cmd::SweepTask(a) => sweep_cmd::task(a, &obs)?,
        Cmd::Check { config, config_flag, sets } => {
            let config = config.or(config_flag).unwrap_or_default();
            let cfg = load_config(&config, &sets)
                .with_context(|| format!("checking config {}", config.display()))?;
            out!("{}", cfg.resolved_toml()?);
        }
        Cmd::Resume { run_dir, device, nproc: _ } => {
            let context = || format!("resuming {}", run_dir.display());
            // A finished run is read back, never written (`trainer::resume` checks it too).
            if let Some(done) = trainer::finished(&run_dir).with_context(context)? {
                outln!(
                    "run directory: {} is finished (best epoch {}); nothing to resume, no file \
                     changed",
                    done.dir.display(),
                    done.best_epoch
                );
                return Ok(());
            }
            let out = trainer::resume(&run_dir, device, &obs).with_context(context)?;
            if rank0 {
                outln!("run directory: {} (best epoch {})", out.dir.display(), out.best_epoch);
            }
        }
        Cmd::Synth { out, seed, train_per_class, val_per_class, size } => {
            let cfg = fer_data::synth::SynthConfig { seed, train_per_class, val_per_class, size };
            let n = fer_data::synth::write_fer_folder(&out, &cfg)
                .with_context(|| format!("writing the synthetic set into {}", out.display()))?;
            outln!("wrote {n} images into {}", out.display());
        }
        Cmd::Data { cmd: DataCmd::Inspect { format, root, decode, json } } => {
            let opts = OpenOptions::default();
            let report = if decode {
                fer_data::inspect::inspect_decoding(format, &root, &opts)
            } else {
                fer_data::inspect::inspect(format, &root, &opts)
            }
            .with_context(|| format!("inspecting {} as {format}", root.display()))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{report}");
            }
        }
        Cmd::Bench {
            arch,
            size,
            batch,
            precision,
            channels_last,
            teacher,
            cuda_graphs,
            warmup,
            steps,
            device,
        } => {
            let device = fer_train::device::resolve(device)?;
            for &a in &arch {
                for &s in &size {
                    for &precision in &precision {
                        let o = fer_train::trainer::bench::BenchOptions {
                            arch: a,
                            size: s,
                            batch,
                            precision,
                            channels_last,
                            teacher,
                            cuda_graphs,
                            warmup,
                            steps,
                            device,
                        };
                        let r = fer_train::trainer::bench::train_throughput(&o)
                            .with_context(|| format!("benchmarking {a}@{s} {precision:?}"))?;
                        outln!("{}", serde_json::to_string(&r)?);
                    }
                }
            }
        }
        Cmd::Env => {
            let loaded = fer_train::device::load_cuda_backend();
            outln!(
                "fer-train {} (commit {})",
                env!("CARGO_PKG_VERSION"),
                fer_checkpoint::cli::COMMIT
            );
            outln!("{}", libtorch_line());
            outln!("libtorch_cuda loaded: {loaded}");
            outln!(
                "CUDA available: {} ({} device(s))",
                tch::Cuda::is_available(),
                tch::Cuda::device_count()
            );
            outln!("cuDNN available: {}", tch::Cuda::cudnn_is_available());
            match fer_train::cuda_graph::available() {
                Ok(()) => outln!("CUDA graph capture: available"),
                Err(why) => outln!("CUDA graph capture: {why}"),
            }
            let nccl = tch::Cuda::is_available() && fer_train::cuda_graph::nccl_factory().is_some();
            match (fer_train::dist::available(), nccl) {
                (true, true) => outln!("data-parallel training: Gloo (CPU) and NCCL (CUDA)"),
                (true, false) => outln!("data-parallel training: Gloo (NCCL not here)"),
                (false, _) => outln!(
                    "data-parallel training: not built (no Gloo headers at build time; Debian: \
                     libgloo-dev)"
                ),
            }
            outln!("threads: {}", tch::get_num_threads());
            if tch::Cuda::is_available() {
                use fer_train::amp::autocast;
                use fer_train::config::Precision;
                let a = tch::Tensor::ones([8, 8], (tch::Kind::Float, tch::Device::Cuda(0)));
                for p in [Precision::Bf16, Precision::Fp16] {
                    let kind = autocast(p, || a.matmul(&a).kind())?;
                    outln!("CUDA autocast {p:?}: a float32 matmul runs in {kind:?}");
                }
            }
        }
        Cmd::Completions(a) => {
            let mut stdout = std::io::stdout();
            fer_checkpoint::cli::write_completions(&mut Cli::command(), a.shell, &mut stdout)
                .map_err(out::StdoutError)?;
        }
    }
    Ok(())
}

/// `libtorch VERSION at FOLDER`: the folder of the `libtorch_cpu.so` this process mapped
/// (found through the binary's RUNPATH — the build's libtorch, then `../lib` beside the
/// binary's folder — or `LD_LIBRARY_PATH`).
fn libtorch_line() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let dir = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.display().to_string()))
        .unwrap_or_else(|| "an unknown folder".into());
    format!("libtorch {} at {dir}", env!("FER_LIBTORCH_VERSION"))
}

fn main() -> ExitCode {
    let version = fer_checkpoint::cli::long_version(
        env!("CARGO_PKG_VERSION"),
        &[("libtorch", env!("FER_LIBTORCH_VERSION").to_string())],
    );
    let parsed = Cli::command()
        .long_version(version)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if out::closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // A rank of a data-parallel run says which it is.
            let rank = match (std::env::var("RANK"), std::env::var("WORLD_SIZE")) {
                (Ok(r), Ok(w)) => format!(" (rank {r} of {w})"),
                _ => String::new(),
            };
            eprintln!("error{rank}: {}", fer_checkpoint::error_line(e.as_ref()));
            let usage =
                e.chain().any(|c| c.downcast_ref::<fer_train::config::ConfigError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
