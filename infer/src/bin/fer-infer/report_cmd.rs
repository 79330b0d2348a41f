//! `fer-infer report`: one table across experiments, datasets and seeds.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use fer_infer::report;

/// Arguments of `report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Eval output folders (with metrics.json), trainer run folders (metrics.jsonl and
    /// config.resolved.toml), or folders above them (searched 4 levels deep).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Folder for report.md, report.csv, report.png and curves/<run>.png.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Also compare every row with this experiment's row of the same dataset and runtime
    /// (e.g. the exp3 baseline, to show what distillation added).
    #[arg(long, value_name = "EXPERIMENT")]
    baseline: Option<String>,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    fer_metrics::plot::ensure_font().context("the plots need a font")?;
    let entries = report::collect(&a.dirs)?;
    let rows = report::group(&entries);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut md = report::markdown(&rows);
    if let Some(b) = &a.baseline {
        md = format!("{md}\n{}", report::gains_markdown(&report::gains(&rows, b)?, b));
    }
    let write = |name: &str, text: &str| {
        let p = a.out.join(name);
        fer_checkpoint::write_atomic(&p, text.as_bytes())
            .with_context(|| format!("writing {}", p.display()))
    };
    let sources: Vec<String> =
        entries.iter().map(|e| format!("- `{}`", e.source.display())).collect();
    write(
        "report.md",
        &format!(
            "# Results\n\nmean ± sample std over the entries of each row (seeds, folds; one row \
             per runtime, never averaged across runtimes); eval folders report test metrics and \
             their runtime's ms/image, trainer runs the best validation epoch.\n\n{md}\n\
             ![accuracy, macro-F1, ECE](report.png)\n\n## Sources\n\n{}\n",
            sources.join("\n")
        ),
    )?;
    write("report.csv", &report::csv(&rows))?;
    let png = a.out.join("report.png");
    fer_metrics::plot::bar_chart(
        &["accuracy", "macro_f1", "ece"],
        &report::bar_groups(&rows),
        "accuracy, macro-F1, ECE (mean ± std over seeds)",
        &png,
    )?;
    let runs: Vec<_> = entries.iter().filter(|e| !e.curves.is_empty()).collect();
    if !runs.is_empty() {
        let dir = a.out.join("curves");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, e) in runs.iter().enumerate() {
            let name = e.source.file_name().map(|s| s.to_string_lossy().into_owned());
            let file = dir.join(format!("{}_{i}.png", name.unwrap_or_default()));
            let title = format!("{} on {} (seed {})", e.experiment, e.dataset, e.seed.unwrap_or(0));
            fer_metrics::plot::training_curves(&e.curves, &title, &file)?;
        }
    }
    out!("{md}");
    outln!(
        "\n{} entries in {} rows; wrote report.md, report.csv, report.png{} into {}",
        entries.len(),
        rows.len(),
        if runs.is_empty() { "" } else { " and curves/" },
        a.out.display()
    );
    Ok(())
}
