//! The drawing surface shared by every plot: font loading, an RGB buffer, PNG output, and a
//! few colours and text styles.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{FONT_CANDIDATES, FONT_ENV, PlotError};

/// The family name the font is registered under.
pub(crate) const FAMILY: &str = "sans-serif";

/// Our drawing area.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// What a drawing closure returns.
pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

static FONT: OnceLock<Result<(), String>> = OnceLock::new();

pub(crate) fn ensure_font() -> Result<(), PlotError> {
    FONT.get_or_init(load_font).clone().map_err(|msg| PlotError::Font { msg })
}

fn load_font() -> Result<(), String> {
    let env = std::env::var_os(FONT_ENV).map(std::path::PathBuf::from);
    let candidates: Vec<std::path::PathBuf> = match &env {
        Some(p) => vec![p.clone()],
        None => FONT_CANDIDATES.iter().map(Into::into).collect(),
    };
    let mut tried = Vec::new();
    for path in &candidates {
        match std::fs::read(path) {
            Ok(bytes) => {
                // plotters keeps fonts for the life of the process; one leaked copy per process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
                    .map_err(|_| format!("{}: not a TrueType/OpenType font", path.display()));
            }
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    let fix = if env.is_some() {
        format!("point {FONT_ENV} at a .ttf file")
    } else {
        format!(
            "install Debian's fonts-dejavu-core (scripts/setup.sh does) or set {FONT_ENV} to a \
             .ttf file"
        )
    };
    Err(format!("tried {} ({fix})", tried.join("; ")))
}

/// Draws into a `width × height` white canvas with `draw` and writes it to `path` as PNG.
pub(crate) fn render(
    plot: &'static str,
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<(), PlotError> {
    ensure_font()?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&root).map_err(|e| PlotError::Draw { plot, msg: e.to_string() })?;
        root.present().map_err(|e| PlotError::Draw { plot, msg: e.to_string() })?;
    }
    let img = image::RgbImage::from_raw(width, height, buf).ok_or_else(|| PlotError::Draw {
        plot,
        msg: "buffer size does not match the image size".into(),
    })?;
    // Encoded in memory, then written atomically: a full disk leaves the old file or none,
    // never a truncated PNG.
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|source| PlotError::Encode { path: path.to_path_buf(), source })?;
    fer_checkpoint::write_atomic(path, &png)
        .map_err(|source| PlotError::Write { path: path.to_path_buf(), source })
}

/// A text style of `size` pixels in `color`.
pub(crate) fn text(size: f64, color: RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: (FAMILY, size).into_font(),
        color: color.to_backend_color(),
        pos: Default::default(),
    }
}

/// Dark grey for text and axes.
pub(crate) const INK: RGBColor = RGBColor(40, 40, 40);
/// Accuracy bars.
pub(crate) const BLUE: RGBColor = RGBColor(31, 119, 180);
/// Over-confidence (gap) and the second series.
pub(crate) const RED: RGBColor = RGBColor(214, 39, 40);
/// Third series.
pub(crate) const GREEN: RGBColor = RGBColor(44, 160, 44);
/// Fourth series.
pub(crate) const ORANGE: RGBColor = RGBColor(255, 127, 14);

/// Series colours in order.
pub(crate) const PALETTE: [RGBColor; 6] =
    [BLUE, ORANGE, GREEN, RED, RGBColor(148, 103, 189), RGBColor(140, 86, 75)];

/// Checks that every value is finite.
pub(crate) fn finite(plot: &'static str, what: &str, v: &[f64]) -> Result<(), PlotError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(PlotError::Input { plot, msg: format!("{what}[{i}] is {}", v[i]) }),
        None => Ok(()),
    }
}
