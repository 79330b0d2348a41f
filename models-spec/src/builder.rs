//! [`GraphBuilder`]: adds nodes with static shape inference and torchvision-style module paths.

use std::collections::HashSet;

use crate::error::{Result, SpecError};
use crate::graph::{Graph, Node, NodeId, Op, Shape};
use crate::ops::{Activation, BatchNorm2d, Conv2d, Linear, Pool2d};

/// Builds a [`Graph`] node by node, checking shapes as it goes.
#[derive(Debug)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    names: HashSet<String>,
    taps: Vec<(String, NodeId)>,
}

fn out_len(len: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    let span = d * (k - 1) + 1;
    (len + 2 * p).checked_sub(span).map(|v| v / s + 1)
}

impl GraphBuilder {
    /// A builder whose input node has per-sample shape `[channels, height, width]`.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        let input = Node {
            name: "input".into(),
            op: Op::Input,
            inputs: vec![],
            shape: vec![channels, height, width],
        };
        GraphBuilder { nodes: vec![input], names: HashSet::from(["input".into()]), taps: vec![] }
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        NodeId(0)
    }

    /// Per-sample shape of a node already added.
    pub fn shape(&self, id: NodeId) -> &Shape {
        &self.nodes[id.0].shape
    }

    /// Channels of a `[C, H, W]` node.
    pub fn channels(&self, id: NodeId) -> usize {
        self.shape(id)[0]
    }

    /// Adds a node, inferring its shape. `name` must be unique.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        let name = name.into();
        let shapes: Vec<Shape> = inputs.iter().map(|i| self.shape(*i).clone()).collect();
        let shape = infer_shape(&name, &op, &shapes)?;
        if !self.names.insert(name.clone()) {
            return Err(SpecError::DuplicateName(name));
        }
        self.nodes.push(Node { name, op, inputs: inputs.to_vec(), shape });
        Ok(NodeId(self.nodes.len() - 1))
    }

    /// Convolution named `name` (its parameters are `{name}.weight`, `{name}.bias`).
    pub fn conv(&mut self, name: impl Into<String>, x: NodeId, c: Conv2d) -> Result<NodeId> {
        self.push(name, Op::Conv2d(c), &[x])
    }

    /// Batch norm over `x`'s channels.
    pub fn bn(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        eps: f64,
        momentum: f64,
    ) -> Result<NodeId> {
        let num_features = self.channels(x);
        self.push(name, Op::BatchNorm2d(BatchNorm2d { num_features, eps, momentum }), &[x])
    }

    /// Activation.
    pub fn act(&mut self, name: impl Into<String>, x: NodeId, a: Activation) -> Result<NodeId> {
        self.push(name, Op::Activation(a), &[x])
    }

    /// Linear layer on a `[F]` node.
    pub fn linear(&mut self, name: impl Into<String>, x: NodeId, out: usize) -> Result<NodeId> {
        let in_features = self.shape(x)[0];
        self.push(name, Op::Linear(Linear { in_features, out_features: out }), &[x])
    }

    /// Registers a named tap on `x`.
    pub fn tap(&mut self, name: &str, x: NodeId) {
        self.taps.push((name.to_string(), x));
    }

    /// Finishes the graph with `output` as its logits.
    pub fn finish(self, output: NodeId) -> Graph {
        Graph { nodes: self.nodes, output, taps: self.taps }
    }
}

fn infer_shape(name: &str, op: &Op, ins: &[Shape]) -> Result<Shape> {
    let err = |msg: String| SpecError::Shape { node: name.to_string(), msg, inputs: ins.to_vec() };
    let arity = match op {
        Op::Input => 0,
        Op::Add | Op::Mul => 2,
        Op::Concat => ins.len().max(1),
        // Every other op by name (no wildcard): a new op does not compile until its arity is
        // stated here.
        Op::Conv2d(_)
        | Op::BatchNorm2d(_)
        | Op::Linear(_)
        | Op::Activation(_)
        | Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::GlobalAvgPool
        | Op::Flatten
        | Op::Dropout { .. }
        | Op::StochasticDepth { .. } => 1,
    };
    if ins.len() != arity {
        return Err(err(format!("expects {arity} inputs, got {}", ins.len())));
    }
    let chw = |s: &Shape| -> Result<[usize; 3]> {
        match s.as_slice() {
            [c, h, w] => Ok([*c, *h, *w]),
            _ => Err(err("expects a [C, H, W] input".into())),
        }
    };
    let spatial =
        |h: usize, w: usize, k: [usize; 2], s: [usize; 2], p: [usize; 2], d: [usize; 2]| match (
            out_len(h, k[0], s[0], p[0], d[0]),
            out_len(w, k[1], s[1], p[1], d[1]),
        ) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok((oh, ow)),
            _ => Err(err(format!("input {h}x{w} is smaller than the window {k:?}"))),
        };
    Ok(match op {
        Op::Input => return Err(err("only the builder creates the input".into())),
        Op::Conv2d(c) => {
            let [ci, h, w] = chw(&ins[0])?;
            if ci != c.in_ch || c.in_ch % c.groups != 0 || c.out_ch % c.groups != 0 {
                return Err(err(format!(
                    "conv expects {} input channels in {} groups to {} outputs",
                    c.in_ch, c.groups, c.out_ch
                )));
            }
            let (oh, ow) = spatial(h, w, c.kernel, c.stride, c.padding, c.dilation)?;
            vec![c.out_ch, oh, ow]
        }
        Op::BatchNorm2d(bn) => {
            let [c, _, _] = chw(&ins[0])?;
            if c != bn.num_features {
                return Err(err(format!("batch norm over {} channels", bn.num_features)));
            }
            ins[0].clone()
        }
        Op::Linear(l) => {
            if ins[0] != [l.in_features] {
                return Err(err(format!("linear expects [{}]", l.in_features)));
            }
            vec![l.out_features]
        }
        Op::Activation(_) | Op::Dropout { .. } | Op::StochasticDepth { .. } => ins[0].clone(),
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
            let [c, h, w] = chw(&ins[0])?;
            let (oh, ow) = spatial(h, w, p.kernel, p.stride, p.padding, [1, 1])?;
            vec![c, oh, ow]
        }
        Op::GlobalAvgPool => {
            let [c, _, _] = chw(&ins[0])?;
            vec![c, 1, 1]
        }
        Op::Flatten => vec![ins[0].iter().product()],
        Op::Add => {
            if ins[0] != ins[1] {
                return Err(err("add expects equal shapes".into()));
            }
            ins[0].clone()
        }
        Op::Mul => {
            let [c, _, _] = chw(&ins[0])?;
            if ins[1] != [c, 1, 1] {
                return Err(err(format!("mul expects a [{c}, 1, 1] scale")));
            }
            ins[0].clone()
        }
        Op::Concat => {
            let [_, h, w] = chw(&ins[0])?;
            let mut c = 0;
            for s in ins {
                let [ci, hi, wi] = chw(s)?;
                if (hi, wi) != (h, w) {
                    return Err(err("concat expects equal spatial sizes".into()));
                }
                c += ci;
            }
            vec![c, h, w]
        }
    })
}

/// Pooling helper used by the architectures: `Pool2d::square`.
pub fn pool(k: usize, s: usize, p: usize) -> Pool2d {
    Pool2d::square(k, s, p)
}
