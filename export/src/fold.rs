//! Folding an inference-mode BatchNorm into the convolution that feeds it.
//!
//! With `s = γ / √(var + ε)`, `BN(conv(x)) = conv'(x)` where `w' = w·s` (per output channel) and
//! `b' = (b − μ)·s + β` (`b = 0` for a convolution without bias). Computed in f64, stored as f32.

use std::collections::HashMap;

use fer_models_spec::{Graph, NodeId, Op};

/// For every BatchNorm that can be folded, the convolution it folds into: the BN's input is a
/// convolution read by nothing else (not by another node, the output or a tap).
pub(crate) fn fold_plan(graph: &Graph) -> HashMap<NodeId, NodeId> {
    let uses = graph.use_counts();
    let mut plan = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let (Op::BatchNorm2d(_), [src]) = (&node.op, node.inputs.as_slice()) else { continue };
        if matches!(graph.node(*src).op, Op::Conv2d(_)) && uses[src.0] == 1 {
            plan.insert(*src, NodeId(i));
        }
    }
    plan
}

/// BatchNorm statistics and affine parameters, one value per channel.
pub(crate) struct BnParams<'a> {
    /// γ.
    pub weight: &'a [f32],
    /// β.
    pub bias: &'a [f32],
    /// μ.
    pub mean: &'a [f32],
    /// σ².
    pub var: &'a [f32],
    /// ε.
    pub eps: f64,
}

/// Folded weight (same layout as `w`, `[out, in/groups, kh, kw]`) and bias `[out]`.
pub(crate) fn fold_conv_bn(w: &[f32], b: Option<&[f32]>, bn: &BnParams) -> (Vec<f32>, Vec<f32>) {
    let out = bn.weight.len();
    let per_out = w.len().checked_div(out).unwrap_or(0);
    let mut w2 = Vec::with_capacity(w.len());
    let mut b2 = Vec::with_capacity(out);
    for o in 0..out {
        let s = f64::from(bn.weight[o]) / (f64::from(bn.var[o]) + bn.eps).sqrt();
        for &v in &w[o * per_out..(o + 1) * per_out] {
            w2.push((f64::from(v) * s) as f32);
        }
        let b0 = b.map_or(0.0, |b| f64::from(b[o]));
        b2.push(((b0 - f64::from(bn.mean[o])) * s + f64::from(bn.bias[o])) as f32);
    }
    (w2, b2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_conv_equals_conv_then_batch_norm_per_channel() {
        // A 1x1 "convolution" of one input channel to two outputs: y_o = w_o * x + b_o.
        let (w, b) = ([2.0f32, -1.0], [0.5f32, 1.0]);
        let bn = BnParams {
            weight: &[1.5, 0.25],
            bias: &[0.1, -0.2],
            mean: &[0.3, -0.4],
            var: &[4.0, 0.09],
            eps: 1e-3,
        };
        let (w2, b2) = fold_conv_bn(&w, Some(&b), &bn);
        for x in [-2.0f64, 0.0, 3.5] {
            for o in 0..2 {
                let y = f64::from(w[o]) * x + f64::from(b[o]);
                let g = f64::from(bn.weight[o]);
                let (m, v) = (f64::from(bn.mean[o]), f64::from(bn.var[o]));
                let want = (y - m) / (v + bn.eps).sqrt() * g + f64::from(bn.bias[o]);
                let got = f64::from(w2[o]) * x + f64::from(b2[o]);
                assert!((want - got).abs() < 1e-5, "x={x} o={o}: {want} vs {got}");
            }
        }
    }
}
