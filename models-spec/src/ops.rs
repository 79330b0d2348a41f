//! Typed configurations of the ops of the IR.

use serde::{Deserialize, Serialize};

/// 2-D convolution, `torch.nn.Conv2d` (weight `[out, in/groups, kh, kw]`, optional bias `[out]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Kernel size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding `[ph, pw]`, applied on both sides.
    pub padding: [usize; 2],
    /// Dilation `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Channel groups (`in_ch` for a depthwise convolution).
    pub groups: usize,
    /// Whether the convolution has a bias.
    pub bias: bool,
}

impl Conv2d {
    /// Square kernel of size `k` with stride `s`, torchvision's "same" padding `(k-1)/2`,
    /// no dilation, no bias, one group.
    pub fn square(in_ch: usize, out_ch: usize, k: usize, s: usize) -> Self {
        Conv2d {
            in_ch,
            out_ch,
            kernel: [k, k],
            stride: [s, s],
            padding: [(k - 1) / 2, (k - 1) / 2],
            dilation: [1, 1],
            groups: 1,
            bias: false,
        }
    }

    /// Same convolution with `groups` channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Same convolution with a bias.
    pub fn with_bias(mut self) -> Self {
        self.bias = true;
        self
    }

    /// Same convolution with explicit padding.
    pub fn with_padding(mut self, padding: [usize; 2]) -> Self {
        self.padding = padding;
        self
    }

    /// Shape of the weight tensor.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.out_ch, self.in_ch / self.groups, self.kernel[0], self.kernel[1]]
    }
}

/// `torch.nn.BatchNorm2d` over the channel axis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm2d {
    /// Channels.
    pub num_features: usize,
    /// Added to the variance (torchvision: 1e-5 default, 1e-3 in MobileNetV3 and Inception-v3).
    pub eps: f64,
    /// Running-statistics momentum, PyTorch convention: `new = (1-m)·old + m·batch`.
    pub momentum: f64,
}

/// `torch.nn.Linear` (weight `[out, in]`, bias `[out]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
}

/// Point-wise activation functions, with PyTorch's definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x · relu6(x + 3) / 6`.
    Hardswish,
    /// `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// `x · sigmoid(x)` (swish).
    Silu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
}

/// Max or average pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pool2d {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding `[ph, pw]` (implicit -inf for max, zeros for average).
    pub padding: [usize; 2],
    /// Average pooling only: whether padded zeros count in the divisor (PyTorch default true).
    pub count_include_pad: bool,
}

impl Pool2d {
    /// Square window `k`, stride `s`, padding `p`, PyTorch defaults otherwise.
    pub fn square(k: usize, s: usize, p: usize) -> Self {
        Pool2d { kernel: [k, k], stride: [s, s], padding: [p, p], count_include_pad: true }
    }
}
