//! MobileNetV3-Small and -Large (Howard et al., "Searching for MobileNetV3", ICCV 2019,
//! <https://arxiv.org/abs/1905.02244>), as torchvision's `mobilenet_v3_small` (2,542,856
//! parameters at 1000 classes) and `mobilenet_v3_large` (5,483,032).
//!
//! BatchNorm eps 1e-3, momentum 0.01; head `Linear → Hardswish → Dropout → Linear`.

use super::{ArchConfig, BnCfg, conv_bn_act, make_divisible, pool_flatten, squeeze_excitation};
use crate::Arch;
use crate::builder::GraphBuilder;
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::ops::{Activation, Conv2d};

/// One bottleneck: (input, kernel, expanded, output, squeeze-excitation, hardswish, stride).
type Bneck = (usize, usize, usize, usize, bool, bool, usize);

const LARGE: [Bneck; 15] = [
    (16, 3, 16, 16, false, false, 1),
    (16, 3, 64, 24, false, false, 2),
    (24, 3, 72, 24, false, false, 1),
    (24, 5, 72, 40, true, false, 2),
    (40, 5, 120, 40, true, false, 1),
    (40, 5, 120, 40, true, false, 1),
    (40, 3, 240, 80, false, true, 2),
    (80, 3, 200, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 480, 112, true, true, 1),
    (112, 3, 672, 112, true, true, 1),
    (112, 5, 672, 160, true, true, 2),
    (160, 5, 960, 160, true, true, 1),
    (160, 5, 960, 160, true, true, 1),
];

const SMALL: [Bneck; 11] = [
    (16, 3, 16, 16, true, false, 2),
    (16, 3, 72, 24, false, false, 2),
    (24, 3, 88, 24, false, false, 1),
    (24, 5, 96, 40, true, true, 2),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 120, 48, true, true, 1),
    (48, 5, 144, 48, true, true, 1),
    (48, 5, 288, 96, true, true, 2),
    (96, 5, 576, 96, true, true, 1),
    (96, 5, 576, 96, true, true, 1),
];

const BN: BnCfg = BnCfg { eps: 1e-3, momentum: 0.01 };

pub(crate) fn spec(cfg: &ArchConfig) -> Result<Graph> {
    let (table, last_channel): (&[Bneck], usize) = match cfg.arch {
        Arch::MobilenetV3Large => (&LARGE, 1280),
        _ => (&SMALL, 1024),
    };
    let adjust = |c: usize| make_divisible(c as f64 * cfg.width_mult, 8);
    let s = cfg.input_size();
    let mut b = GraphBuilder::new(cfg.in_channels, s, s);
    let first = adjust(table[0].0);
    let conv = Conv2d::square(cfg.in_channels, first, 3, 2);
    let mut x =
        conv_bn_act(&mut b, "features.0", NodeId(0), conv, BN, Some(Activation::Hardswish))?;
    for (i, &(cin, k, exp, cout, se, hs, stride)) in table.iter().enumerate() {
        let (cin, exp, cout) = (adjust(cin), adjust(exp), adjust(cout));
        x = inverted_residual(
            &mut b,
            &format!("features.{}", i + 1),
            x,
            (cin, k, exp, cout, se, hs, stride),
        )?;
    }
    let last_in = adjust(table[table.len() - 1].3);
    let name = format!("features.{}", table.len() + 1);
    let conv = Conv2d::square(last_in, 6 * last_in, 1, 1);
    x = conv_bn_act(&mut b, &name, x, conv, BN, Some(Activation::Hardswish))?;
    let x = pool_flatten(&mut b, x)?;
    let x = b.linear("classifier.0", x, adjust(last_channel))?;
    let x = b.act("classifier.1", x, Activation::Hardswish)?;
    let x = b.push("classifier.2", Op::Dropout { p: cfg.dropout.unwrap_or(0.2) }, &[x])?;
    let x = b.linear("classifier.3", x, cfg.num_classes)?;
    Ok(b.finish(x))
}

fn inverted_residual(b: &mut GraphBuilder, name: &str, x: NodeId, c: Bneck) -> Result<NodeId> {
    let (cin, k, exp, cout, se, hs, stride) = c;
    let act = if hs { Activation::Hardswish } else { Activation::Relu };
    let mut y = x;
    let mut idx = 0;
    let next = |idx: &mut usize| {
        *idx += 1;
        format!("{name}.block.{}", *idx - 1)
    };
    if exp != cin {
        y = conv_bn_act(b, &next(&mut idx), y, Conv2d::square(cin, exp, 1, 1), BN, Some(act))?;
    }
    let dw = Conv2d::square(exp, exp, k, stride).with_groups(exp);
    y = conv_bn_act(b, &next(&mut idx), y, dw, BN, Some(act))?;
    if se {
        let squeeze = make_divisible((exp / 4) as f64, 8);
        let n = next(&mut idx);
        y = squeeze_excitation(b, &n, y, squeeze, Activation::Relu, Activation::Hardsigmoid)?;
    }
    y = conv_bn_act(b, &next(&mut idx), y, Conv2d::square(exp, cout, 1, 1), BN, None)?;
    if stride == 1 && cin == cout {
        y = b.push(format!("{name}.add"), Op::Add, &[y, x])?;
    }
    Ok(y)
}
