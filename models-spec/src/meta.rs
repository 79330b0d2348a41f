//! What a deployed model must say about itself: class labels, preprocessing, temperature.
//!
//! [`ModelMeta`] travels in our checkpoints and, as string key/value pairs
//! ([`ModelMeta::to_props`]), in the ONNX file's `metadata_props`. `docs/onnx-metadata.md`
//! documents the keys for users of other languages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arch::ArchConfig;

/// How pixels become the model's input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorMode {
    /// One gray channel (ITU-R 601 luma of colour images): 1-channel models.
    Gray,
    /// Gray images replicated to three channels; colour images kept as RGB.
    Rgb,
    /// Three channels that all hold the gray (ITU-R 601 luma) image, colour images included:
    /// 3-channel models trained on gray datasets such as FER-2013, which never saw colour.
    GrayRgb,
}

/// Interpolation used to resize to the input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMethod {
    /// Bilinear, half-pixel centres; when shrinking, the kernel widens with the scale (PIL's
    /// antialiased bilinear, as torchvision's `Resize` on PIL images).
    Bilinear,
    /// Nearest neighbour.
    Nearest,
}

/// Preprocessing parameters: decode → colour → resize (square, whole image) → `/255` →
/// `(x - mean) / std` per channel → `[C, H, W]` float32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Square side in pixels.
    pub input_size: usize,
    /// Colour handling; `Gray` for 1 input channel, `Rgb` for 3.
    pub color: ColorMode,
    /// Resize interpolation.
    pub resize: ResizeMethod,
    /// Per-channel mean on the `[0, 1]` scale (one value per input channel).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation on the `[0, 1]` scale.
    pub std: Vec<f32>,
}

/// ImageNet mean, as torchvision's pretrained models expect.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Preprocess {
    /// ImageNet normalisation at `input_size` for `channels` (1: gray, mean of the three).
    pub fn imagenet(input_size: usize, channels: usize) -> Self {
        let (color, mean, std) = if channels == 1 {
            (ColorMode::Gray, vec![0.449], vec![0.226])
        } else {
            (ColorMode::Rgb, IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec())
        };
        Preprocess { input_size, color, resize: ResizeMethod::Bilinear, mean, std }
    }

    /// Number of channels produced.
    pub fn channels(&self) -> usize {
        match self.color {
            ColorMode::Gray => 1,
            ColorMode::Rgb | ColorMode::GrayRgb => 3,
        }
    }
}

/// Everything inference needs beyond the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// The architecture and its options.
    pub arch: ArchConfig,
    /// Class names in logit order.
    pub labels: Vec<String>,
    /// Preprocessing.
    pub preprocess: Preprocess,
    /// Softmax temperature (1.0 until calibrated): probabilities are `softmax(logits / T)`.
    pub temperature: f64,
}

/// Prefix of every metadata key we write.
pub const META_PREFIX: &str = "fer.";
/// Version of the metadata schema.
pub const META_SCHEMA_VERSION: u32 = 1;

/// A metadata key that is missing or does not parse.
#[derive(Debug, thiserror::Error)]
#[error("model metadata `{key}`: {msg}")]
pub struct MetaError {
    /// The key, for example `fer.labels`.
    pub key: String,
    /// What is wrong.
    pub msg: String,
}

impl ModelMeta {
    /// Key/value pairs for ONNX `metadata_props` (values are plain strings or JSON).
    pub fn to_props(&self) -> BTreeMap<String, String> {
        let json = |v: &dyn erased::Json| v.json();
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(format!("{META_PREFIX}{k}"), v);
        };
        put("schema_version", META_SCHEMA_VERSION.to_string());
        put("arch", self.arch.arch.id().to_string());
        put("arch_config", json(&self.arch));
        put("labels", json(&self.labels));
        put("num_classes", self.labels.len().to_string());
        put("input_size", self.preprocess.input_size.to_string());
        put("in_channels", self.preprocess.channels().to_string());
        put("color", json(&self.preprocess.color).trim_matches('"').to_string());
        put("resize", json(&self.preprocess.resize).trim_matches('"').to_string());
        put("mean", json(&self.preprocess.mean));
        put("std", json(&self.preprocess.std));
        put("temperature", format!("{}", self.temperature));
        m
    }

    /// Reads the pairs written by [`ModelMeta::to_props`].
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<Self, MetaError> {
        fn get<'a>(p: &'a BTreeMap<String, String>, k: &str) -> Result<&'a str, MetaError> {
            p.get(&format!("{META_PREFIX}{k}")).map(String::as_str).ok_or_else(|| MetaError {
                key: format!("{META_PREFIX}{k}"),
                msg: "missing".into(),
            })
        }
        fn parse<T: serde::de::DeserializeOwned>(
            p: &BTreeMap<String, String>,
            k: &str,
            quote: bool,
        ) -> Result<T, MetaError> {
            let raw = get(p, k)?;
            let text = if quote { format!("\"{raw}\"") } else { raw.to_string() };
            serde_json::from_str(&text).map_err(|e| MetaError {
                key: format!("{META_PREFIX}{k}"),
                msg: format!("{e}: {raw:?}"),
            })
        }
        let version: u32 = parse(props, "schema_version", false)?;
        if version > META_SCHEMA_VERSION {
            return Err(MetaError {
                key: format!("{META_PREFIX}schema_version"),
                msg: format!("{version} is newer than this toolkit's {META_SCHEMA_VERSION}"),
            });
        }
        let meta = ModelMeta {
            arch: parse(props, "arch_config", false)?,
            labels: parse(props, "labels", false)?,
            preprocess: Preprocess {
                input_size: parse(props, "input_size", false)?,
                color: parse(props, "color", true)?,
                resize: parse(props, "resize", true)?,
                mean: parse(props, "mean", false)?,
                std: parse(props, "std", false)?,
            },
            temperature: parse(props, "temperature", false)?,
        };
        let bad = |key: &str, msg: String| MetaError { key: format!("{META_PREFIX}{key}"), msg };
        if meta.preprocess.mean.len() != meta.preprocess.channels()
            || meta.preprocess.std.len() != meta.preprocess.channels()
        {
            return Err(bad("mean", "one mean and one std per input channel expected".into()));
        }
        if meta.temperature.is_nan() || meta.temperature <= 0.0 {
            return Err(bad("temperature", format!("{} is not positive", meta.temperature)));
        }
        Ok(meta)
    }
}

mod erased {
    /// Object-safe JSON serialisation for the metadata writer.
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    #[test]
    fn metadata_round_trips_through_props() {
        let meta = ModelMeta {
            arch: ArchConfig::new(Arch::MobilenetV3Small, 2).with_input_size(112),
            labels: vec!["happiness".into(), "sadness".into()],
            preprocess: Preprocess::imagenet(112, 3),
            temperature: 1.5,
        };
        let props = meta.to_props();
        assert_eq!(props["fer.color"], "rgb");
        assert_eq!(props["fer.labels"], r#"["happiness","sadness"]"#);
        assert_eq!(ModelMeta::from_props(&props).unwrap(), meta);
        let mut broken = props.clone();
        broken.remove("fer.labels");
        let e = ModelMeta::from_props(&broken).unwrap_err();
        assert_eq!(e.to_string(), "model metadata `fer.labels`: missing");
    }
}
