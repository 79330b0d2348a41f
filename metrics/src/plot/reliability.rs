//! Reliability diagram (Guo et al. 2017, fig. 1): per-bin accuracy bars against the diagonal,
//! the gap to the bin's mean confidence shaded, and below it the confidence histogram with
//! the bin counts.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PlotError;
use super::canvas::{BLUE, DrawResult, INK, RED, render, text};
use crate::Bin;

const PLOT: &str = "reliability diagram";

/// Width and height of the reliability PNG.
pub const SIZE: (u32, u32) = (820, 940);

/// Draws the reliability diagram of `bins` (from [`crate::reliability_bins`]) with `ece` in
/// the title and `subtitle` (for example the model and dataset) under it, and the confidence
/// histogram with bin counts below, into a PNG of [`SIZE`] at `path`.
pub fn reliability_diagram(
    bins: &[Bin],
    ece: f64,
    subtitle: &str,
    path: &Path,
) -> Result<(), PlotError> {
    if bins.is_empty() {
        return Err(PlotError::Input { plot: PLOT, msg: "no bins".into() });
    }
    let vals: Vec<f64> = bins.iter().flat_map(|b| [b.confidence, b.accuracy, b.lower]).collect();
    super::canvas::finite(PLOT, "bin values", &vals)?;
    render(PLOT, path, SIZE, |root| draw(root, bins, ece, subtitle))
}

fn draw(root: &super::canvas::Area<'_>, bins: &[Bin], ece: f64, subtitle: &str) -> DrawResult {
    let n: u64 = bins.iter().map(|b| b.count).sum();
    let (head, body) = root.split_vertically(78);
    let title = format!(
        "Reliability diagram: ECE {:.2}% ({} equal-width bins, top label)",
        ece * 100.0,
        bins.len()
    );
    let centre = Pos::new(HPos::Center, VPos::Top);
    let w = SIZE.0 as i32;
    head.draw_text(&title, &text(24.0, INK).pos(centre), (w / 2, 12))?;
    let sub = format!("{subtitle}  (N = {n})");
    head.draw_text(&sub, &text(17.0, RGBColor(90, 90, 90)).pos(centre), (w / 2, 46))?;
    let (top, bottom) = body.split_vertically(580);

    let mut chart = ChartBuilder::on(&top)
        .margin_left(12)
        .margin_right(24)
        .margin_top(6)
        .x_label_area_size(52)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(11)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc("Confidence (probability of the predicted class)")
        .y_desc("Accuracy")
        .axis_desc_style(text(19.0, INK))
        .label_style(text(16.0, INK))
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    let inset = |b: &Bin| {
        let pad = (b.upper - b.lower) * 0.06;
        (b.lower + pad, b.upper - pad)
    };
    let used: Vec<&Bin> = bins.iter().filter(|b| b.count > 0).collect();
    chart
        .draw_series(used.iter().map(|b| {
            let (l, r) = inset(b);
            Rectangle::new([(l, 0.0), (r, b.accuracy)], BLUE.mix(0.85).filled())
        }))?
        .label("Accuracy of the bin")
        .legend(|(x, y)| Rectangle::new([(x, y - 7), (x + 18, y + 7)], BLUE.mix(0.85).filled()));
    chart
        .draw_series(used.iter().map(|b| {
            let (l, r) = inset(b);
            let (lo, hi) = (b.accuracy.min(b.confidence), b.accuracy.max(b.confidence));
            Rectangle::new([(l, lo), (r, hi)], RED.mix(0.35).filled())
        }))?
        .label("Gap to mean confidence")
        .legend(|(x, y)| Rectangle::new([(x, y - 7), (x + 18, y + 7)], RED.mix(0.35).filled()));
    chart.draw_series(used.iter().map(|b| {
        let (l, r) = inset(b);
        let (lo, hi) = (b.accuracy.min(b.confidence), b.accuracy.max(b.confidence));
        Rectangle::new([(l, lo), (r, hi)], RED.stroke_width(2))
    }))?;
    let diag = ShapeStyle::from(RGBColor(80, 80, 80)).stroke_width(2);
    chart
        .draw_series(std::iter::once(DashedPathElement::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            8,
            6,
            diag,
        )))?
        .label("Perfect calibration")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], diag));
    // The legend goes upper left, where the bars of over-confident models are short, unless
    // a low-confidence bin has a tall bar there (an under-confident model).
    let tall_left = used.iter().any(|b| b.upper <= 0.45 && b.accuracy.max(b.confidence) > 0.55);
    let pos =
        if tall_left { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::UpperLeft };
    chart
        .configure_series_labels()
        .position(pos)
        .margin(12)
        .label_font(text(17.0, INK))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    histogram(&bottom, bins, n)
}

/// Confidence histogram: samples per bin, the count above each bar, and the mean confidence
/// and accuracy as vertical lines.
fn histogram(area: &super::canvas::Area<'_>, bins: &[Bin], n: u64) -> DrawResult {
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .margin_top(14)
        .margin_bottom(6)
        .x_label_area_size(52)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..1f64, 0f64..max * 1.3)?;
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(5)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc("Confidence")
        .y_desc("Samples")
        .axis_desc_style(text(19.0, INK))
        .label_style(text(16.0, INK))
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let grey = RGBColor(120, 120, 120);
    chart.draw_series(bins.iter().filter(|b| b.count > 0).map(|b| {
        let pad = (b.upper - b.lower) * 0.06;
        Rectangle::new([(b.lower + pad, 0.0), (b.upper - pad, b.count as f64)], grey.filled())
    }))?;
    let nf = n.max(1) as f64;
    let mean_conf = bins.iter().map(|b| b.confidence * b.count as f64).sum::<f64>() / nf;
    let acc = bins.iter().map(|b| b.accuracy * b.count as f64).sum::<f64>() / nf;
    let top = max * 1.3;
    for (x, colour, name) in
        [(acc, BLUE, "Accuracy"), (mean_conf, RED, "Mean confidence")].map(|(x, c, s)| (x, c, s))
    {
        let style = ShapeStyle::from(colour).stroke_width(3);
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(x, 0.0), (x, top)],
                10,
                5,
                style,
            )))?
            .label(format!("{name} {x:.3}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    // Counts last, on a white patch, so the mean lines never cross them.
    let label = text(14.0, INK).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(bins.iter().filter(|b| b.count > 0).map(|b| {
        let s = b.count.to_string();
        let half = 4 * s.len() as i32 + 2;
        EmptyElement::at(((b.lower + b.upper) / 2.0, b.count as f64))
            + Rectangle::new([(-half, -19), (half, -2)], WHITE.filled())
            + Text::new(s, (0, -3), label.clone())
    }))?;
    // The legend goes on the side with fewer samples, so it does not hide bars or counts.
    let left: u64 = bins.iter().filter(|b| b.upper <= 0.5).map(|b| b.count).sum();
    let pos =
        if 2 * left > n { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::UpperLeft };
    chart
        .configure_series_labels()
        .position(pos)
        .margin(8)
        .label_font(text(16.0, INK))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}
