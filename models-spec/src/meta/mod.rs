//! What a deployed model must say about itself: class labels, preprocessing, temperature.
//!
//! [`ModelMeta`] travels in our checkpoints and, as string key/value pairs, in the ONNX file's
//! `metadata_props`; [`props`] is the one codec of those pairs (written by `fer-export` and
//! `fer-infer calibrate`, read by `fer-infer`). `docs/onnx-metadata.md`
//! documents the keys for users of other languages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arch::ArchConfig;

/// How pixels become the model's input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum ColorMode {
    /// One gray channel (ITU-R 601 luma of colour images): 1-channel models.
    Gray,
    /// Gray images replicated to three channels; colour images kept as RGB.
    Rgb,
    /// Three channels that all hold the gray (ITU-R 601 luma) image, colour images included:
    /// 3-channel models trained on gray datasets such as FER-2013, which never saw colour.
    #[cfg_attr(feature = "clap", value(name = "gray_rgb", alias = "gray-rgb"))]
    GrayRgb,
}

/// Interpolation used to resize to the input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

pub mod props;

pub use props::{META_PREFIX, META_SCHEMA_VERSION, MetaErrors, MetaProps, keys, temperature_prop};

/// A metadata key that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("model metadata `{key}`: {msg}")]
pub struct MetaError {
    /// The key, for example `fer.labels`.
    pub key: String,
    /// What is wrong.
    pub msg: String,
}

impl ModelMeta {
    /// Key/value pairs for ONNX `metadata_props` ([`MetaProps::encode`]).
    pub fn to_props(&self) -> BTreeMap<String, String> {
        MetaProps::encode(self)
    }

    /// Reads the pairs written by [`ModelMeta::to_props`]; every missing or unparsable key is
    /// named in the one error.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<Self, MetaErrors> {
        MetaProps::decode_required(props)
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

    #[test]
    fn every_missing_or_bad_key_is_listed_in_one_error() {
        let meta = ModelMeta {
            arch: ArchConfig::new(Arch::Resnet18, 7),
            labels: (0..7).map(|i| format!("c{i}")).collect(),
            preprocess: Preprocess::imagenet(48, 1),
            temperature: 1.0,
        };
        let mut props = meta.to_props();
        for k in ["fer.labels", "fer.mean", "fer.std"] {
            props.remove(k);
        }
        props.insert("fer.temperature".into(), "warm".into());
        let e = ModelMeta::from_props(&props).unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["fer.temperature", "fer.labels", "fer.mean", "fer.std"]);
        assert_eq!(
            e.to_string(),
            "model metadata `fer.temperature`: \"warm\" does not parse (expected value at line 1 \
             column 1); `fer.labels`: missing; `fer.mean`: missing; `fer.std`: missing"
        );
    }
}
