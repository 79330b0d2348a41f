//! The student shipped with the toolkit (`models/`, described in `docs/models.md`), built into
//! the binary: what `--model` means when it is left out, so that `predict` and `live` work
//! from anywhere without a download.
//!
//! The runtimes and the metadata reader take a file, so the bytes are written once into the
//! user's cache ([`fer_infer::assets::cached`]) and read from there.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// File name of the built-in model.
pub const NAME: &str = "fer2013_mobilenet_v3_large.onnx";

/// The built-in model's bytes.
const BYTES: &[u8] = include_bytes!("../../../../models/fer2013_mobilenet_v3_large.onnx");

/// The model file to use: `given`, or the built-in model (written to the cache if needed).
pub fn model_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let (path, new) =
        fer_infer::assets::cached_new(NAME, BYTES).context("writing the built-in model")?;
    if new {
        tracing::info!(model = %path.display(), "no --model given: the built-in model {NAME} (docs/models.md)");
    }
    Ok(path)
}
