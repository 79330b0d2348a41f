//! ResNet-18 and ResNet-50 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
//! <https://arxiv.org/abs/1512.03385>), as torchvision's `resnet18` (11,689,512 parameters at
//! 1000 classes) and `resnet50` (25,557,032; v1.5, the stride sits on the 3×3 convolution).
//!
//! BatchNorm eps 1e-5, momentum 0.1. A width multiplier other than 1 scales the base widths
//! (64, 128, 256, 512) to multiples of 8: a smaller network for tests and demos that torchvision
//! does not define.

use super::{ArchConfig, make_divisible, pool_flatten};
use crate::Arch;
use crate::builder::{GraphBuilder, pool};
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::ops::{Activation, Conv2d};

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

pub(crate) fn spec(cfg: &ArchConfig) -> Result<Graph> {
    let (bottleneck, layers) = match cfg.arch {
        Arch::Resnet50 => (true, [3, 4, 6, 3]),
        _ => (false, [2, 2, 2, 2]),
    };
    let expansion = if bottleneck { 4 } else { 1 };
    let width = |c: usize| {
        if cfg.width_mult == 1.0 { c } else { make_divisible(c as f64 * cfg.width_mult, 8) }
    };
    let s = cfg.input_size();
    let mut b = GraphBuilder::new(cfg.in_channels, s, s);
    let stem = width(64);
    let conv1 = Conv2d::square(cfg.in_channels, stem, 7, 2);
    let x = b.conv("conv1", NodeId(0), conv1)?;
    let x = b.bn("bn1", x, EPS, MOMENTUM)?;
    let x = b.act("relu", x, Activation::Relu)?;
    let mut x = b.push("maxpool", Op::MaxPool2d(pool(3, 2, 1)), &[x])?;
    let mut inplanes = stem;
    for (li, &n) in layers.iter().enumerate() {
        let planes = width(64 << li);
        for bi in 0..n {
            let stride = if li > 0 && bi == 0 { 2 } else { 1 };
            let name = format!("layer{}.{bi}", li + 1);
            x = block(&mut b, &name, x, inplanes, planes, stride, bottleneck)?;
            inplanes = planes * expansion;
        }
    }
    let x = pool_flatten(&mut b, x)?;
    let x = b.linear("fc", x, cfg.num_classes)?;
    Ok(b.finish(x))
}

fn block(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    inplanes: usize,
    planes: usize,
    stride: usize,
    bottleneck: bool,
) -> Result<NodeId> {
    let out = if bottleneck { planes * 4 } else { planes };
    let mut y = x;
    let convs = if bottleneck {
        vec![
            Conv2d::square(inplanes, planes, 1, 1),
            Conv2d::square(planes, planes, 3, stride),
            Conv2d::square(planes, out, 1, 1),
        ]
    } else {
        vec![Conv2d::square(inplanes, planes, 3, stride), Conv2d::square(planes, planes, 3, 1)]
    };
    let last = convs.len();
    for (i, c) in convs.into_iter().enumerate() {
        y = b.conv(format!("{name}.conv{}", i + 1), y, c)?;
        y = b.bn(format!("{name}.bn{}", i + 1), y, EPS, MOMENTUM)?;
        if i + 1 < last {
            y = b.act(format!("{name}.relu{}", i + 1), y, Activation::Relu)?;
        }
    }
    let identity = if stride != 1 || inplanes != out {
        let d =
            b.conv(format!("{name}.downsample.0"), x, Conv2d::square(inplanes, out, 1, stride))?;
        b.bn(format!("{name}.downsample.1"), d, EPS, MOMENTUM)?
    } else {
        x
    };
    let y = b.push(format!("{name}.add"), Op::Add, &[y, identity])?;
    b.act(format!("{name}.relu"), y, Activation::Relu)
}
