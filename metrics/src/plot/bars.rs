//! Horizontal bar charts with error bars: one panel per metric, one bar per group
//! (experiment × dataset), the mean as the bar and ± one standard deviation as the whisker.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PlotError;
use super::canvas::{Area, DrawResult, INK, PALETTE, render, text};

const PLOT: &str = "bar chart";
const PANEL: u32 = 380;

/// One bar per metric: its label and, per metric, `(mean, std)` or `None` when unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    /// The row name, for example `exp3_baseline @ fer2013 (n=3)`.
    pub label: String,
    /// `(mean, standard deviation)` per metric, in the order of the metric names.
    pub values: Vec<Option<(f64, f64)>>,
}

/// A label's lines: the part before ` @ ` (the experiment), then the rest.
fn lines(label: &str) -> (&str, &str) {
    label.split_once(" @ ").unwrap_or((label, ""))
}

/// Width of the names column: fits the longest label line (about 9 px per character at
/// 15 px), between 200 and 560 px.
fn names_width(groups: &[BarGroup]) -> u32 {
    let chars = groups
        .iter()
        .map(|g| {
            let (a, b) = lines(&g.label);
            a.chars().count().max(b.chars().count())
        })
        .max()
        .unwrap_or(0);
    (chars as u32 * 9 + 24).clamp(200, 560)
}

/// The PNG size for `metrics` panels and the bars of `groups`.
pub fn size(metrics: usize, groups: &[BarGroup]) -> (u32, u32) {
    (names_width(groups) + PANEL * metrics as u32 + 20, 130 + 50 * groups.len() as u32)
}

/// Draws one panel per entry of `metrics` (its name on top), each with a bar per group, into
/// a PNG of [`size`] at `path`. Metrics named `…accuracy…` or `…f1…` use the axis `[0, 1]`;
/// others start at 0 and end past the largest mean + std.
pub fn bar_chart(
    metrics: &[&str],
    groups: &[BarGroup],
    title: &str,
    path: &Path,
) -> Result<(), PlotError> {
    if metrics.is_empty() || groups.is_empty() {
        return Err(PlotError::Input { plot: PLOT, msg: "no metrics or no groups".into() });
    }
    if let Some(g) = groups.iter().find(|g| g.values.len() != metrics.len()) {
        return Err(PlotError::Input {
            plot: PLOT,
            msg: format!(
                "`{}` has {} values for {} metrics",
                g.label,
                g.values.len(),
                metrics.len()
            ),
        });
    }
    let vals: Vec<f64> =
        groups.iter().flat_map(|g| g.values.iter().flatten()).flat_map(|v| [v.0, v.1]).collect();
    super::canvas::finite(PLOT, "values", &vals)?;
    let (w, h) = size(metrics.len(), groups);
    let nw = names_width(groups);
    render(PLOT, path, (w, h), |root| {
        let head = Pos::new(HPos::Center, VPos::Top);
        root.draw_text(title, &text(22.0, INK).pos(head), (w as i32 / 2, 10))?;
        let body = root.clone().shrink((0, 44), (w, h - 44));
        let (names, rest) = body.split_horizontally(nw);
        let panels = rest.split_evenly((1, metrics.len()));
        for (m, (area, name)) in panels.iter().zip(metrics).enumerate() {
            panel(area, &names, m == 0, name, groups, m)?;
        }
        Ok(())
    })
}

fn panel(
    area: &Area<'_>,
    names: &Area<'_>,
    label_rows: bool,
    metric: &str,
    groups: &[BarGroup],
    m: usize,
) -> DrawResult {
    let unit = metric.contains("accuracy") || metric.contains("f1");
    let hi = groups
        .iter()
        .filter_map(|g| g.values[m])
        .map(|(mean, sd)| mean + sd)
        .fold(0.0f64, f64::max);
    let x1 = if unit {
        1.0
    } else if hi > 0.0 {
        hi * 1.35
    } else {
        1.0
    };
    let n = groups.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_right(34)
        .margin_top(8)
        .caption(metric, text(19.0, INK))
        .x_label_area_size(40)
        .y_label_area_size(6)
        .build_cartesian_2d(0f64..x1, 0f64..n)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(6)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .label_style(text(14.0, INK))
        .x_label_formatter(&|v| format!("{v:.2}"))
        .draw()?;
    let value_style = text(13.0, INK).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, g) in groups.iter().enumerate() {
        // First group at the top.
        let y = n - i as f64 - 0.5;
        let colour = PALETTE[i % PALETTE.len()];
        if label_rows {
            // Pixel row of the bar, relative to the names column.
            let (_, py) = chart.backend_coord(&(0.0, y));
            let (_, ny) = names.get_base_pixel();
            let (first, second) = lines(&g.label);
            let right = |v| Pos::new(HPos::Right, v);
            let x = names.dim_in_pixel().0 as i32 - 10;
            if second.is_empty() {
                names.draw_text(first, &text(15.0, INK).pos(right(VPos::Center)), (x, py - ny))?;
            } else {
                names.draw_text(first, &text(15.0, INK).pos(right(VPos::Bottom)), (x, py - ny))?;
                let grey = text(13.0, RGBColor(100, 100, 100)).pos(right(VPos::Top));
                names.draw_text(second, &grey, (x, py - ny + 3))?;
            }
        }
        let Some((mean, sd)) = g.values[m] else {
            chart.draw_series(std::iter::once(Text::new(
                "n/a",
                (0.01 * x1, y),
                value_style.clone(),
            )))?;
            continue;
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y - 0.32), (mean, y + 0.32)],
            colour.mix(0.8).filled(),
        )))?;
        if sd > 0.0 {
            let (lo, hi) = ((mean - sd).max(0.0), (mean + sd).min(x1));
            let whisker = INK.stroke_width(2);
            chart.draw_series([
                PathElement::new(vec![(lo, y), (hi, y)], whisker),
                PathElement::new(vec![(lo, y - 0.18), (lo, y + 0.18)], whisker),
                PathElement::new(vec![(hi, y - 0.18), (hi, y + 0.18)], whisker),
            ])?;
        }
        let text_x = (mean + sd).min(x1) + 0.015 * x1;
        let shown = if sd > 0.0 { format!("{mean:.3}±{sd:.3}") } else { format!("{mean:.3}") };
        // Inside the bar when it would run off the panel.
        let (tx, style) = if text_x > 0.72 * x1 {
            (0.015 * x1, text(13.0, WHITE).pos(Pos::new(HPos::Left, VPos::Center)))
        } else {
            (text_x, value_style.clone())
        };
        chart.draw_series(std::iter::once(Text::new(shown, (tx, y), style)))?;
    }
    Ok(())
}
