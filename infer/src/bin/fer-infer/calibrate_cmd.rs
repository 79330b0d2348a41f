//! `fer-infer calibrate`: fit the softmax temperature on a held-out set and write a copy of
//! the model with `fer.temperature` updated (the graph is not changed).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fer_infer::calibrate::{
    BOOTSTRAP_ROUNDS, fit_temperature, holdout_warning, temperature_interval, with_temperature,
};
use fer_infer::eval::{MetricSet, Tta};

use crate::UsageError;
use crate::args::{BackendArgs, MetaArgs};
use crate::eval_cmd::{DataArgs, collect};

/// Arguments of `calibrate`.
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// The exported model (`.onnx`).
    /// Default: the built-in FER-2013 student (docs/models.md).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    meta: MetaArgs,
    /// Where to write the calibrated copy (must differ from --model).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: CalibrateArgs) -> anyhow::Result<()> {
    let model_path = crate::builtin::model_path(a.model.as_deref())?;
    let same = std::fs::canonicalize(&model_path).ok().zip(std::path::absolute(&a.out).ok());
    if model_path == a.out || same.is_some_and(|(m, o)| m == o) {
        return Err(UsageError(
            "--out must differ from --model (the model is not modified in \
                               place)"
                .into(),
        )
        .into());
    }
    let r = collect(&model_path, &a.meta, &a.backend, &a.data)?;
    let c = &r.collected;
    let k = r.classes.k();
    let km = r.classes.model_labels.len();
    if r.classes.is_partial() {
        eprintln!(
            "note: fitting on the {k} shared classes only (softmax over their logits), as eval \
             scores them"
        );
    }
    let shared: Vec<f32> = c
        .logits
        .chunks_exact(km)
        .flat_map(|row| r.classes.model_indices.iter().map(move |&i| row[i]))
        .collect();
    let fit = fit_temperature(&shared, &c.labels, k).context("fitting the temperature")?;
    if fit.temperature >= fer_infer::calibrate::T_RANGE.1 * 0.99 {
        eprintln!(
            "warning: the fitted temperature is at the top of the search range ({}): the \
             model's predictions carry almost no information about the labels of this set \
             (near-uniform probabilities fit best); check the data and labels",
            fer_infer::calibrate::T_RANGE.1
        );
    }
    let t_ci = temperature_interval(&shared, &c.labels, k, 0)?;
    let stored = r.info.temperature;
    let score = |t: f64, bootstrap: usize| {
        let p = r.classes.probabilities(&c.logits, t);
        MetricSet::compute(&p, &c.labels, &r.classes.shared, t, bootstrap, 0)
    };
    let mut rows = vec![("T = 1 (raw logits)", score(1.0, 0)?)];
    if stored != 1.0 {
        rows.push(("stored temperature", score(stored, 0)?));
    }
    // The fitted row with eval's bootstrap intervals (the ECE's is printed below).
    let fitted = score(fit.temperature, BOOTSTRAP_ROUNDS)?;
    let ece_ci = fitted.ci.as_ref().map_or([f64::NAN; 2], |ci| ci.ece);
    rows.push(("fitted temperature", fitted));
    let bytes =
        std::fs::read(&model_path).with_context(|| format!("reading {}", model_path.display()))?;
    let out = with_temperature(&model_path, &bytes, fit.temperature)?;
    // Atomic, and never over a FIFO, device or directory; the error names the path.
    fer_checkpoint::write_atomic(&a.out, &out)?;
    outln!(
        "fitted T = {} on {} samples of {} ({} split{}), golden-section on log T, {} iterations",
        fit.temperature,
        c.labels.len(),
        a.data.data.display(),
        r.spec.split_name(),
        match a.data.tta {
            Tta::None => "",
            Tta::Flip => ", logits averaged over each image and its mirror",
            Tta::TenCrop => ", logits averaged over each image's ten crops",
        },
        fit.iterations
    );
    outln!(
        "95 % bootstrap interval of T: {:.4}–{:.4} ({BOOTSTRAP_ROUNDS} resamples of this hold-out)",
        t_ci.0,
        t_ci.1
    );
    if a.data.tta != Tta::None {
        outln!(
            "this temperature fits `fer-infer eval --tta {}`: evaluate with the same flag",
            a.data.tta.name()
        );
    }
    outln!("\n{:<22} {:>10} {:>9} {:>9} {:>9} {:>9}", "", "T", "accuracy", "ECE", "NLL", "Brier");
    for (name, m) in &rows {
        outln!(
            "{name:<22} {:>10.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4}",
            m.temperature,
            m.accuracy,
            m.ece,
            m.nll,
            m.brier
        );
    }
    let floor = rows.last().map_or([f64::NAN; 2], |(_, m)| m.ece_floor);
    outln!(
        "ECE at the fitted T on this hold-out: {:.4} (95 % bootstrap interval {:.4}–{:.4}; a \
         perfectly calibrated model with these confidences would measure {:.4} ± {:.4} here)",
        rows.last().map_or(f64::NAN, |(_, m)| m.ece),
        ece_ci[0],
        ece_ci[1],
        floor[0],
        floor[1]
    );
    if let Some((_, m)) = rows.last() {
        outln!("{}", per_class_line(m));
    }
    if let Some(w) = holdout_warning(c.labels.len(), fit.temperature, t_ci) {
        eprintln!("warning: {w}");
    }
    outln!(
        "\nwrote {} (fer.temperature = {}; the graph and its raw `logits` output are unchanged)",
        a.out.display(),
        fit.temperature
    );
    Ok(())
}

/// One line: for each class predicted at least once, its predictions' mean confidence minus
/// their accuracy (points) and how many there are. Gaps of both signs are what the fitted
/// temperature cannot correct (docs/evaluation.md).
fn per_class_line(m: &MetricSet) -> String {
    let cells: Vec<String> = m
        .per_class
        .iter()
        .filter(|c| c.predicted > 0)
        .map(|c| {
            format!("{} {:+.1} ({})", c.class, 100.0 * (c.confidence - c.precision), c.predicted)
        })
        .collect();
    format!(
        "per predicted class at the fitted T, mean confidence − accuracy in points (images): {}",
        cells.join(", ")
    )
}
