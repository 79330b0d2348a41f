//! Training curves per epoch, like plotted with like: the training loss (the weighted sum of the
//! stage's terms, KD and RKD included), the validation loss (plain cross-entropy) and the
//! accuracy (train and validation), each in its own panel, because the two losses are different
//! quantities on different scales.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use super::PlotError;
use super::canvas::{Area, BLUE, DrawResult, INK, ORANGE, render, text};

const PLOT: &str = "training curves";

/// Width and height of the training-curves PNG.
pub const SIZE: (u32, u32) = (1800, 560);

/// One epoch's values (any may be missing, for example no train accuracy under KD).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    /// The epoch (1-based by convention; fractional values are allowed).
    pub epoch: f64,
    /// Mean training loss (the weighted sum of the stage's loss terms).
    pub train_loss: Option<f64>,
    /// Validation loss (cross-entropy).
    pub val_loss: Option<f64>,
    /// Training accuracy in `[0, 1]`.
    pub train_accuracy: Option<f64>,
    /// Validation accuracy in `[0, 1]`.
    pub val_accuracy: Option<f64>,
}

impl From<&crate::run::EpochRecord> for CurveRow {
    /// The curve values of one `metrics.jsonl` line (all present).
    fn from(r: &crate::run::EpochRecord) -> Self {
        CurveRow {
            epoch: r.epoch as f64,
            train_loss: Some(r.train_loss),
            val_loss: Some(r.val_loss),
            train_accuracy: Some(r.train_accuracy),
            val_accuracy: Some(r.val_accuracy),
        }
    }
}

/// Draws the training loss (left), the validation loss (middle) and the accuracy, train and
/// validation (right), per epoch, into a PNG of [`SIZE`] at `path`; `title` names the run.
/// Missing values leave gaps in their series.
pub fn training_curves(rows: &[CurveRow], title: &str, path: &Path) -> Result<(), PlotError> {
    if rows.is_empty() {
        return Err(PlotError::Input { plot: PLOT, msg: "no epochs to plot".into() });
    }
    let all: Vec<f64> = rows
        .iter()
        .flat_map(|r| [Some(r.epoch), r.train_loss, r.val_loss, r.train_accuracy, r.val_accuracy])
        .flatten()
        .collect();
    super::canvas::finite(PLOT, "values", &all)?;
    render(PLOT, path, SIZE, |root| {
        let (head, body) = root.split_vertically(56);
        let pos = Pos::new(HPos::Center, VPos::Top);
        head.draw_text(title, &text(24.0, INK).pos(pos), (SIZE.0 as i32 / 2, 14))?;
        let panels = body.split_evenly((1, 3));
        let train_loss: Series = ("train", BLUE, |r| r.train_loss);
        let val_loss: Series = ("validation", ORANGE, |r| r.val_loss);
        let train_acc: Series = ("train", BLUE, |r| r.train_accuracy);
        let val_acc: Series = ("validation", ORANGE, |r| r.val_accuracy);
        panel(&panels[0], rows, "Training loss (weighted sum)", &[train_loss], false)?;
        panel(&panels[1], rows, "Validation loss (cross-entropy)", &[val_loss], false)?;
        panel(&panels[2], rows, "Accuracy", &[train_acc, val_acc], true)
    })
}

/// One line of a panel: its legend label, colour and values.
type Series = (&'static str, RGBColor, fn(&CurveRow) -> Option<f64>);

fn panel(
    area: &Area<'_>,
    rows: &[CurveRow],
    name: &str,
    series: &[Series],
    unit_range: bool,
) -> DrawResult {
    let (x0, x1) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| (a.min(r.epoch), b.max(r.epoch)));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let ys: Vec<f64> = rows.iter().flat_map(|r| series.iter().filter_map(|s| (s.2)(r))).collect();
    let (mut y0, mut y1) = if unit_range {
        (0.0, 1.0)
    } else {
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() { (lo.min(0.0), hi * 1.08) } else { (0.0, 1.0) }
    };
    if y1 <= y0 {
        (y0, y1) = (y0 - 0.5, y0 + 0.5);
    }
    let mut chart = ChartBuilder::on(area)
        .margin(18)
        .caption(name, text(20.0, INK))
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let whole = rows.iter().all(|r| r.epoch.fract() == 0.0);
    chart
        .configure_mesh()
        .x_labels(rows.len().clamp(2, 11))
        .y_labels(6)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc("Epoch")
        .y_desc(if unit_range { "Accuracy" } else { "Loss" })
        .axis_desc_style(text(18.0, INK))
        .label_style(text(15.0, INK))
        .x_label_formatter(&|v| if whole { format!("{v:.0}") } else { format!("{v:.1}") })
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()?;
    let mut any = false;
    for &(label, colour, pick) in series {
        let pts: Vec<(f64, f64)> =
            rows.iter().filter_map(|r| pick(r).map(|y| (r.epoch, y))).collect();
        if pts.is_empty() {
            continue;
        }
        any = true;
        let style = ShapeStyle::from(colour).stroke_width(3);
        chart
            .draw_series(LineSeries::new(pts.clone(), style))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, colour.filled())))?;
    }
    if any {
        let position = if unit_range {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        };
        chart
            .configure_series_labels()
            .position(position)
            .margin(10)
            .label_font(text(16.0, INK))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    Ok(())
}
