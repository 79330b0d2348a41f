//! Graph + weights → ONNX nodes and initializers: one exhaustive `match` over [`Op`].

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use fer_checkpoint::{TensorData, TensorMap};
use fer_models_spec::ops::Activation;
use fer_models_spec::{Graph, Node, NodeId, Op};
use tract_onnx::pb::{NodeProto, TensorProto};

use crate::error::{Error, Result};
use crate::fold::{BnParams, fold_conv_bn, fold_plan};
use crate::proto::{Attr, ints, node, tensor_f32};

/// Name of the graph input.
pub const INPUT_NAME: &str = "input";
/// Name of the logits output.
pub const LOGITS_NAME: &str = "logits";
/// Name of the optional embedding output.
pub const EMBEDDING_NAME: &str = "embedding";

/// The lowered graph body.
pub(crate) struct Lowered {
    /// Nodes in topological order.
    pub nodes: Vec<NodeProto>,
    /// Initializers in first-use order, named after the torchvision parameters.
    pub initializers: Vec<TensorProto>,
}

struct Ctx<'a> {
    graph: &'a Graph,
    weights: &'a TensorMap,
    /// Convolution → the BatchNorm folded into it.
    fold: HashMap<NodeId, NodeId>,
    /// BatchNorms folded away.
    folded: HashSet<NodeId>,
    /// Nodes whose output must carry a fixed name (`logits`, `embedding`).
    fixed: HashMap<NodeId, &'static str>,
    /// ONNX value name of each lowered node's output.
    names: Vec<String>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

/// Lowers every node of `graph`. `embedding` is the node exported as the `embedding` output.
pub(crate) fn lower(
    graph: &Graph,
    weights: &TensorMap,
    fold_bn: bool,
    embedding: Option<NodeId>,
) -> Result<Lowered> {
    let fold = if fold_bn { fold_plan(graph) } else { HashMap::new() };
    let folded = fold.values().copied().collect();
    let mut fixed = HashMap::from([(graph.output, LOGITS_NAME)]);
    if let Some(e) = embedding {
        if e == graph.output {
            return Err(Error::Graph("the embedding tap is the logits node".into()));
        }
        fixed.insert(e, EMBEDDING_NAME);
    }
    let mut cx = Ctx {
        graph,
        weights,
        fold,
        folded,
        fixed,
        names: Vec::with_capacity(graph.nodes.len()),
        nodes: vec![],
        inits: vec![],
    };
    for (i, n) in graph.nodes.iter().enumerate() {
        cx.lower_node(NodeId(i), n)?;
    }
    check_unique_values(&cx.nodes, &cx.inits)?;
    Ok(Lowered { nodes: cx.nodes, initializers: cx.inits })
}

/// ONNX requires every value (node output, initializer, input) to be defined once.
fn check_unique_values(nodes: &[NodeProto], inits: &[TensorProto]) -> Result<()> {
    let mut seen = HashSet::from([INPUT_NAME]);
    let produced = nodes.iter().flat_map(|n| n.output.iter()).map(String::as_str);
    for name in produced.chain(inits.iter().map(|t| t.name.as_str())) {
        if !seen.insert(name) {
            return Err(Error::Graph(format!("value name `{name}` is defined twice")));
        }
    }
    Ok(())
}

impl Ctx<'_> {
    /// Float values of parameter `name`, checked against the shape the graph expects.
    fn f32(&self, name: &str, expected: &[usize]) -> Result<&[f32]> {
        let missing = || Error::MissingTensor { name: name.into(), expected: expected.to_vec() };
        let t = self.weights.get(name).ok_or_else(missing)?;
        if t.shape != expected {
            return Err(Error::ShapeMismatch {
                name: name.into(),
                expected: expected.to_vec(),
                got: t.shape.clone(),
            });
        }
        match &t.data {
            TensorData::F32(v) if v.len() == t.numel() => Ok(v),
            TensorData::F32(v) => Err(Error::ShapeMismatch {
                name: name.into(),
                expected: expected.to_vec(),
                got: vec![v.len()],
            }),
            TensorData::I64(_) => {
                Err(Error::DtypeMismatch { name: name.into(), expected: "f32", got: "i64" })
            }
        }
    }

    fn init(&mut self, name: &str, shape: &[usize], values: &[f32]) {
        self.inits.push(tensor_f32(name, shape, values));
    }

    /// Value name of input `k` of `n`.
    fn input(&self, n: &Node, k: usize) -> String {
        self.names[n.inputs[k].0].clone()
    }

    /// The name this node's output gets.
    fn out_name(&self, id: NodeId, n: &Node) -> String {
        self.fixed.get(&id).map_or_else(|| n.name.clone(), |s| s.to_string())
    }

    /// Emits one node `op_type` reading `inputs`, named after the graph node.
    fn emit(
        &mut self,
        id: NodeId,
        n: &Node,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) {
        let out = self.out_name(id, n);
        self.nodes.push(node(op_type, &n.name, inputs, &[&out], attrs));
        self.names.push(out);
    }

    /// An identity in eval mode: the output is the input value, or an `Identity` node when the
    /// output must carry a fixed name.
    fn alias(&mut self, id: NodeId, n: &Node) {
        let src = self.input(n, 0);
        match self.fixed.get(&id) {
            Some(fixed) => {
                self.nodes.push(node("Identity", &n.name, &[&src], &[fixed], vec![]));
                self.names.push(fixed.to_string());
            }
            None => self.names.push(src),
        }
    }

    fn pool_attrs(p: &fer_models_spec::ops::Pool2d) -> Vec<(&'static str, Attr)> {
        let [ph, pw] = p.padding;
        vec![
            ("kernel_shape", Attr::Ints(ints(&p.kernel))),
            ("strides", Attr::Ints(ints(&p.stride))),
            ("pads", Attr::Ints(ints(&[ph, pw, ph, pw]))),
            ("ceil_mode", Attr::Int(0)),
        ]
    }

    fn lower_node(&mut self, id: NodeId, n: &Node) -> Result<()> {
        match &n.op {
            Op::Input => self.names.push(INPUT_NAME.to_string()),
            Op::Conv2d(c) => {
                let x = self.input(n, 0);
                let (wn, bn_name) = (format!("{}.weight", n.name), format!("{}.bias", n.name));
                let w = self.f32(&wn, &c.weight_shape())?;
                let b = if c.bias { Some(self.f32(&bn_name, &[c.out_ch])?) } else { None };
                let (w, b): (Cow<[f32]>, Option<Cow<[f32]>>) = match self.fold.get(&id) {
                    Some(&bn_id) => {
                        let bn_node = self.graph.node(bn_id);
                        let Op::BatchNorm2d(cfg) = bn_node.op else {
                            return Err(Error::Graph(format!(
                                "{} is not a batch norm",
                                bn_node.name
                            )));
                        };
                        let p = |s: &str| format!("{}.{s}", bn_node.name);
                        let ch = [c.out_ch];
                        let bn = BnParams {
                            weight: self.f32(&p("weight"), &ch)?,
                            bias: self.f32(&p("bias"), &ch)?,
                            mean: self.f32(&p("running_mean"), &ch)?,
                            var: self.f32(&p("running_var"), &ch)?,
                            eps: cfg.eps,
                        };
                        let (w2, b2) = fold_conv_bn(w, b, &bn);
                        (Cow::Owned(w2), Some(Cow::Owned(b2)))
                    }
                    None => (Cow::Borrowed(w), b.map(Cow::Borrowed)),
                };
                let (w, b) = (w.into_owned(), b.map(Cow::into_owned));
                self.init(&wn, &c.weight_shape(), &w);
                let mut inputs = vec![x.as_str(), wn.as_str()];
                if let Some(b) = &b {
                    self.init(&bn_name, &[c.out_ch], b);
                    inputs.push(&bn_name);
                }
                let [ph, pw] = c.padding;
                let attrs = vec![
                    ("kernel_shape", Attr::Ints(ints(&c.kernel))),
                    ("strides", Attr::Ints(ints(&c.stride))),
                    ("pads", Attr::Ints(ints(&[ph, pw, ph, pw]))),
                    ("dilations", Attr::Ints(ints(&c.dilation))),
                    ("group", Attr::Int(c.groups as i64)),
                ];
                self.emit(id, n, "Conv", &inputs, attrs);
            }
            Op::BatchNorm2d(cfg) => {
                if self.folded.contains(&id) {
                    self.alias(id, n);
                    return Ok(());
                }
                let x = self.input(n, 0);
                let ch = [cfg.num_features];
                let names: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
                    .iter()
                    .map(|s| format!("{}.{s}", n.name))
                    .collect();
                for name in &names {
                    let v = self.f32(name, &ch)?.to_vec();
                    self.init(name, &ch, &v);
                }
                let attrs = vec![
                    ("epsilon", Attr::Float(cfg.eps as f32)),
                    // ONNX's momentum weighs the old statistics; PyTorch's the new ones.
                    ("momentum", Attr::Float((1.0 - cfg.momentum) as f32)),
                ];
                let inputs: Vec<&str> =
                    std::iter::once(x.as_str()).chain(names.iter().map(String::as_str)).collect();
                self.emit(id, n, "BatchNormalization", &inputs, attrs);
            }
            Op::Linear(l) => {
                let x = self.input(n, 0);
                let (wn, bn_name) = (format!("{}.weight", n.name), format!("{}.bias", n.name));
                let w = self.f32(&wn, &[l.out_features, l.in_features])?.to_vec();
                let b = self.f32(&bn_name, &[l.out_features])?.to_vec();
                self.init(&wn, &[l.out_features, l.in_features], &w);
                self.init(&bn_name, &[l.out_features], &b);
                let attrs = vec![("transB", Attr::Int(1))];
                self.emit(id, n, "Gemm", &[&x, &wn, &bn_name], attrs);
            }
            Op::Activation(a) => {
                let x = self.input(n, 0);
                match a {
                    Activation::Relu => self.emit(id, n, "Relu", &[&x], vec![]),
                    Activation::Hardswish => self.emit(id, n, "HardSwish", &[&x], vec![]),
                    Activation::Hardsigmoid => {
                        // PyTorch: relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1).
                        let attrs =
                            vec![("alpha", Attr::Float(1.0 / 6.0)), ("beta", Attr::Float(0.5))];
                        self.emit(id, n, "HardSigmoid", &[&x], attrs);
                    }
                    Activation::Sigmoid => self.emit(id, n, "Sigmoid", &[&x], vec![]),
                    Activation::Silu => {
                        let sig = format!("{}.sigmoid", n.name);
                        self.nodes.push(node("Sigmoid", &sig, &[&x], &[&sig], vec![]));
                        self.emit(id, n, "Mul", &[&x, &sig], vec![]);
                    }
                }
            }
            Op::MaxPool2d(p) => {
                let x = self.input(n, 0);
                self.emit(id, n, "MaxPool", &[&x], Self::pool_attrs(p));
            }
            Op::AvgPool2d(p) => {
                let x = self.input(n, 0);
                let mut attrs = Self::pool_attrs(p);
                attrs.push(("count_include_pad", Attr::Int(i64::from(p.count_include_pad))));
                self.emit(id, n, "AveragePool", &[&x], attrs);
            }
            Op::GlobalAvgPool => {
                let x = self.input(n, 0);
                self.emit(id, n, "GlobalAveragePool", &[&x], vec![]);
            }
            Op::Flatten => {
                let x = self.input(n, 0);
                self.emit(id, n, "Flatten", &[&x], vec![("axis", Attr::Int(1))]);
            }
            Op::Dropout { .. } | Op::StochasticDepth { .. } => self.alias(id, n),
            Op::Add | Op::Mul => {
                let (a, b) = (self.input(n, 0), self.input(n, 1));
                let op_type = if n.op == Op::Add { "Add" } else { "Mul" };
                self.emit(id, n, op_type, &[&a, &b], vec![]);
            }
            Op::Concat => {
                let xs: Vec<String> = (0..n.inputs.len()).map(|k| self.input(n, k)).collect();
                let xs: Vec<&str> = xs.iter().map(String::as_str).collect();
                self.emit(id, n, "Concat", &xs, vec![("axis", Attr::Int(1))]);
            }
        }
        Ok(())
    }
}
