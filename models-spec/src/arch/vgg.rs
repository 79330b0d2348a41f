//! `vgg_fer`: a VGG for faces at FER-2013's native 48 pixels, the family that holds the best
//! single-network results on FER-2013 trained from scratch (Khaireddin & Chen, "Facial Emotion
//! Recognition: State of the Art Performance on FER2013", 2021, <https://arxiv.org/abs/2105.03588>:
//! four convolutional stages and three fully connected layers, 73.28 % on the test split).
//!
//! torchvision defines no such network, so it is assembled from torchvision's VGG parts and
//! keeps their `state_dict` names: `features` is `vgg13_bn`'s feature stack without its fifth
//! stage (`make_layers([64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M"],
//! batch_norm=True)`: 3×3 convolutions with bias, BatchNorm, ReLU, 2×2 max-pool after each
//! pair), whose output is flattened as it is (512·⌊s/16⌋² features at input side `s`: 4,608 at
//! 48 px) instead of adaptive-pooled to 7×7, into torchvision's VGG `classifier` (Linear 4096,
//! ReLU, Dropout, Linear 4096, ReLU, Dropout, Linear). Trained from scratch it is initialised as
//! torchvision initialises VGG (Kaiming fan-out convolutions, N(0, 0.01) linear layers, zero
//! biases). BatchNorm eps 1e-5, momentum 0.1; a width multiplier scales the convolution widths
//! to multiples of 8.

use super::{ArchConfig, make_divisible};
use crate::builder::{GraphBuilder, pool};
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::ops::{Activation, Conv2d};

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;
/// Output channels of the two convolutions of each stage.
const STAGES: [usize; 4] = [64, 128, 256, 512];
/// Width of the two hidden fully connected layers (torchvision's VGG classifier).
const HIDDEN: usize = 4096;
/// How many times the stages halve the input side.
pub(crate) const DOWNSAMPLING: usize = 16;

pub(crate) fn spec(cfg: &ArchConfig) -> Result<Graph> {
    let width = |c: usize| {
        if cfg.width_mult == 1.0 { c } else { make_divisible(c as f64 * cfg.width_mult, 8) }
    };
    let s = cfg.input_size();
    let mut b = GraphBuilder::new(cfg.in_channels, s, s);
    let mut x: NodeId = b.input();
    let mut cin = cfg.in_channels;
    let mut idx = 0;
    let mut next = || {
        idx += 1;
        format!("features.{}", idx - 1)
    };
    for c in STAGES {
        let cout = width(c);
        for _ in 0..2 {
            x = b.conv(next(), x, Conv2d::square(cin, cout, 3, 1).with_bias())?;
            x = b.bn(next(), x, EPS, MOMENTUM)?;
            x = b.act(next(), x, Activation::Relu)?;
            cin = cout;
        }
        x = b.push(next(), Op::MaxPool2d(pool(2, 2, 0)), &[x])?;
    }
    let x = b.push("flatten", Op::Flatten, &[x])?;
    b.tap(crate::graph::EMBEDDING_TAP, x);
    let p = cfg.dropout.unwrap_or(0.5);
    let x = b.linear("classifier.0", x, HIDDEN)?;
    let x = b.act("classifier.1", x, Activation::Relu)?;
    let x = b.push("classifier.2", Op::Dropout { p }, &[x])?;
    let x = b.linear("classifier.3", x, HIDDEN)?;
    let x = b.act("classifier.4", x, Activation::Relu)?;
    let x = b.push("classifier.5", Op::Dropout { p }, &[x])?;
    let x = b.linear("classifier.6", x, cfg.num_classes)?;
    Ok(b.finish(x))
}
