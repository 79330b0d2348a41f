//! The architectures and the configuration that selects one.

mod efficientnet;
mod inception_v3;
mod mobilenet_v3;
mod resnet;
mod vgg;

use serde::{Deserialize, Serialize};

use crate::builder::GraphBuilder;
use crate::error::{Result, SpecError};
use crate::graph::{Graph, NodeId};
use crate::ops::{Activation, Conv2d};

/// The architectures the toolkit trains and exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// MobileNetV3-Small (Howard et al. 2019), torchvision `mobilenet_v3_small`.
    MobilenetV3Small,
    /// MobileNetV3-Large, torchvision `mobilenet_v3_large`.
    MobilenetV3Large,
    /// EfficientNet-B0 (Tan & Le 2019), torchvision `efficientnet_b0`.
    EfficientnetB0,
    /// ResNet-18 (He et al. 2016), torchvision `resnet18`.
    Resnet18,
    /// ResNet-50 (v1.5: stride on the 3×3 conv), torchvision `resnet50`.
    Resnet50,
    /// Inception-v3 (Szegedy et al. 2016) without the auxiliary head, torchvision `inception_v3`.
    InceptionV3,
    /// VGG for 48-pixel faces (after Khaireddin & Chen 2021): torchvision's `vgg13_bn` features
    /// without the fifth stage and its VGG classifier; not a torchvision builder.
    VggFer,
}

impl Arch {
    /// Every architecture.
    pub const ALL: [Arch; 7] = [
        Arch::MobilenetV3Small,
        Arch::MobilenetV3Large,
        Arch::EfficientnetB0,
        Arch::Resnet18,
        Arch::Resnet50,
        Arch::InceptionV3,
        Arch::VggFer,
    ];
    /// Their ids (derived from [`Arch::id`]).
    pub const ALL_IDS: [&'static str; 7] = {
        let mut ids = [""; 7];
        let mut i = 0;
        while i < ids.len() {
            ids[i] = Self::ALL[i].id();
            i += 1;
        }
        ids
    };

    /// The id, equal to torchvision's builder name where torchvision has the network (and to the
    /// serde name in configs).
    pub const fn id(self) -> &'static str {
        match self {
            Arch::MobilenetV3Small => "mobilenet_v3_small",
            Arch::MobilenetV3Large => "mobilenet_v3_large",
            Arch::EfficientnetB0 => "efficientnet_b0",
            Arch::Resnet18 => "resnet18",
            Arch::Resnet50 => "resnet50",
            Arch::InceptionV3 => "inception_v3",
            Arch::VggFer => "vgg_fer",
        }
    }

    /// The input size the architecture is usually trained at (299 for Inception-v3, 48 for
    /// `vgg_fer`, else 224).
    pub fn default_input_size(self) -> usize {
        match self {
            Arch::InceptionV3 => 299,
            Arch::VggFer => 48,
            _ => 224,
        }
    }

    /// Smallest square input the architecture accepts.
    pub fn min_input_size(self) -> usize {
        match self {
            Arch::InceptionV3 => 75,
            Arch::VggFer => vgg::DOWNSAMPLING,
            _ => 32,
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.id() == s)
            .ok_or_else(|| SpecError::UnknownArch(s.to_string()))
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

fn default_in_channels() -> usize {
    3
}
fn default_width() -> f64 {
    1.0
}

/// Everything that selects one concrete network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchConfig {
    /// Which architecture.
    pub arch: Arch,
    /// Classifier outputs.
    pub num_classes: usize,
    /// Input channels: 3 (RGB, or gray replicated) or 1 (the first conv then reads one channel).
    #[serde(default = "default_in_channels")]
    pub in_channels: usize,
    /// Square input side in pixels; default 224 (299 for Inception-v3).
    #[serde(default)]
    pub input_size: Option<usize>,
    /// Channel width multiplier (1.0 = torchvision). MobileNetV3 and EfficientNet scale as
    /// torchvision does; ResNet scales its base widths (not a torchvision model); Inception-v3
    /// accepts only 1.0.
    #[serde(default = "default_width")]
    pub width_mult: f64,
    /// Dropout before the classifier; default torchvision's (0.2, or 0.5 for Inception-v3 and
    /// for both hidden layers of `vgg_fer`).
    #[serde(default)]
    pub dropout: Option<f64>,
}

impl ArchConfig {
    /// torchvision's defaults for `arch` with `num_classes` outputs.
    pub fn new(arch: Arch, num_classes: usize) -> Self {
        ArchConfig {
            arch,
            num_classes,
            in_channels: 3,
            input_size: None,
            width_mult: 1.0,
            dropout: None,
        }
    }

    /// Same config with another input size.
    pub fn with_input_size(mut self, size: usize) -> Self {
        self.input_size = Some(size);
        self
    }

    /// Same config with another number of input channels.
    pub fn with_in_channels(mut self, c: usize) -> Self {
        self.in_channels = c;
        self
    }

    /// Same config with a width multiplier.
    pub fn with_width(mut self, w: f64) -> Self {
        self.width_mult = w;
        self
    }

    /// The input side in pixels.
    pub fn input_size(&self) -> usize {
        self.input_size.unwrap_or(self.arch.default_input_size())
    }

    fn bad(&self, field: &'static str, value: impl ToString, reason: &str) -> SpecError {
        SpecError::BadOption {
            arch: self.arch.id().into(),
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Checks the options against what the architecture supports.
    pub fn validate(&self) -> Result<()> {
        if self.num_classes == 0 {
            return Err(self.bad("num_classes", 0, "at least 1"));
        }
        if !matches!(self.in_channels, 1 | 3) {
            return Err(self.bad("in_channels", self.in_channels, "1 or 3"));
        }
        let s = self.input_size();
        if s < self.arch.min_input_size() || s > 1024 {
            let why = format!("between {} and 1024 pixels", self.arch.min_input_size());
            return Err(self.bad("input_size", s, &why));
        }
        if !(self.width_mult > 0.0 && self.width_mult <= 4.0) {
            return Err(self.bad("width_mult", self.width_mult, "in (0, 4]"));
        }
        if self.arch == Arch::InceptionV3 && self.width_mult != 1.0 {
            return Err(self.bad(
                "width_mult",
                self.width_mult,
                "Inception-v3 has no width option",
            ));
        }
        if let Some(p) = self.dropout.filter(|p| !(0.0..1.0).contains(p)) {
            return Err(self.bad("dropout", p, "in [0, 1)"));
        }
        Ok(())
    }
}

/// Builds the graph of the network `cfg` describes.
pub fn spec(cfg: &ArchConfig) -> Result<Graph> {
    cfg.validate()?;
    match cfg.arch {
        Arch::MobilenetV3Small | Arch::MobilenetV3Large => mobilenet_v3::spec(cfg),
        Arch::EfficientnetB0 => efficientnet::spec(cfg),
        Arch::Resnet18 | Arch::Resnet50 => resnet::spec(cfg),
        Arch::InceptionV3 => inception_v3::spec(cfg),
        Arch::VggFer => vgg::spec(cfg),
    }
}

/// torchvision's `_make_divisible`: rounds `v` to the nearest multiple of `divisor`, at least
/// `divisor`, never more than 10% below `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = d.max(((v + d / 2.0) as usize / divisor * divisor) as f64);
    if new_v < 0.9 * v {
        new_v += d;
    }
    new_v as usize
}

/// BatchNorm settings of one architecture.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BnCfg {
    pub eps: f64,
    pub momentum: f64,
}

/// torchvision's `Conv2dNormActivation`: `{name}.0` conv (no bias), `{name}.1` BN,
/// `{name}.2` activation when given.
pub(crate) fn conv_bn_act(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    conv: Conv2d,
    bn: BnCfg,
    act: Option<Activation>,
) -> Result<NodeId> {
    let y = b.conv(format!("{name}.0"), x, conv)?;
    let y = b.bn(format!("{name}.1"), y, bn.eps, bn.momentum)?;
    match act {
        Some(a) => b.act(format!("{name}.2"), y, a),
        None => Ok(y),
    }
}

/// torchvision's `SqueezeExcitation` on `x`: global pool, `fc1` (1×1 conv with bias), activation,
/// `fc2`, scale activation, product with `x`.
pub(crate) fn squeeze_excitation(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    squeeze: usize,
    act: Activation,
    scale_act: Activation,
) -> Result<NodeId> {
    let c = b.channels(x);
    let s = b.push(format!("{name}.avgpool"), crate::graph::Op::GlobalAvgPool, &[x])?;
    let s = b.conv(format!("{name}.fc1"), s, Conv2d::square(c, squeeze, 1, 1).with_bias())?;
    let s = b.act(format!("{name}.activation"), s, act)?;
    let s = b.conv(format!("{name}.fc2"), s, Conv2d::square(squeeze, c, 1, 1).with_bias())?;
    let s = b.act(format!("{name}.scale_activation"), s, scale_act)?;
    b.push(format!("{name}.mul"), crate::graph::Op::Mul, &[x, s])
}

/// The common head: global average pool, flatten (the `embedding` tap).
pub(crate) fn pool_flatten(b: &mut GraphBuilder, x: NodeId) -> Result<NodeId> {
    let y = b.push("avgpool", crate::graph::Op::GlobalAvgPool, &[x])?;
    let y = b.push("flatten", crate::graph::Op::Flatten, &[y])?;
    b.tap(crate::graph::EMBEDDING_TAP, y);
    Ok(y)
}

#[cfg(test)]
mod tests;
