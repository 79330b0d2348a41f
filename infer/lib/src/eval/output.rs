//! Writing an evaluation: `metrics.json`, `report.md`, `predictions.csv` and the PNGs, and the
//! summary table printed on stdout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fer_metrics::plot;

use super::scores::MetricSet;
use super::{Collected, EvalReport, Tta};
use crate::error::{Error, Result};

/// File names inside the output folder.
pub const METRICS_JSON: &str = "metrics.json";
/// The human-readable report.
pub const REPORT_MD: &str = "report.md";
/// One row per sample: source, label, prediction, probabilities.
pub const PREDICTIONS_CSV: &str = "predictions.csv";
/// Reliability diagram at the model's temperature.
pub const RELIABILITY_PNG: &str = "reliability.png";
/// Reliability diagram at `T = 1` (only when the temperature is not 1).
pub const RELIABILITY_T1_PNG: &str = "reliability_t1.png";
/// Confusion-matrix heatmap.
pub const CONFUSION_PNG: &str = "confusion.png";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Every output is written atomically: a full disk leaves the previous file or none, never a
/// truncated one.
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(fer_checkpoint::write_atomic(path, bytes)?)
}

/// Writes every output file into `dir` (created if needed); returns their paths.
pub fn write_all(report: &EvalReport, c: &Collected, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    let path = dir.join(METRICS_JSON);
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Error::invalid("metrics.json", e.to_string()))?;
    write(&path, (json + "\n").as_bytes())?;
    written.push(path);
    let path = dir.join(PREDICTIONS_CSV);
    write(&path, predictions_csv(report, c).as_bytes())?;
    written.push(path);
    let subtitle = subtitle(report);
    let m = &report.metrics;
    let path = dir.join(RELIABILITY_PNG);
    let sub = format!("{subtitle}, T = {}", fmt_t(m.temperature));
    plot::reliability_diagram(&m.reliability, m.ece, &sub, &path)?;
    written.push(path);
    if let Some(m1) = &report.metrics_t1 {
        let path = dir.join(RELIABILITY_T1_PNG);
        plot::reliability_diagram(&m1.reliability, m1.ece, &format!("{subtitle}, T = 1"), &path)?;
        written.push(path);
    }
    let path = dir.join(CONFUSION_PNG);
    plot::confusion_heatmap(&m.confusion_matrix, &report.classes.shared, &subtitle, &path)?;
    written.push(path);
    let path = dir.join(REPORT_MD);
    write(&path, markdown(report).as_bytes())?;
    written.push(path);
    Ok(written)
}

fn subtitle(r: &EvalReport) -> String {
    let model = r.model.path.file_name().map(|s| s.to_string_lossy()).unwrap_or_default();
    format!("{model} on {} ({})", r.dataset.name, r.dataset.spec.split_name())
}

fn fmt_t(t: f64) -> String {
    format!("{t:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `source,label,predicted,confidence,correct,p_<class>...` with probabilities at the
/// model's temperature over the shared classes.
fn predictions_csv(r: &EvalReport, c: &Collected) -> String {
    let classes = &r.classes.shared;
    let k = classes.len();
    let probs = r.classes.probabilities(&c.logits, r.model.temperature);
    let mut s = String::from("source,label,predicted,confidence,correct");
    for name in classes {
        let _ = write!(s, ",p_{}", csv_field(name));
    }
    s.push('\n');
    for ((src, &label), row) in c.sources.iter().zip(&c.labels).zip(probs.chunks_exact(k)) {
        let pred = fer_metrics::argmax(row);
        let _ = write!(
            s,
            "{},{},{},{},{}",
            csv_field(src),
            csv_field(&classes[label]),
            csv_field(&classes[pred]),
            row[pred],
            (pred == label) as u8
        );
        for p in row {
            let _ = write!(s, ",{p}");
        }
        s.push('\n');
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row of the summary table: name, value at T, 95% CI, value at T = 1.
type SummaryRow = (&'static str, f64, Option<[f64; 2]>, Option<f64>);

/// The rows of the summary table.
fn rows(r: &EvalReport) -> Vec<SummaryRow> {
    let m = &r.metrics;
    let t1 = r.metrics_t1.as_ref();
    let ci = m.ci.as_ref();
    let pick = |f: fn(&MetricSet) -> f64| t1.map(f);
    vec![
        ("accuracy", m.accuracy, ci.map(|c| c.accuracy), pick(|m| m.accuracy)),
        ("balanced accuracy", m.balanced_accuracy, None, pick(|m| m.balanced_accuracy)),
        ("macro-F1", m.macro_f1, ci.map(|c| c.macro_f1), pick(|m| m.macro_f1)),
        ("ECE (15 bins)", m.ece, ci.map(|c| c.ece), pick(|m| m.ece)),
        ("adaptive ECE", m.adaptive_ece, None, pick(|m| m.adaptive_ece)),
        ("MCE", m.mce, None, pick(|m| m.mce)),
        ("NLL", m.nll, None, pick(|m| m.nll)),
        ("Brier [0, 2]", m.brier, None, pick(|m| m.brier)),
    ]
}

/// One line on the test-time augmentation.
fn tta_text(t: Tta) -> &'static str {
    match t {
        Tta::None => "none",
        Tta::Flip => "horizontal flip (logits of the image and its mirror averaged)",
        Tta::TenCrop => {
            "ten-crop (logits of the four corner and the centre crops of 11/12 of each side, \
             each also mirrored, averaged)"
        }
    }
}

/// The summary printed on stdout: what was evaluated, the class notes and the metrics.
pub fn summary(r: &EvalReport) -> String {
    let mut s = String::new();
    let arch = r.model.arch.as_deref().unwrap_or("unknown arch");
    let _ = writeln!(
        s,
        "model    {} ({arch}, {} parameters, {}, T = {})",
        r.model.path.display(),
        r.model.parameters,
        r.model.backend,
        fmt_t(r.model.temperature)
    );
    let d = &r.dataset;
    let _ = writeln!(
        s,
        "dataset  {} [{}] split {}: {} evaluated of {}{}{}",
        d.spec.path.display(),
        d.spec.format,
        d.spec.split_name(),
        d.evaluated,
        d.total,
        if d.left_out > 0 {
            format!(", {} left out (classes dropped)", d.left_out)
        } else {
            "".into()
        },
        if d.skipped.is_empty() {
            "".into()
        } else {
            format!(", {} skipped (unreadable, or no face with --faces)", d.skipped.len())
        },
    );
    for note in r.classes.notes() {
        let _ = writeln!(s, "classes  {note}");
    }
    if r.settings.tta != Tta::None {
        let _ = writeln!(s, "tta      {}", tta_text(r.settings.tta));
    }
    let t = fmt_t(r.metrics.temperature);
    let has_t1 = r.metrics_t1.is_some();
    let _ = write!(s, "\n{:<20} {:>10}  {:<19}", "metric", format!("T = {t}"), "95% CI");
    let _ = writeln!(s, "{}", if has_t1 { format!("{:>10}", "T = 1") } else { String::new() });
    for (name, v, ci, v1) in rows(r) {
        let ci = ci.map_or(String::new(), |c| format!("[{:.4}, {:.4}]", c[0], c[1]));
        let _ = write!(s, "{name:<20} {v:>10.4}  {ci:<19}");
        let _ = writeln!(s, "{}", v1.map_or(String::new(), |v| format!("{v:>10.4}")));
    }
    let _ = writeln!(s, "{}", floor_line(&r.metrics));
    s
}

/// What the ECE would be if the model were perfectly calibrated: the measurement's noise floor.
fn floor_line(m: &MetricSet) -> String {
    format!(
        "ECE floor {:.4} ± {:.4}: what a perfectly calibrated model with these confidences \
         would measure on these {} samples (an ECE within two standard deviations of it is \
         noise)",
        m.ece_floor[0], m.ece_floor[1], m.samples
    )
}

/// `report.md`.
pub fn markdown(r: &EvalReport) -> String {
    let mut s = String::new();
    let m = &r.metrics;
    let name = r.model.path.file_name().map(|s| s.to_string_lossy()).unwrap_or_default();
    let _ = writeln!(s, "# Evaluation of `{name}` on {}\n", r.dataset.name);
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| model | `{}` |", r.model.path.display());
    let _ = writeln!(s, "| architecture | {} |", r.model.arch.as_deref().unwrap_or("unknown"));
    let _ = writeln!(s, "| parameters | {} |", r.model.parameters);
    let _ = writeln!(s, "| runtime | {} |", r.model.backend);
    let _ = writeln!(s, "| temperature | {} |", fmt_t(r.model.temperature));
    let d = &r.dataset;
    let _ = writeln!(s, "| dataset | `{}` ({}) |", d.spec.path.display(), d.spec.format);
    let _ = writeln!(s, "| split | {} |", d.spec.split_name());
    let _ = writeln!(s, "| samples evaluated | {} of {} |", d.evaluated, d.total);
    let _ = writeln!(s, "| left out (dropped classes) | {} |", d.left_out);
    let _ = writeln!(
        s,
        "| items skipped (unreadable, or no face with --faces) | {} |",
        d.skipped.len()
    );
    let _ = writeln!(s, "| test-time augmentation | {} |", tta_text(r.settings.tta));
    let _ = writeln!(s, "| forward time | {:.3} ms/image |\n", r.timing.ms_per_image);
    let notes = r.classes.notes();
    if !notes.is_empty() {
        let _ = writeln!(s, "## Classes\n");
        for n in &notes {
            let _ = writeln!(s, "- {n}");
        }
        if r.predicted_dropped_class > 0 {
            let _ = writeln!(
                s,
                "- {} sample(s) had a dropped class as their most probable output before \
                 renormalisation",
                r.predicted_dropped_class
            );
        }
        s.push('\n');
    }
    let t = fmt_t(m.temperature);
    let _ = writeln!(s, "## Metrics\n");
    let t1 = if r.metrics_t1.is_some() { " T = 1 |" } else { "" };
    let _ = writeln!(s, "| metric | T = {t} | 95% CI |{t1}");
    let _ = writeln!(s, "|---|---:|---|{}", if t1.is_empty() { "" } else { "---:|" });
    for (name, v, ci, v1) in rows(r) {
        let ci = ci.map_or(String::new(), |c| format!("[{:.4}, {:.4}]", c[0], c[1]));
        let v1 = v1.map_or(String::new(), |v| format!(" {v:.4} |"));
        let _ = writeln!(s, "| {name} | {v:.4} | {ci} |{v1}");
    }
    let _ = writeln!(s, "\n{}.", floor_line(m));
    let ci_note = match &m.ci {
        Some(c) => format!(
            "95% intervals: percentile bootstrap, {} resamples of the samples with replacement, \
             seed {}.",
            c.rounds, c.seed
        ),
        None => "No bootstrap intervals (`--bootstrap 0`).".into(),
    };
    let _ = writeln!(
        s,
        "\nECE: top-label confidence, {} equal-width bins, L1; adaptive ECE: {} equal-mass bins; \
         MCE: largest bin gap; NLL: natural log; Brier: multiclass `mean Σ_k (p_k − y_k)²` on \
         the scale [0, 2]. {ci_note}\n",
        r.settings.ece_bins, r.settings.ece_bins
    );
    let _ = writeln!(
        s,
        "## Per class\n\n| class | precision | recall | F1 | support | predicted | mean confidence \
         when predicted | confidence − precision |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in &m.per_class {
        let gap = if c.predicted == 0 {
            "–".to_string()
        } else {
            format!("{:+.4}", c.confidence - c.precision)
        };
        let _ = writeln!(
            s,
            "| {} | {:.4} | {:.4} | {:.4} | {} | {} | {:.4} | {gap} |",
            c.class, c.precision, c.recall, c.f1, c.support, c.predicted, c.confidence
        );
    }
    let _ = writeln!(
        s,
        "\nPrecision is the accuracy of the predictions of a class; a positive gap means they \
         are over-confident. Gaps of both signs at the same confidence are what one \
         temperature cannot correct."
    );
    let _ = writeln!(s, "\n## Confusion matrix (rows: true, columns: predicted)\n");
    let _ = writeln!(s, "| true \\ predicted | {} |", r.classes.shared.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(r.classes.k()));
    for (name, row) in r.classes.shared.iter().zip(&m.confusion_matrix) {
        let cells: Vec<String> = row.iter().map(u64::to_string).collect();
        let _ = writeln!(s, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(s, "\n## Plots\n\n![reliability diagram]({RELIABILITY_PNG})");
    if r.metrics_t1.is_some() {
        let _ = writeln!(s, "\n![reliability diagram at T = 1]({RELIABILITY_T1_PNG})");
    }
    let _ = writeln!(s, "\n![confusion matrix]({CONFUSION_PNG})");
    if !d.skipped.is_empty() {
        let _ = writeln!(s, "\n## Skipped items\n");
        for it in &d.skipped {
            let _ = writeln!(s, "- `{}`: {}", it.source, it.reason);
        }
    }
    s
}
