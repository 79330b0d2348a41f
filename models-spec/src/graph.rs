//! The graph IR: a topologically ordered list of nodes, each one op of a closed set.

use serde::{Deserialize, Serialize};

use crate::ops::{Activation, BatchNorm2d, Conv2d, Linear, Pool2d};

/// Index of a node in [`Graph::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub usize);

/// Shape of one sample (the batch axis is implicit): `[C, H, W]` or `[F]`.
pub type Shape = Vec<usize>;

/// The closed set of ops. Both lowerings (tch in `train`, ONNX in `export`) match it exhaustively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The image batch `[N, C, H, W]`, float, already normalised.
    Input,
    /// Convolution; parameters `{name}.weight` and, with a bias, `{name}.bias`.
    Conv2d(Conv2d),
    /// Batch normalisation; parameters `{name}.weight`, `{name}.bias`, buffers
    /// `{name}.running_mean`, `{name}.running_var`, `{name}.num_batches_tracked`.
    BatchNorm2d(BatchNorm2d),
    /// Fully connected layer on `[N, F]`; parameters `{name}.weight`, `{name}.bias`.
    Linear(Linear),
    /// Point-wise activation.
    Activation(Activation),
    /// Max pooling (floor mode).
    MaxPool2d(Pool2d),
    /// Average pooling (floor mode).
    AvgPool2d(Pool2d),
    /// Adaptive average pooling to `1×1`, keeping `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// `[N, C, 1, 1]` (or any `[N, ...]`) to `[N, C·…]`.
    Flatten,
    /// Element-wise dropout with probability `p` in training, identity in eval.
    Dropout {
        /// Drop probability.
        p: f64,
    },
    /// torchvision's `StochasticDepth(p, "row")`: in training, drops the whole sample's residual
    /// branch with probability `p` and scales survivors by `1/(1-p)`; identity in eval.
    StochasticDepth {
        /// Drop probability.
        p: f64,
    },
    /// Element-wise sum of two inputs of equal shape. In a residual block the inputs are
    /// `[branch, shortcut]`, in that order ([`Graph::residual_branch_norms`] relies on it).
    Add,
    /// Product of `[C, H, W]` and a per-channel scale `[C, 1, 1]` (squeeze-excitation).
    Mul,
    /// Concatenation of `[C_i, H, W]` inputs along channels, in input order.
    Concat,
}

/// Kind of a named tensor owned by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    /// Trained by the optimizer (`torch.nn.Parameter`).
    Trainable,
    /// Float buffer updated in training mode (BatchNorm running mean/var).
    Buffer,
    /// Integer step counter (`num_batches_tracked`, int64).
    Counter,
}

/// A named tensor of the model, as it appears in a torchvision `state_dict`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamInfo {
    /// Full name, for example `features.0.0.weight`.
    pub name: String,
    /// Tensor shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Parameter, buffer or counter.
    pub kind: ParamKind,
}

/// One node: an op applied to earlier nodes' outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Module path; for ops with parameters, the prefix of their `state_dict` keys.
    pub name: String,
    /// What the node computes.
    pub op: Op,
    /// Inputs, all earlier in [`Graph::nodes`].
    pub inputs: Vec<NodeId>,
    /// Per-sample output shape.
    pub shape: Shape,
}

impl Node {
    /// The named tensors this node owns, in torchvision's `state_dict` order.
    pub fn params(&self) -> Vec<ParamInfo> {
        let p = |suffix: &str, shape: Vec<usize>, kind| ParamInfo {
            name: format!("{}.{suffix}", self.name),
            shape,
            kind,
        };
        match &self.op {
            Op::Conv2d(c) => {
                let mut v = vec![p("weight", c.weight_shape(), ParamKind::Trainable)];
                if c.bias {
                    v.push(p("bias", vec![c.out_ch], ParamKind::Trainable));
                }
                v
            }
            Op::BatchNorm2d(bn) => {
                let c = bn.num_features;
                vec![
                    p("weight", vec![c], ParamKind::Trainable),
                    p("bias", vec![c], ParamKind::Trainable),
                    p("running_mean", vec![c], ParamKind::Buffer),
                    p("running_var", vec![c], ParamKind::Buffer),
                    p("num_batches_tracked", vec![], ParamKind::Counter),
                ]
            }
            Op::Linear(l) => vec![
                p("weight", vec![l.out_features, l.in_features], ParamKind::Trainable),
                p("bias", vec![l.out_features], ParamKind::Trainable),
            ],
            Op::Input
            | Op::Activation(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Dropout { .. }
            | Op::StochasticDepth { .. }
            | Op::Add
            | Op::Mul
            | Op::Concat => vec![],
        }
    }
}

/// A whole network: nodes in topological order, one input, one output (the logits), named taps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Nodes; node 0 is the input.
    pub nodes: Vec<Node>,
    /// The logits node, `[num_classes]`.
    pub output: NodeId,
    /// Named intermediate outputs, for example `embedding` (the pooled features before the
    /// classifier, used by relational KD and exported as an optional second output).
    pub taps: Vec<(String, NodeId)>,
}

/// Name of the tap every architecture provides: the pooled, flattened features that enter the
/// classifier head.
pub const EMBEDDING_TAP: &str = "embedding";

impl Graph {
    /// The node behind `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// Per-sample input shape `[C, H, W]`.
    pub fn input_shape(&self) -> &[usize] {
        &self.nodes[0].shape
    }

    /// Number of classes (the output width).
    pub fn num_classes(&self) -> usize {
        self.node(self.output).shape[0]
    }

    /// Node of the tap called `name`, if there is one.
    pub fn tap(&self, name: &str) -> Option<NodeId> {
        self.taps.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    /// Every named tensor, in module order (torchvision's `state_dict` order).
    pub fn params(&self) -> Vec<ParamInfo> {
        self.nodes.iter().flat_map(Node::params).collect()
    }

    /// Number of trainable scalars, as `sum(p.numel() for p in model.parameters())`.
    pub fn num_trainable(&self) -> usize {
        self.params()
            .iter()
            .filter(|p| p.kind == ParamKind::Trainable)
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }

    /// The batch norms that end residual branches: for every [`Op::Add`], its first input
    /// (the branch, by the convention [`Op::Add`] states), read through stochastic depth,
    /// when that is a batch norm. In graph order; empty for a network without residual blocks.
    pub fn residual_branch_norms(&self) -> Vec<NodeId> {
        let mut norms = Vec::new();
        for node in self.nodes.iter().filter(|n| n.op == Op::Add) {
            let mut id = node.inputs[0];
            while matches!(self.node(id).op, Op::StochasticDepth { .. }) {
                id = self.node(id).inputs[0];
            }
            if matches!(self.node(id).op, Op::BatchNorm2d(_)) {
                norms.push(id);
            }
        }
        norms
    }

    /// For each node, how many later nodes read it (the output and taps count once each).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for i in &n.inputs {
                uses[i.0] += 1;
            }
        }
        uses[self.output.0] += 1;
        for (_, id) in &self.taps {
            uses[id.0] += 1;
        }
        uses
    }
}
