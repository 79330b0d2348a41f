//! `fer-infer`: classify images, compare runtimes and measure latency with exported models.
//!
//! Subcommands live in their own files (`predict.rs`, `parity.rs`, `bench.rs`; `eval`,
//! `calibrate` and `webcam` join them), sharing the flags of `args.rs`.

#[macro_use]
mod out;
mod args;
mod bench;
mod bench_photo;
mod builtin;
mod calibrate_cmd;
mod data_cmd;
mod env_cmd;
mod eval_cmd;
mod live_cmd;
mod parity;
mod predict;
mod predict_out;
mod predict_video;
mod report_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use fer_checkpoint::cli::{CompletionsArgs, Verbosity};

/// Run exported FER models (ONNX) with ONNX Runtime or tract.
#[derive(Parser)]
#[command(
    name = "fer-infer",
    version,
    about,
    after_help = "Examples:\n  fer-infer predict photo.jpg                 faces found and classified by the built-in model\n  fer-infer predict --csv --model m.onnx DIR  one CSV row per face, a probability column per class\n  fer-infer eval --model m.onnx --data DIR    accuracy, macro-F1, calibration, plots\n  fer-infer --webcam                          the live demo on the camera\n  fer-infer env                               which ONNX Runtime, detector and model are used"
)]
struct Cli {
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Find and classify the faces of photos (or classify face crops whole); one JSON line
    /// (or CSV row) per face, and one for each image without a face.
    Predict(predict::PredictArgs),
    /// Run every available runtime on a labelled image folder and compare their logits.
    Parity(parity::ParityArgs),
    /// Measure latency and throughput per runtime and batch size.
    Bench(bench::BenchArgs),
    /// Evaluate on a labelled dataset: accuracy, macro-F1, calibration, plots, report.
    Eval(eval_cmd::EvalArgs),
    /// Fit the softmax temperature on a held-out set and write a calibrated copy of the model.
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// Dataset tools: `data faces` turns labelled photos into a dataset of aligned face crops.
    #[command(subcommand)]
    Data(data_cmd::DataCmd),
    /// Tabulate eval outputs and trainer runs: mean ± std over seeds, markdown, CSV, bar plot.
    Report(report_cmd::ReportArgs),
    /// The live demo: faces found, aligned, classified and smoothed frame by frame, from the
    /// camera (`fer-infer --webcam`), a synthetic scene or image files.
    Live(live_cmd::LiveArgs),
    /// What this binary finds and uses: its version and commit, the ONNX Runtime library (and
    /// where it looked), the face detector, the built-in model, the cache folder.
    Env,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// A failure that is the user's to fix by changing the command line (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn main() -> ExitCode {
    // `fer-infer --webcam [OPTIONS]` is `fer-infer live --source camera [OPTIONS]`.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "--webcam") {
        argv.splice(1..2, ["live".into(), "--source".into(), "camera".into()]);
    }
    let matches = Cli::command().long_version(env_cmd::long_version()).get_matches_from(argv);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.verbosity.init_logging();
    let result = match cli.cmd {
        Cmd::Predict(a) => predict::run(a),
        Cmd::Parity(a) => parity::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Eval(a) => eval_cmd::run(a),
        Cmd::Calibrate(a) => calibrate_cmd::run(a),
        Cmd::Report(a) => report_cmd::run(a),
        Cmd::Data(c) => data_cmd::run(c),
        Cmd::Live(a) => live_cmd::run(a),
        Cmd::Env => env_cmd::run(),
        Cmd::Completions(a) => {
            let mut stdout = std::io::stdout();
            fer_checkpoint::cli::write_completions(&mut Cli::command(), a.shell, &mut stdout)
                .map_err(|e| out::StdoutError(e).into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if out::closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", fer_checkpoint::error_line(e.as_ref()));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for usage errors (bad flags, missing metadata the flags must supply), 1 otherwise.
fn exit_code(e: &anyhow::Error) -> u8 {
    let usage = e.chain().any(|c| {
        c.downcast_ref::<UsageError>().is_some()
            || c.downcast_ref::<fer_live::Error>().is_some_and(fer_live::Error::is_usage)
            || matches!(
                c.downcast_ref::<fer_infer::Error>(),
                Some(fer_infer::Error::Meta { .. } | fer_infer::Error::Invalid { .. })
            )
    });
    if usage { 2 } else { 1 }
}
