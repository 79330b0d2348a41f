//! What inference needs to know about a model: labels, preprocessing, temperature.
//!
//! Our exporter writes [`fer_models_spec::ModelMeta`] into `metadata_props`. Files from
//! elsewhere have none of it; then the user supplies the values ([`MetaOverrides`]), and what
//! the graph's input shape says (channels, square size) fills the rest. The face crop the model
//! was trained on (`fer.crop`) defaults to [`FaceCrop::ABSENT`] when the file does not say.

use std::collections::BTreeMap;

use fer_models_spec::crop::KEY_CROP;
use fer_models_spec::meta::{META_PREFIX, META_SCHEMA_VERSION};
use fer_models_spec::{ArchConfig, ColorMode, FaceCrop, MetaError, Preprocess, ResizeMethod};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::onnx_file::{MAX_INPUT_SIDE, OnnxFile};

/// Values given by the user; each replaces the file's value (or supplies a missing one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaOverrides {
    /// Class names in logit order (`fer.labels`).
    pub labels: Option<Vec<String>>,
    /// Square input side in pixels (`fer.input_size`).
    pub input_size: Option<usize>,
    /// Per-channel mean on the `[0, 1]` scale (`fer.mean`).
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation (`fer.std`).
    pub std: Option<Vec<f32>>,
    /// Colour handling (`fer.color`); default from the input's channel count.
    pub color: Option<ColorMode>,
    /// Resize interpolation (`fer.resize`); default bilinear.
    pub resize: Option<ResizeMethod>,
    /// Softmax temperature (`fer.temperature`); default 1.
    pub temperature: Option<f64>,
    /// The face crop the model was trained on (`fer.crop`); default [`FaceCrop::ABSENT`].
    pub crop: Option<FaceCrop>,
}

/// Labels, preprocessing and temperature of a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct InferMeta {
    /// Class names in logit order.
    pub labels: Vec<String>,
    /// Preprocessing (shared with training through `fer_data::preprocess`).
    pub preprocess: Preprocess,
    /// Softmax temperature: probabilities are `softmax(logits / temperature)`.
    pub temperature: f64,
    /// The architecture, when the file says (`fer.arch_config`).
    pub arch: Option<ArchConfig>,
    /// The face crop the model was trained on (`fer.crop`, else [`FaceCrop::ABSENT`]).
    pub crop: FaceCrop,
    /// Whether `crop` was stated (by the file or an override) rather than defaulted.
    pub crop_stated: bool,
}

impl InferMeta {
    /// Reads the metadata of `file`, applies `ov`, and checks the result against the graph's
    /// declared input and output shapes.
    pub fn resolve(file: &OnnxFile, ov: &MetaOverrides) -> Result<Self> {
        let path = &file.path;
        let p = &file.props;
        let meta_err = |key: &str, msg: String, hint: &str| Error::Meta {
            path: path.clone(),
            source: MetaError { key: format!("{META_PREFIX}{key}"), msg },
            hint: hint.into(),
        };
        let missing = |key: &str, flag: &str| {
            let why = if file.has_fer_metadata() {
                format!("pass {flag} to supply it")
            } else {
                format!("the file has no FER metadata; pass {flag} to supply it")
            };
            meta_err(key, "missing".into(), &why)
        };
        if let Some(v) = prop::<u32>(file, p, "schema_version", false)?
            && v > META_SCHEMA_VERSION
        {
            let msg = format!("{v} is newer than this toolkit's {META_SCHEMA_VERSION}");
            return Err(meta_err("schema_version", msg, "upgrade fer-infer"));
        }
        let shape_channels = file.input.fixed(1);
        let labels = match &ov.labels {
            Some(l) => l.clone(),
            None => prop(file, p, "labels", false)?.ok_or_else(|| missing("labels", "--labels"))?,
        };
        let square = match (file.input.fixed(2), file.input.fixed(3)) {
            (Some(h), Some(w)) if h == w => Some(h),
            _ => None,
        };
        let input_size = match ov.input_size {
            Some(s) => s,
            None => prop(file, p, "input_size", false)?
                .or(square)
                .ok_or_else(|| missing("input_size", "--input-size"))?,
        };
        let color = match ov.color {
            Some(c) => c,
            None => match prop(file, p, "color", true)? {
                Some(c) => c,
                None => match shape_channels {
                    Some(1) => ColorMode::Gray,
                    Some(3) => ColorMode::Rgb,
                    _ => return Err(missing("color", "--color gray|rgb")),
                },
            },
        };
        let resize = match ov.resize {
            Some(r) => r,
            None => prop(file, p, "resize", true)?.unwrap_or(ResizeMethod::Bilinear),
        };
        let mean = match &ov.mean {
            Some(m) => m.clone(),
            None => prop(file, p, "mean", false)?.ok_or_else(|| missing("mean", "--mean"))?,
        };
        let std = match &ov.std {
            Some(s) => s.clone(),
            None => prop(file, p, "std", false)?.ok_or_else(|| missing("std", "--std"))?,
        };
        let temperature = match ov.temperature {
            Some(t) => t,
            None => prop(file, p, "temperature", false)?.unwrap_or(1.0),
        };
        let arch = prop(file, p, "arch_config", false)?;
        let file_crop = match p.get(KEY_CROP) {
            Some(raw) => Some(FaceCrop::from_prop(raw).map_err(|source| Error::Meta {
                path: path.clone(),
                source,
                hint: "pass --crop to override it".into(),
            })?),
            None => None,
        };
        let stated = ov.crop.or(file_crop);
        let (crop, crop_stated) = (stated.unwrap_or(FaceCrop::ABSENT), stated.is_some());
        let preprocess = Preprocess { input_size, color, resize, mean, std };
        let meta = InferMeta { labels, preprocess, temperature, arch, crop, crop_stated };
        meta.check(file, ov)?;
        Ok(meta)
    }

    /// Consistency of the values with each other and with the graph.
    /// A bad value is an error of the flag that gave it, or else of the metadata key (with a
    /// hint naming the flag that overrides it): both are usage errors, like a missing key.
    fn check(&self, file: &OnnxFile, ov: &MetaOverrides) -> Result<()> {
        let bad = |key: &str, msg: String, flag: &str| {
            let given = match key {
                "color" => ov.color.is_some(),
                "mean" => ov.mean.is_some(),
                "std" => ov.std.is_some(),
                "temperature" => ov.temperature.is_some(),
                "labels" => ov.labels.is_some(),
                _ => ov.input_size.is_some(),
            };
            if given {
                Error::invalid(flag.split(' ').next().unwrap_or(flag), msg)
            } else {
                Error::Meta {
                    path: file.path.clone(),
                    source: MetaError { key: format!("{META_PREFIX}{key}"), msg },
                    hint: format!("pass {flag} to override it"),
                }
            }
        };
        let c = self.preprocess.channels();
        if let Some(ch) = file.input.fixed(1)
            && ch != c
        {
            return Err(bad(
                "color",
                format!(
                    "{:?} colour makes {c} channel(s) but input `{}` {} takes {ch}",
                    self.preprocess.color,
                    file.input.name,
                    file.input.shape_text()
                ),
                "--color gray|rgb",
            ));
        }
        for (key, v) in [("mean", &self.preprocess.mean), ("std", &self.preprocess.std)] {
            if v.len() != c {
                let msg = format!(
                    "{} value(s), but {c} input channel(s) ({:?} colour) need {c}",
                    v.len(),
                    self.preprocess.color
                );
                return Err(bad(key, msg, &format!("--{key}")));
            }
        }
        if self
            .preprocess
            .std
            .iter()
            .any(|s| s.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
        {
            let msg = format!("{:?} must be positive", self.preprocess.std);
            return Err(bad("std", msg, "--std"));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            let msg = format!("{} must be positive and finite", self.temperature);
            return Err(bad("temperature", msg, "--temperature"));
        }
        if self.labels.is_empty() {
            return Err(bad("labels", "the label list is empty".into(), "--labels"));
        }
        let size = self.preprocess.input_size;
        if size == 0 || size > MAX_INPUT_SIDE {
            let msg = format!("{size} is outside 1..={MAX_INPUT_SIDE} pixels");
            return Err(bad("input_size", msg, "--input-size"));
        }
        for axis in [2, 3] {
            if let Some(n) = file.input.fixed(axis)
                && n != size
            {
                let msg = format!(
                    "{size}, but input `{}` {} does not take {size}×{size} images",
                    file.input.name,
                    file.input.shape_text()
                );
                return Err(bad("input_size", msg, "--input-size"));
            }
        }
        let logits = file.logits();
        if let Some(n) = logits.fixed(1)
            && n != self.labels.len()
        {
            let msg = format!(
                "{} labels, but output `{}` {} has {n} classes",
                self.labels.len(),
                logits.name,
                logits.shape_text()
            );
            return Err(bad("labels", msg, "--labels"));
        }
        Ok(())
    }
}

/// Parses `fer.{key}` when present; `quote` wraps plain strings (colour, resize) for JSON.
fn prop<T: DeserializeOwned>(
    file: &OnnxFile,
    p: &BTreeMap<String, String>,
    key: &str,
    quote: bool,
) -> Result<Option<T>> {
    let full = format!("{META_PREFIX}{key}");
    let Some(raw) = p.get(&full) else { return Ok(None) };
    let text = if quote { format!("\"{raw}\"") } else { raw.clone() };
    let flag = match key {
        "labels" | "mean" | "std" | "color" | "resize" | "temperature" => format!("--{key}"),
        "input_size" => "--input-size".to_string(),
        _ => String::new(),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| Error::Meta {
        path: file.path.clone(),
        source: MetaError { key: full, msg: format!("{raw:?} does not parse ({e})") },
        hint: if flag.is_empty() { flag } else { format!("pass {flag} to override it") },
    })
}
