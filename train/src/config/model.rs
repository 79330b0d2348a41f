//! The `[model]` (the network trained) and `[preprocess]` sections.

use std::path::PathBuf;

use fer_models_spec::meta::{ColorMode, Preprocess, ResizeMethod};
use fer_models_spec::{Arch, ArchConfig};
use serde::{Deserialize, Serialize};

fn default_in_channels() -> usize {
    3
}
fn default_width() -> f64 {
    1.0
}

/// The `[model]` section: the fields of [`ArchConfig`] (same names, same defaults) plus the
/// optional initial weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture id (required): `mobilenet_v3_small`, `mobilenet_v3_large`,
    /// `efficientnet_b0`, `resnet18`, `resnet50` or `inception_v3`.
    pub arch: Arch,
    /// Classifier outputs (required); must equal the dataset's number of classes.
    pub num_classes: usize,
    /// Input channels: 3 (gray images replicated) or 1. Default 3.
    #[serde(default = "default_in_channels")]
    pub in_channels: usize,
    /// Square input side in pixels. Default: the architecture's (224; 299 for Inception-v3).
    #[serde(default)]
    pub input_size: Option<usize>,
    /// Channel width multiplier (1.0 = torchvision's network). Default 1.0.
    #[serde(default = "default_width")]
    pub width_mult: f64,
    /// Dropout before the classifier. Default: torchvision's (0.2; 0.5 for Inception-v3).
    #[serde(default)]
    pub dropout: Option<f64>,
    /// Weights to start from. Default: none (fresh initialisation).
    #[serde(default)]
    pub init: Option<InitConfig>,
    /// How fresh weights are drawn: `torchvision` (the architecture's own scheme) or `kaiming`
    /// (Kaiming-normal convolutions, as for ResNets; Inception-v3 from scratch needs it).
    /// Default `torchvision`.
    #[serde(default)]
    pub weight_init: crate::lower::WeightInit,
}

impl ModelConfig {
    /// The architecture options, as models-spec takes them.
    pub fn arch_config(&self) -> ArchConfig {
        ArchConfig {
            arch: self.arch,
            num_classes: self.num_classes,
            in_channels: self.in_channels,
            input_size: self.input_size,
            width_mult: self.width_mult,
            dropout: self.dropout,
        }
    }

    /// The input side in pixels (the explicit one or the architecture's default).
    pub fn input_size(&self) -> usize {
        self.input_size.unwrap_or(self.arch.default_input_size())
    }
}

/// `model.init`: weights the student starts from instead of a fresh initialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// A torchvision `state_dict` (`.pth`), a `.safetensors` file or one of our checkpoints
    /// (required). Relative to the config file's folder. `{fold}` is replaced by `data.fold`.
    pub weights: PathBuf,
    /// Keep the final classifier freshly initialised (fine-tuning ImageNet weights to the
    /// dataset's classes). Default false: every parameter must be in the file with its shape.
    #[serde(default)]
    pub skip_classifier: bool,
}

/// The `[preprocess]` section: overrides of the preprocessing the model is trained (and later
/// deployed) with. Absent fields take ImageNet normalisation at the model's input size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessOverrides {
    /// `gray` (1 input channel) or `rgb` (3). Default: from `model.in_channels`.
    #[serde(default)]
    pub color: Option<ColorMode>,
    /// `bilinear` (antialiased when shrinking) or `nearest`. Default `bilinear`.
    #[serde(default)]
    pub resize: Option<ResizeMethod>,
    /// Per-channel mean on the `[0, 1]` scale, one value per input channel. Default: ImageNet's
    /// (`[0.485, 0.456, 0.406]`; `[0.449]` for one channel).
    #[serde(default)]
    pub mean: Option<Vec<f64>>,
    /// Per-channel standard deviation on the `[0, 1]` scale, each `> 0`. Default: ImageNet's
    /// (`[0.229, 0.224, 0.225]`; `[0.226]` for one channel).
    #[serde(default)]
    pub std: Option<Vec<f64>>,
}

impl PreprocessOverrides {
    /// The preprocessing of `model`: ImageNet defaults with these overrides applied.
    pub fn resolve(&self, model: &ModelConfig) -> Preprocess {
        let mut p = Preprocess::imagenet(model.input_size(), model.in_channels);
        if let Some(c) = self.color {
            p.color = c;
        }
        if let Some(r) = self.resize {
            p.resize = r;
        }
        if let Some(m) = &self.mean {
            p.mean = m.iter().map(|&v| v as f32).collect();
        }
        if let Some(s) = &self.std {
            p.std = s.iter().map(|&v| v as f32).collect();
        }
        p
    }

    /// The same overrides with every field filled in from [`Self::resolve`].
    pub fn filled(&self, model: &ModelConfig) -> Self {
        let p = self.resolve(model);
        PreprocessOverrides {
            color: Some(p.color),
            resize: Some(p.resize),
            mean: Some(p.mean.iter().map(|&v| decimal(v)).collect()),
            std: Some(p.std.iter().map(|&v| decimal(v)).collect()),
        }
    }
}

/// The `f64` with the shortest decimal form of `v` (0.485, not 0.48500001430511475), which
/// converts back to exactly `v`.
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}
