//! A runnable model: one backend plus the metadata that says how to feed it and read it.

use std::path::{Path, PathBuf};

use image::DynamicImage;
use ndarray::ArrayView4;

use crate::backend::{self, Backend, BackendOptions, Outputs};
use crate::error::{Error, Result};
use crate::meta::{InferMeta, MetaOverrides};
use crate::onnx_file::OnnxFile;
use crate::predict::{self, Prediction};

/// An ONNX classifier loaded in one runtime.
pub struct Model {
    backend: Box<dyn Backend>,
    meta: InferMeta,
    file: OnnxFile,
}

impl Model {
    /// Reads `path`, resolves its metadata (with `overrides`) and builds the backend.
    pub fn open(path: &Path, opts: &BackendOptions, overrides: &MetaOverrides) -> Result<Self> {
        let file = OnnxFile::open(path)?;
        let meta = InferMeta::resolve(&file, overrides)?;
        Self::from_parts(file, meta, opts)
    }

    /// Builds the backend for a file already read and its resolved metadata (to run one file
    /// in several runtimes without reading it again).
    pub fn from_parts(file: OnnxFile, meta: InferMeta, opts: &BackendOptions) -> Result<Self> {
        let backend = backend::open(&file, opts)?;
        Ok(Model { backend, meta, file })
    }

    /// Ties an already built backend to its file and metadata.
    pub fn with_backend(file: OnnxFile, meta: InferMeta, backend: Box<dyn Backend>) -> Self {
        Model { backend, meta, file }
    }

    /// Labels, preprocessing and temperature.
    pub fn meta(&self) -> &InferMeta {
        &self.meta
    }

    /// The file the model was read from.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The runtime's name, for example `ort-cpu` or `tract`.
    pub fn backend_name(&self) -> &str {
        self.backend.name()
    }

    /// The backend itself (for timing it without preprocessing).
    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// Runs an already preprocessed `[N, C, H, W]` batch. Logits that are not finite (NaN or
    /// ±inf, which a foreign or damaged model can produce) are an error naming the first such
    /// image of the batch: no probability is ever made from them.
    pub fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Outputs> {
        let out = self.backend.run(input)?;
        finite(&out, |i| format!("image {} of the batch", i + 1))?;
        Ok(out)
    }

    /// Preprocesses, runs and scores `images` as one batch; `names` (same length or empty)
    /// name the images in errors.
    pub fn predict(
        &mut self,
        images: &[DynamicImage],
        names: &[PathBuf],
        top_k: usize,
    ) -> Result<Vec<Prediction>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let batch = predict::preprocess_batch(images, names, &self.meta.preprocess)?;
        let out = self.backend.run(batch.view())?;
        finite(&out, |i| match names.get(i) {
            Some(p) => p.display().to_string(),
            None => format!("image {} of the batch", i + 1),
        })?;
        Ok(predict::predictions(out.logits.view(), self.meta.temperature, &self.meta.labels, top_k))
    }
}

/// An error naming (through `name`) the first image whose logits are not all finite.
fn finite(out: &Outputs, name: impl Fn(usize) -> String) -> Result<()> {
    let bad = out
        .logits
        .outer_iter()
        .enumerate()
        .find_map(|(i, r)| r.iter().find(|v| !v.is_finite()).map(|v| (i, *v)));
    match bad {
        None => Ok(()),
        Some((i, v)) => Err(Error::Output {
            name: "logits".into(),
            msg: format!(
                "{v} for {}: the model computes non-finite values, so it has no prediction \
                 for this image",
                name(i)
            ),
        }),
    }
}
