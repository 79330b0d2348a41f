//! Confusion-matrix heatmap: rows normalised by the true class, each cell showing the
//! percentage and the count, class names on both axes and a colour bar.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PlotError;
use super::canvas::{Area, DrawResult, INK, render, text};

const PLOT: &str = "confusion matrix";

/// Layout in pixels: label column, title band, bottom band, colour bar.
const LEFT: u32 = 190;
const TOP: u32 = 96;
const BOTTOM: u32 = 110;
const RIGHT: u32 = 120;

/// Side of one cell for `k` classes.
fn cell(k: usize) -> u32 {
    (760 / k.max(1) as u32).clamp(44, 104)
}

/// The PNG size for `k` classes.
pub fn size(k: usize) -> (u32, u32) {
    let c = cell(k) * k as u32;
    (LEFT + c + RIGHT, TOP + c + BOTTOM)
}

/// Draws `matrix[true][predicted]` with `classes` naming rows and columns (same order) into
/// a PNG of [`size`]`(k)` at `path`; colours are row fractions, `subtitle` goes under the
/// title.
pub fn confusion_heatmap(
    matrix: &[Vec<u64>],
    classes: &[String],
    subtitle: &str,
    path: &Path,
) -> Result<(), PlotError> {
    let k = classes.len();
    if k == 0 || matrix.len() != k || matrix.iter().any(|r| r.len() != k) {
        return Err(PlotError::Input {
            plot: PLOT,
            msg: format!("a {k}×{k} matrix is needed for {k} class names"),
        });
    }
    render(PLOT, path, size(k), |root| draw(root, matrix, classes, subtitle))
}

/// The "Blues" sequential colour map at `t` in `[0, 1]`.
fn blues(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (247.0, 251.0, 255.0),
        (198.0, 219.0, 239.0),
        (107.0, 174.0, 214.0),
        (33.0, 113.0, 181.0),
        (8.0, 48.0, 107.0),
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn draw(root: &Area<'_>, m: &[Vec<u64>], classes: &[String], subtitle: &str) -> DrawResult {
    let k = classes.len();
    let c = cell(k) as i32;
    let (w, _) = size(k);
    let (left, top, grid) = (LEFT as i32, TOP as i32, c * k as i32);
    let centre = |v| Pos::new(HPos::Center, v);
    let n: u64 = m.iter().flatten().sum();
    root.draw_text(
        "Confusion matrix (rows: true class, normalised per row)",
        &text(22.0, INK).pos(centre(VPos::Top)),
        (w as i32 / 2, 12),
    )?;
    root.draw_text(
        &format!("{subtitle}  (N = {n})"),
        &text(16.0, RGBColor(90, 90, 90)).pos(centre(VPos::Top)),
        (w as i32 / 2, 44),
    )?;
    let big = (c as f64 * 0.2).clamp(11.0, 19.0);
    for (i, row) in m.iter().enumerate() {
        let support: u64 = row.iter().sum();
        for (j, &count) in row.iter().enumerate() {
            let (x0, y0) = (left + j as i32 * c, top + i as i32 * c);
            let frac = if support > 0 { count as f64 / support as f64 } else { 0.0 };
            let fill = if support > 0 { blues(frac) } else { RGBColor(235, 235, 235) };
            root.draw(&Rectangle::new([(x0, y0), (x0 + c, y0 + c)], fill.filled()))?;
            root.draw(&Rectangle::new([(x0, y0), (x0 + c, y0 + c)], WHITE.stroke_width(1)))?;
            let ink = if frac > 0.5 { WHITE } else { INK };
            let (cx, cy) = (x0 + c / 2, y0 + c / 2);
            if support == 0 {
                root.draw_text("n/a", &text(big * 0.8, INK).pos(centre(VPos::Center)), (cx, cy))?;
                continue;
            }
            let pct = format!("{:.0}%", frac * 100.0);
            root.draw_text(&pct, &text(big, ink).pos(centre(VPos::Bottom)), (cx, cy + 1))?;
            let small = text(big * 0.75, ink).pos(centre(VPos::Top));
            root.draw_text(&format!("({count})"), &small, (cx, cy + 3))?;
        }
    }
    root.draw(&Rectangle::new([(left, top), (left + grid, top + grid)], INK.stroke_width(1)))?;
    let label = (c as f64 * 0.18).clamp(12.0, 17.0);
    let rotate = classes.iter().any(|s| s.chars().count() as f64 * label * 0.62 > c as f64 - 6.0);
    for (i, name) in classes.iter().enumerate() {
        let mid = i as i32 * c + c / 2;
        let row_style = text(label, INK).pos(Pos::new(HPos::Right, VPos::Center));
        root.draw_text(name, &row_style, (left - 8, top + mid))?;
        let col = (left + mid, top + grid + 8);
        if rotate {
            let s = text(label, INK)
                .transform(FontTransform::Rotate90)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw_text(name, &s, col)?;
        } else {
            root.draw_text(name, &text(label, INK).pos(centre(VPos::Top)), col)?;
        }
    }
    let axis = text(18.0, INK);
    let below = if rotate { BOTTOM as i32 - 26 } else { 40 };
    root.draw_text(
        "Predicted class",
        &axis.clone().pos(centre(VPos::Top)),
        (left + grid / 2, top + grid + below),
    )?;
    let side = axis.transform(FontTransform::Rotate270).pos(centre(VPos::Top));
    root.draw_text("True class", &side, (8, top + grid / 2))?;
    colour_bar(root, left + grid + 28, top, grid)
}

/// A vertical gradient from 0% (bottom) to 100% (top) with ticks every 25%.
fn colour_bar(root: &Area<'_>, x: i32, top: i32, height: i32) -> DrawResult {
    let w = 22;
    for y in 0..height {
        let t = 1.0 - y as f64 / (height - 1).max(1) as f64;
        root.draw(&Rectangle::new([(x, top + y), (x + w, top + y + 1)], blues(t).filled()))?;
    }
    root.draw(&Rectangle::new([(x, top), (x + w, top + height)], INK.stroke_width(1)))?;
    let style = text(14.0, INK).pos(Pos::new(HPos::Left, VPos::Center));
    for q in 0..=4 {
        let y = top + height - (height * q) / 4;
        root.draw(&PathElement::new(vec![(x + w, y), (x + w + 5, y)], INK))?;
        root.draw_text(&format!("{}%", q * 25), &style, (x + w + 8, y))?;
    }
    Ok(())
}
