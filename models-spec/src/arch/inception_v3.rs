//! Inception-v3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
//! CVPR 2016, <https://arxiv.org/abs/1512.00567>), as torchvision's
//! `inception_v3(aux_logits=False, transform_input=False)`: 23,834,568 parameters at 1000 classes.
//!
//! Every convolution is torchvision's `BasicConv2d` (conv without bias, BatchNorm eps 1e-3
//! momentum 0.1, ReLU). Branch pools are 3×3 average pools that count padding. Head:
//! pool, dropout 0.5, `fc`. Input at least 75×75 (299 by default).

use super::{ArchConfig, pool_flatten};
use crate::builder::{GraphBuilder, pool};
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};
use crate::ops::{Activation, Conv2d};

/// Builder of one Inception module's branches, with BasicConv2d naming.
struct Ctx<'a> {
    b: &'a mut GraphBuilder,
    name: String,
}

impl Ctx<'_> {
    /// `{name}.{sub}`: conv (`kh×kw`, stride `s`, padding `ph, pw`) + BN + ReLU.
    fn conv(
        &mut self,
        sub: &str,
        x: NodeId,
        out: usize,
        k: [usize; 2],
        s: usize,
        p: [usize; 2],
    ) -> Result<NodeId> {
        basic_conv(self.b, &format!("{}.{sub}", self.name), x, out, k, s, p)
    }
    fn avg_pool(&mut self, sub: &str, x: NodeId) -> Result<NodeId> {
        self.b.push(format!("{}.{sub}", self.name), Op::AvgPool2d(pool(3, 1, 1)), &[x])
    }
    fn max_pool(&mut self, sub: &str, x: NodeId) -> Result<NodeId> {
        self.b.push(format!("{}.{sub}", self.name), Op::MaxPool2d(pool(3, 2, 0)), &[x])
    }
    fn concat(&mut self, sub: &str, xs: &[NodeId]) -> Result<NodeId> {
        self.b.push(format!("{}.{sub}", self.name), Op::Concat, xs)
    }
}

fn basic_conv(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    out: usize,
    k: [usize; 2],
    s: usize,
    p: [usize; 2],
) -> Result<NodeId> {
    let cin = b.channels(x);
    let mut c = Conv2d::square(cin, out, 1, s).with_padding(p);
    c.kernel = k;
    let y = b.conv(format!("{name}.conv"), x, c)?;
    let y = b.bn(format!("{name}.bn"), y, 1e-3, 0.1)?;
    b.act(format!("{name}.relu"), y, Activation::Relu)
}

const K1: [usize; 2] = [1, 1];
const K3: [usize; 2] = [3, 3];
const P0: [usize; 2] = [0, 0];
const P1: [usize; 2] = [1, 1];

pub(crate) fn spec(cfg: &ArchConfig) -> Result<Graph> {
    let s = cfg.input_size();
    let mut b = GraphBuilder::new(cfg.in_channels, s, s);
    let x = b.input();
    let x = basic_conv(&mut b, "Conv2d_1a_3x3", x, 32, K3, 2, P0)?;
    let x = basic_conv(&mut b, "Conv2d_2a_3x3", x, 32, K3, 1, P0)?;
    let x = basic_conv(&mut b, "Conv2d_2b_3x3", x, 64, K3, 1, P1)?;
    let x = b.push("maxpool1", Op::MaxPool2d(pool(3, 2, 0)), &[x])?;
    let x = basic_conv(&mut b, "Conv2d_3b_1x1", x, 80, K1, 1, P0)?;
    let x = basic_conv(&mut b, "Conv2d_4a_3x3", x, 192, K3, 1, P0)?;
    let mut x = b.push("maxpool2", Op::MaxPool2d(pool(3, 2, 0)), &[x])?;
    for (name, pool_features) in [("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)] {
        x = inception_a(&mut Ctx { b: &mut b, name: name.into() }, x, pool_features)?;
    }
    x = inception_b(&mut Ctx { b: &mut b, name: "Mixed_6a".into() }, x)?;
    for (name, c7) in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)] {
        x = inception_c(&mut Ctx { b: &mut b, name: name.into() }, x, c7)?;
    }
    x = inception_d(&mut Ctx { b: &mut b, name: "Mixed_7a".into() }, x)?;
    for name in ["Mixed_7b", "Mixed_7c"] {
        x = inception_e(&mut Ctx { b: &mut b, name: name.into() }, x)?;
    }
    let x = pool_flatten(&mut b, x)?;
    let x = b.push("dropout", Op::Dropout { p: cfg.dropout.unwrap_or(0.5) }, &[x])?;
    let x = b.linear("fc", x, cfg.num_classes)?;
    Ok(b.finish(x))
}

fn inception_a(c: &mut Ctx, x: NodeId, pool_features: usize) -> Result<NodeId> {
    let b1 = c.conv("branch1x1", x, 64, K1, 1, P0)?;
    let b5 = c.conv("branch5x5_1", x, 48, K1, 1, P0)?;
    let b5 = c.conv("branch5x5_2", b5, 64, [5, 5], 1, [2, 2])?;
    let d = c.conv("branch3x3dbl_1", x, 64, K1, 1, P0)?;
    let d = c.conv("branch3x3dbl_2", d, 96, K3, 1, P1)?;
    let d = c.conv("branch3x3dbl_3", d, 96, K3, 1, P1)?;
    let p = c.avg_pool("avg_pool", x)?;
    let p = c.conv("branch_pool", p, pool_features, K1, 1, P0)?;
    c.concat("cat", &[b1, b5, d, p])
}

fn inception_b(c: &mut Ctx, x: NodeId) -> Result<NodeId> {
    let b3 = c.conv("branch3x3", x, 384, K3, 2, P0)?;
    let d = c.conv("branch3x3dbl_1", x, 64, K1, 1, P0)?;
    let d = c.conv("branch3x3dbl_2", d, 96, K3, 1, P1)?;
    let d = c.conv("branch3x3dbl_3", d, 96, K3, 2, P0)?;
    let p = c.max_pool("max_pool", x)?;
    c.concat("cat", &[b3, d, p])
}

fn inception_c(c: &mut Ctx, x: NodeId, c7: usize) -> Result<NodeId> {
    let (k17, p17, k71, p71) = ([1, 7], [0, 3], [7, 1], [3, 0]);
    let b1 = c.conv("branch1x1", x, 192, K1, 1, P0)?;
    let b7 = c.conv("branch7x7_1", x, c7, K1, 1, P0)?;
    let b7 = c.conv("branch7x7_2", b7, c7, k17, 1, p17)?;
    let b7 = c.conv("branch7x7_3", b7, 192, k71, 1, p71)?;
    let d = c.conv("branch7x7dbl_1", x, c7, K1, 1, P0)?;
    let d = c.conv("branch7x7dbl_2", d, c7, k71, 1, p71)?;
    let d = c.conv("branch7x7dbl_3", d, c7, k17, 1, p17)?;
    let d = c.conv("branch7x7dbl_4", d, c7, k71, 1, p71)?;
    let d = c.conv("branch7x7dbl_5", d, 192, k17, 1, p17)?;
    let p = c.avg_pool("avg_pool", x)?;
    let p = c.conv("branch_pool", p, 192, K1, 1, P0)?;
    c.concat("cat", &[b1, b7, d, p])
}

fn inception_d(c: &mut Ctx, x: NodeId) -> Result<NodeId> {
    let b3 = c.conv("branch3x3_1", x, 192, K1, 1, P0)?;
    let b3 = c.conv("branch3x3_2", b3, 320, K3, 2, P0)?;
    let b7 = c.conv("branch7x7x3_1", x, 192, K1, 1, P0)?;
    let b7 = c.conv("branch7x7x3_2", b7, 192, [1, 7], 1, [0, 3])?;
    let b7 = c.conv("branch7x7x3_3", b7, 192, [7, 1], 1, [3, 0])?;
    let b7 = c.conv("branch7x7x3_4", b7, 192, K3, 2, P0)?;
    let p = c.max_pool("max_pool", x)?;
    c.concat("cat", &[b3, b7, p])
}

fn inception_e(c: &mut Ctx, x: NodeId) -> Result<NodeId> {
    let (k13, p13, k31, p31) = ([1, 3], [0, 1], [3, 1], [1, 0]);
    let b1 = c.conv("branch1x1", x, 320, K1, 1, P0)?;
    let b3 = c.conv("branch3x3_1", x, 384, K1, 1, P0)?;
    let b3a = c.conv("branch3x3_2a", b3, 384, k13, 1, p13)?;
    let b3b = c.conv("branch3x3_2b", b3, 384, k31, 1, p31)?;
    let b3 = c.concat("cat3x3", &[b3a, b3b])?;
    let d = c.conv("branch3x3dbl_1", x, 448, K1, 1, P0)?;
    let d = c.conv("branch3x3dbl_2", d, 384, K3, 1, P1)?;
    let da = c.conv("branch3x3dbl_3a", d, 384, k13, 1, p13)?;
    let db = c.conv("branch3x3dbl_3b", d, 384, k31, 1, p31)?;
    let d = c.concat("cat3x3dbl", &[da, db])?;
    let p = c.avg_pool("avg_pool", x)?;
    let p = c.conv("branch_pool", p, 192, K1, 1, P0)?;
    c.concat("cat", &[b1, b3, d, p])
}
