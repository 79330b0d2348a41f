//! EfficientNet-B0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
//! Networks", ICML 2019, <https://arxiv.org/abs/1905.11946>), as torchvision's `efficientnet_b0`
//! (5,288,548 parameters at 1000 classes).
//!
//! BatchNorm eps 1e-5, momentum 0.1 (PyTorch defaults, as torchvision's B0–B7); SiLU;
//! squeeze-excitation with `input_channels / 4` squeeze channels and a sigmoid gate; stochastic
//! depth growing linearly to 0.2 over the blocks; head `Dropout(0.2) → Linear`.

use super::{ArchConfig, BnCfg, conv_bn_act, make_divisible, pool_flatten, squeeze_excitation};
use crate::builder::GraphBuilder;
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::ops::{Activation, Conv2d};

/// One stage: (expand ratio, kernel, stride, input, output, layers).
type Stage = (usize, usize, usize, usize, usize, usize);

const B0: [Stage; 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

const BN: BnCfg = BnCfg { eps: 1e-5, momentum: 0.1 };
const STOCHASTIC_DEPTH: f64 = 0.2;

pub(crate) fn spec(cfg: &ArchConfig) -> Result<Graph> {
    let adjust = |c: usize| make_divisible(c as f64 * cfg.width_mult, 8);
    let s = cfg.input_size();
    let mut b = GraphBuilder::new(cfg.in_channels, s, s);
    let conv = Conv2d::square(cfg.in_channels, adjust(B0[0].3), 3, 2);
    let mut x = conv_bn_act(&mut b, "features.0", NodeId(0), conv, BN, Some(Activation::Silu))?;
    let total: usize = B0.iter().map(|s| s.5).sum();
    let mut block_id = 0;
    for (si, &(ratio, k, stride, cin, cout, layers)) in B0.iter().enumerate() {
        let (cin, cout) = (adjust(cin), adjust(cout));
        for li in 0..layers {
            let (cin, stride) = if li == 0 { (cin, stride) } else { (cout, 1) };
            let sd = STOCHASTIC_DEPTH * block_id as f64 / total as f64;
            let name = format!("features.{}.{li}", si + 1);
            x = mbconv(&mut b, &name, x, (ratio, k, stride, cin, cout), sd)?;
            block_id += 1;
        }
    }
    let last_in = adjust(B0[6].4);
    let conv = Conv2d::square(last_in, 4 * last_in, 1, 1);
    x = conv_bn_act(&mut b, "features.8", x, conv, BN, Some(Activation::Silu))?;
    let x = pool_flatten(&mut b, x)?;
    let x = b.push("classifier.0", Op::Dropout { p: cfg.dropout.unwrap_or(0.2) }, &[x])?;
    let x = b.linear("classifier.1", x, cfg.num_classes)?;
    Ok(b.finish(x))
}

fn mbconv(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    (ratio, k, stride, cin, cout): (usize, usize, usize, usize, usize),
    sd_prob: f64,
) -> Result<NodeId> {
    let exp = make_divisible((cin * ratio) as f64, 8);
    let act = Some(Activation::Silu);
    let mut idx = 0;
    let mut next = || {
        idx += 1;
        format!("{name}.block.{}", idx - 1)
    };
    let mut y = x;
    if exp != cin {
        y = conv_bn_act(b, &next(), y, Conv2d::square(cin, exp, 1, 1), BN, act)?;
    }
    y = conv_bn_act(b, &next(), y, Conv2d::square(exp, exp, k, stride).with_groups(exp), BN, act)?;
    let squeeze = (cin / 4).max(1);
    let se = next();
    y = squeeze_excitation(b, &se, y, squeeze, Activation::Silu, Activation::Sigmoid)?;
    y = conv_bn_act(b, &next(), y, Conv2d::square(exp, cout, 1, 1), BN, None)?;
    if stride == 1 && cin == cout {
        y = b.push(format!("{name}.stochastic_depth"), Op::StochasticDepth { p: sd_prob }, &[y])?;
        y = b.push(format!("{name}.add"), Op::Add, &[y, x])?;
    }
    Ok(y)
}
