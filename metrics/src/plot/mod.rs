//! PNG plots a person reads at a glance: the reliability diagram with its confidence
//! histogram, the confusion-matrix heatmap, training curves and bar charts with error bars.
//!
//! Plots are drawn with `plotters` into an RGB buffer and written with `image`. Text needs a
//! TrueType font, loaded once at run time: the file named by `FER_FONT`, else DejaVu Sans
//! from Debian's `fonts-dejavu-core` (installed by `scripts/setup.sh`). A missing font is an
//! [`PlotError::Font`] naming the paths tried, never a plot without text.

pub mod bars;
mod canvas;
pub mod confusion;
pub mod curves;
pub mod reliability;

use std::path::PathBuf;

pub use bars::{BarGroup, bar_chart};
pub use confusion::confusion_heatmap;
pub use curves::{CurveRow, training_curves};
pub use reliability::reliability_diagram;

/// Environment variable naming a `.ttf` file to draw text with instead of DejaVu Sans.
pub const FONT_ENV: &str = "FER_FONT";

/// Where DejaVu Sans is looked for when `FER_FONT` is not set.
pub const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Everything drawing a plot can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No usable font: the message lists the paths tried and how to fix it.
    #[error("no font to draw plot text: {msg}")]
    Font {
        /// Paths tried and the fix.
        msg: String,
    },
    /// The data cannot be plotted (empty, mismatched lengths, non-finite values).
    #[error("{plot}: {msg}")]
    Input {
        /// Which plot.
        plot: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// A drawing call failed (plotters' error, as text: its type borrows the canvas).
    #[error("{plot}: drawing failed: {msg}")]
    Draw {
        /// Which plot.
        plot: &'static str,
        /// plotters' message.
        msg: String,
    },
    /// The PNG cannot be encoded.
    #[error("{}: cannot encode PNG: {source}", path.display())]
    Encode {
        /// The output file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The PNG cannot be written (full disk, not a regular file, …).
    #[error("cannot write the plot: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The file system's error; it names the file.
        #[source]
        source: fer_checkpoint::WriteError,
    },
}

/// Loads the plot font now (it is otherwise loaded by the first plot), so a missing font is
/// reported before a long evaluation instead of after it.
pub fn ensure_font() -> Result<(), PlotError> {
    canvas::ensure_font()
}
