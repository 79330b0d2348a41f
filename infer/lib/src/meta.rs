//! What inference needs to know about a model: labels, preprocessing, temperature.
//!
//! Our exporter writes [`fer_models_spec::ModelMeta`] into `metadata_props`. Files from
//! elsewhere have none of it; then the user supplies the values ([`MetaOverrides`]), and what
//! the graph's input shape says (channels, square size) fills the rest. The face crop the model
//! was trained on (`fer.crop`) defaults to [`FaceCrop::ABSENT`] when the file does not say.

use fer_models_spec::meta::{META_PREFIX, keys};
use fer_models_spec::{
    ArchConfig, ColorMode, FaceCrop, MetaError, MetaErrors, MetaProps, Preprocess, ResizeMethod,
};

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

/// The flag that supplies or overrides a metadata key, if any.
fn flag_of(key: &str) -> Option<&'static str> {
    Some(match key {
        keys::LABELS => "--labels",
        keys::INPUT_SIZE => "--input-size",
        keys::COLOR => "--color",
        keys::RESIZE => "--resize",
        keys::MEAN => "--mean",
        keys::STD => "--std",
        keys::TEMPERATURE => "--temperature",
        keys::CROP => "--crop",
        _ => return None,
    })
}

/// Whether `ov` gives the value of `key` (so the file's value, bad or not, is not used).
fn overridden(key: &str, ov: &MetaOverrides) -> bool {
    match key {
        keys::LABELS => ov.labels.is_some(),
        keys::INPUT_SIZE => ov.input_size.is_some(),
        keys::COLOR => ov.color.is_some(),
        keys::RESIZE => ov.resize.is_some(),
        keys::MEAN => ov.mean.is_some(),
        keys::STD => ov.std.is_some(),
        keys::TEMPERATURE => ov.temperature.is_some(),
        keys::CROP => ov.crop.is_some(),
        _ => false,
    }
}

impl InferMeta {
    /// Reads the metadata of `file` with the one codec ([`MetaProps`]), applies `ov`, and
    /// checks the result against the graph's declared input and output shapes. Every value
    /// that does not parse, and then every key that is missing (and not given by a flag or
    /// the graph), is named in one error.
    pub fn resolve(file: &OnnxFile, ov: &MetaOverrides) -> Result<Self> {
        let path = &file.path;
        let (fm, mut errors) = MetaProps::decode_all(&file.props);
        errors.retain(|e| !overridden(&e.key, ov));
        if !errors.is_empty() {
            let mut hints = Vec::new();
            if errors.iter().any(|e| e.key == keys::SCHEMA_VERSION) {
                hints.push("upgrade fer-infer".to_string());
            }
            let flags: Vec<&str> = errors.iter().filter_map(|e| flag_of(&e.key)).collect();
            if !flags.is_empty() {
                let it = if flags.len() == 1 { "it" } else { "them" };
                hints.push(format!("pass {} to override {it}", flags.join(", ")));
            }
            let source = MetaErrors(errors);
            return Err(Error::Meta { path: path.clone(), source, hint: hints.join("; ") });
        }
        let shape_channels = file.input.fixed(1);
        let square = match (file.input.fixed(2), file.input.fixed(3)) {
            (Some(h), Some(w)) if h == w => Some(h),
            _ => None,
        };
        let labels = ov.labels.clone().or(fm.labels);
        let input_size = ov.input_size.or(fm.input_size).or(square);
        let from_shape = match shape_channels {
            Some(1) => Some(ColorMode::Gray),
            Some(3) => Some(ColorMode::Rgb),
            _ => None,
        };
        let color = ov.color.or(fm.color).or(from_shape);
        let mean = ov.mean.clone().or(fm.mean);
        let std = ov.std.clone().or(fm.std);
        let missing: Vec<&str> = [
            (keys::LABELS, labels.is_none()),
            (keys::INPUT_SIZE, input_size.is_none()),
            (keys::COLOR, color.is_none()),
            (keys::MEAN, mean.is_none()),
            (keys::STD, std.is_none()),
        ]
        .into_iter()
        .filter_map(|(k, absent)| absent.then_some(k))
        .collect();
        let (Some(labels), Some(input_size), Some(color), Some(mean), Some(std)) =
            (labels, input_size, color, mean, std)
        else {
            let flags: Vec<&str> =
                missing
                    .iter()
                    .map(|k| {
                        if *k == keys::COLOR { "--color gray|rgb" } else { flag_of(k).unwrap_or(k) }
                    })
                    .collect();
            let it = if flags.len() == 1 { "it" } else { "them" };
            let pass = format!("pass {} to supply {it}", flags.join(", "));
            let hint = if file.has_fer_metadata() {
                pass
            } else {
                format!("the file has no FER metadata; {pass}")
            };
            let source = MetaErrors::missing(missing);
            return Err(Error::Meta { path: path.clone(), source, hint });
        };
        let resize = ov.resize.or(fm.resize).unwrap_or(ResizeMethod::Bilinear);
        let temperature = ov.temperature.or(fm.temperature).unwrap_or(1.0);
        let stated = ov.crop.or(fm.crop);
        let (crop, crop_stated) = (stated.unwrap_or(FaceCrop::ABSENT), stated.is_some());
        let preprocess = Preprocess { input_size, color, resize, mean, std };
        let meta = InferMeta { labels, preprocess, temperature, arch: fm.arch, crop, crop_stated };
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
                    source: MetaError { key: format!("{META_PREFIX}{key}"), msg }.into(),
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

#[cfg(test)]
mod tests {
    use prost::Message;
    use tract_onnx::pb;

    use super::*;

    /// A graph with one input of unknown shape and one output, and `props` as metadata.
    fn file(props: &[(&str, &str)]) -> OnnxFile {
        let value = |name: &str| pb::ValueInfoProto { name: name.into(), ..Default::default() };
        let graph = pb::GraphProto {
            input: vec![value("input")],
            output: vec![value("logits")],
            ..Default::default()
        };
        let metadata_props = props
            .iter()
            .map(|(k, v)| pb::StringStringEntryProto { key: (*k).into(), value: (*v).into() })
            .collect();
        let m = pb::ModelProto { graph: Some(graph), metadata_props, ..Default::default() };
        OnnxFile::from_bytes("m.onnx", m.encode_to_vec()).unwrap()
    }

    #[test]
    fn every_missing_key_is_named_in_one_error_with_every_flag() {
        let e = InferMeta::resolve(&file(&[]), &MetaOverrides::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.onnx: model metadata `fer.labels`: missing; `fer.input_size`: missing; \
             `fer.color`: missing; `fer.mean`: missing; `fer.std`: missing (the file has no FER \
             metadata; pass --labels, --input-size, --color gray|rgb, --mean, --std to supply \
             them)"
        );
        let ov = MetaOverrides { labels: Some(vec!["a".into()]), ..MetaOverrides::default() };
        let e = InferMeta::resolve(&file(&[("fer.input_size", "48")]), &ov).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.onnx: model metadata `fer.color`: missing; `fer.mean`: missing; `fer.std`: \
             missing (pass --color gray|rgb, --mean, --std to supply them)"
        );
    }

    #[test]
    fn every_bad_value_is_named_in_one_error_unless_a_flag_replaces_it() {
        let bad = [("fer.labels", "[a"), ("fer.temperature", "hot"), ("fer.schema_version", "9")];
        let e = InferMeta::resolve(&file(&bad), &MetaOverrides::default()).unwrap_err();
        let text = e.to_string();
        for key in ["`fer.labels`", "`fer.temperature`", "`fer.schema_version`: 9 is newer"] {
            assert!(text.contains(key), "{key}: {text}");
        }
        assert!(text.contains("upgrade fer-infer; pass --labels, --temperature to override them"));
        let ov = MetaOverrides { temperature: Some(2.0), ..MetaOverrides::default() };
        let e = InferMeta::resolve(&file(&bad[..2]), &ov).unwrap_err().to_string();
        assert!(e.contains("`fer.labels`") && !e.contains("fer.temperature"), "{e}");
    }
}
