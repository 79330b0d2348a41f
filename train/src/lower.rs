//! The tch lowering of a models-spec [`Graph`]: variables named by torchvision's `state_dict` keys
//! and a forward pass that interprets the graph node by node, with torchvision's train/eval
//! semantics. `export` mirrors its `apply` op by op for ONNX.

use fer_models_spec::ops::{Activation, Conv2d, Pool2d};
use fer_models_spec::{Arch, Graph, Node, NodeId, Op, ParamKind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tch::{Device, Kind, Tensor, nn};

use crate::error::{Error, Result};

/// The variables of one node, shallow handles into the [`nn::VarStore`].
#[derive(Debug)]
enum NodeVars {
    None,
    Conv { weight: Tensor, bias: Option<Tensor> },
    BatchNorm { weight: Tensor, bias: Tensor, mean: Tensor, var: Tensor, count: Tensor },
    Linear { weight: Tensor, bias: Tensor },
}

/// A network built from a [`Graph`] on a device, with its variables in a [`nn::VarStore`].
#[derive(Debug)]
pub struct TchModel {
    graph: Graph,
    vs: nn::VarStore,
    vars: Vec<NodeVars>,
    uses: Vec<usize>,
    arch: Option<Arch>,
    /// BatchNorm momentum used instead of each node's own while recalibrating (f64 bits;
    /// `NO_OVERRIDE` when none).
    bn_momentum: AtomicU64,
    /// Set by [`TchModel::to_channels_last`].
    channels_last: AtomicBool,
}

const NO_OVERRIDE: u64 = u64::MAX;

/// What a forward pass returns: the logits and the requested taps, in request order.
#[derive(Debug)]
pub struct Forward {
    /// `[N, num_classes]`.
    pub logits: Tensor,
    /// One tensor per requested tap.
    pub taps: Vec<Tensor>,
}

/// How fresh weights are drawn: torchvision's scheme of each architecture.
#[derive(Debug, Clone, Copy)]
enum InitScheme {
    /// Conv: Kaiming normal, fan-out; Linear: N(0, 0.01), zero bias (MobileNetV3, VGG).
    Mobile,
    /// Conv: Kaiming normal, fan-out; Linear: U(±1/√out), zero bias (EfficientNet).
    Efficient,
    /// Conv: Kaiming normal, fan-out; Linear: PyTorch default U(±1/√in) (ResNet).
    Residual,
    /// Conv and Linear weights: truncated N(0, 0.1) in [-2, 2]; Linear bias PyTorch default.
    Inception,
}

/// Which fresh initialisation a model gets (config `model.weight_init`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    /// torchvision's scheme of the architecture (for Inception-v3: truncated N(0, 0.1) for
    /// every convolution and the classifier, made for importing weights rather than training
    /// from scratch).
    #[default]
    Torchvision,
    /// Kaiming normal (fan-out) convolutions and PyTorch's default Linear, as torchvision
    /// initialises ResNets, whatever the architecture.
    Kaiming,
}

fn scheme(arch: Option<Arch>, init: WeightInit) -> InitScheme {
    if init == WeightInit::Kaiming {
        return InitScheme::Residual;
    }
    match arch {
        Some(Arch::MobilenetV3Small | Arch::MobilenetV3Large | Arch::VggFer) => InitScheme::Mobile,
        Some(Arch::EfficientnetB0) => InitScheme::Efficient,
        Some(Arch::InceptionV3) => InitScheme::Inception,
        Some(Arch::Resnet18 | Arch::Resnet50) | None => InitScheme::Residual,
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn path<'a>(root: &nn::Path<'a>, dotted: &str) -> (nn::Path<'a>, String) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let leaf = parts.pop().unwrap_or_default().to_string();
    let p = parts.iter().fold(root.clone(), |p, s| p.sub(*s));
    (p, leaf)
}

/// Seeded host-side draws for one tensor: the stream depends only on the run seed and the
/// parameter's name, so initialisation does not depend on libtorch's global generator (shared by
/// every thread of the process) nor on the order in which tensors are created.
struct Draw(rand_chacha::ChaCha8Rng);

impl Draw {
    fn new(seed: u64, name: &str) -> Self {
        use rand::SeedableRng;
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(name.as_bytes());
        Draw(rand_chacha::ChaCha8Rng::from_seed(h.finalize().into()))
    }
    fn uniform(&mut self, n: usize, bound: f64) -> Vec<f32> {
        use rand::Rng;
        (0..n).map(|_| self.0.gen_range(-bound..bound) as f32).collect()
    }
    /// Normal(0, std) by Box–Muller, truncated to [-clamp, clamp].
    fn normal(&mut self, n: usize, std: f64, clamp: f64) -> Vec<f32> {
        use rand::Rng;
        (0..n)
            .map(|_| {
                let u1: f64 = 1.0 - self.0.r#gen::<f64>();
                let u2: f64 = self.0.r#gen::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (z * std).clamp(-clamp, clamp) as f32
            })
            .collect()
    }
}

fn tensor(values: Vec<f32>, shape: &[i64], dev: Device) -> Tensor {
    Tensor::from_slice(&values).reshape(shape).to_device(dev)
}

fn init_conv(
    c: &Conv2d,
    sch: InitScheme,
    name: &str,
    seed: u64,
    dev: Device,
) -> (Tensor, Option<Tensor>) {
    let shape = dims(&c.weight_shape());
    let n = shape.iter().product::<i64>() as usize;
    let mut d = Draw::new(seed, &format!("{name}.weight"));
    let w = match sch {
        InitScheme::Inception => d.normal(n, 0.1, 2.0),
        _ => {
            let fan_out = (c.out_ch * c.kernel[0] * c.kernel[1]) as f64;
            d.normal(n, (2.0 / fan_out).sqrt(), f64::INFINITY)
        }
    };
    let b = c.bias.then(|| Tensor::zeros([c.out_ch as i64], (Kind::Float, dev)));
    (tensor(w, &shape, dev), b)
}

fn init_linear(
    inf: usize,
    out: usize,
    sch: InitScheme,
    name: &str,
    seed: u64,
    dev: Device,
) -> (Tensor, Tensor) {
    let mut dw = Draw::new(seed, &format!("{name}.weight"));
    let mut db = Draw::new(seed, &format!("{name}.bias"));
    let default_bound = 1.0 / (inf as f64).sqrt();
    let (shape, n) = ([out as i64, inf as i64], out * inf);
    let zeros = vec![0f32; out];
    let (w, b) = match sch {
        InitScheme::Mobile => (dw.normal(n, 0.01, f64::INFINITY), zeros),
        InitScheme::Efficient => (dw.uniform(n, 1.0 / (out as f64).sqrt()), zeros),
        InitScheme::Residual => (dw.uniform(n, default_bound), db.uniform(out, default_bound)),
        InitScheme::Inception => (dw.normal(n, 0.1, 2.0), db.uniform(out, default_bound)),
    };
    (tensor(w, &shape, dev), tensor(b, &[out as i64], dev))
}

impl TchModel {
    /// Creates the variables of `graph` on `device` with torchvision's initialisation scheme for
    /// `arch`, drawn from a stream keyed by `seed` and each parameter's name (the same seed gives
    /// the same weights, whatever else the process does).
    pub fn new(graph: Graph, arch: Option<Arch>, device: Device, seed: u64) -> Result<Self> {
        Self::with_init(graph, arch, WeightInit::Torchvision, device, seed)
    }

    /// [`TchModel::new`] with the fresh weights drawn by `init` instead of torchvision's scheme
    /// of `arch`.
    pub fn with_init(
        graph: Graph,
        arch: Option<Arch>,
        init: WeightInit,
        device: Device,
        seed: u64,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let sch = scheme(arch, init);
        let mut vars = Vec::with_capacity(graph.nodes.len());
        for node in &graph.nodes {
            let var = |name: &str, t: Tensor, trainable: bool| {
                let (p, leaf) = path(&root, &format!("{}.{name}", node.name));
                p.add(&leaf, t, trainable)
            };
            let v = match &node.op {
                Op::Conv2d(c) => {
                    let (w, b) = init_conv(c, sch, &node.name, seed, device);
                    NodeVars::Conv {
                        weight: var("weight", w, true),
                        bias: b.map(|b| var("bias", b, true)),
                    }
                }
                Op::BatchNorm2d(bn) => {
                    let n = [bn.num_features as i64];
                    let f = (Kind::Float, device);
                    NodeVars::BatchNorm {
                        weight: var("weight", Tensor::ones(n, f), true),
                        bias: var("bias", Tensor::zeros(n, f), true),
                        mean: var("running_mean", Tensor::zeros(n, f), false),
                        var: var("running_var", Tensor::ones(n, f), false),
                        count: var(
                            "num_batches_tracked",
                            Tensor::zeros([], (Kind::Int64, device)),
                            false,
                        ),
                    }
                }
                Op::Linear(l) => {
                    let (w, b) =
                        init_linear(l.in_features, l.out_features, sch, &node.name, seed, device);
                    NodeVars::Linear { weight: var("weight", w, true), bias: var("bias", b, true) }
                }
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
                | Op::Concat => NodeVars::None,
            };
            vars.push(v);
        }
        let uses = graph.use_counts();
        Ok(TchModel {
            graph,
            vs,
            vars,
            uses,
            arch,
            bn_momentum: AtomicU64::new(NO_OVERRIDE),
            channels_last: AtomicBool::new(false),
        })
    }

    /// Sets to zero the scale (`weight`) of the batch norm that ends each residual branch
    /// ([`Graph::residual_branch_norms`]), so that every residual block starts as the identity
    /// (Goyal et al. 2017, torchvision's `zero_init_residual` for ResNets; config
    /// `model.zero_init_residual`). Returns the names of the batch norms zeroed.
    pub fn zero_init_residual(&self) -> Vec<String> {
        let norms = self.graph.residual_branch_norms();
        for id in &norms {
            if let NodeVars::BatchNorm { weight, .. } = &self.vars[id.0] {
                tch::no_grad(|| {
                    let _ = weight.shallow_clone().zero_();
                });
            }
        }
        norms.iter().map(|id| self.graph.node(*id).name.clone()).collect()
    }

    /// The graph this model lowers.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The architecture used for initialisation, if known.
    pub fn arch(&self) -> Option<Arch> {
        self.arch
    }

    /// The variable store (for optimizers and device moves).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Mutable variable store.
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// The device the variables live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Logits for a `[N, C, H, W]` batch; `train` selects torchvision's training semantics
    /// (batch statistics and running-stat updates in BatchNorm, dropout, stochastic depth).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.forward_taps(x, train, &[])?.logits)
    }

    /// Logits and the named taps (for example [`fer_models_spec::EMBEDDING_TAP`]).
    pub fn forward_taps(&self, x: &Tensor, train: bool, taps: &[&str]) -> Result<Forward> {
        let want = self.graph.input_shape();
        let got = x.size();
        if got.len() != 4 || got[1..].iter().zip(want).any(|(g, w)| *g != *w as i64) {
            return Err(Error::Input(format!(
                "expected a [N, {}, {}, {}] batch, got {got:?}",
                want[0], want[1], want[2]
            )));
        }
        let tap_ids = taps
            .iter()
            .map(|t| {
                self.graph.tap(t).ok_or_else(|| {
                    let known: Vec<_> = self.graph.taps.iter().map(|(n, _)| n.as_str()).collect();
                    Error::Input(format!("no tap `{t}` (known: {})", known.join(", ")))
                })
            })
            .collect::<Result<Vec<NodeId>>>()?;
        let momentum = match self.bn_momentum.load(Ordering::Relaxed) {
            NO_OVERRIDE => None,
            bits => Some(f64::from_bits(bits)),
        };
        let mut remaining = self.uses.clone();
        let mut values: Vec<Option<Tensor>> = Vec::with_capacity(self.graph.nodes.len());
        let mut tapped: Vec<Option<Tensor>> = (0..taps.len()).map(|_| None).collect();
        for (i, node) in self.graph.nodes.iter().enumerate() {
            let out = if i == 0 {
                x.shallow_clone()
            } else {
                let inputs: Vec<&Tensor> = node
                    .inputs
                    .iter()
                    .map(|id| values[id.0].as_ref().expect("live input"))
                    .collect();
                let out = apply(node, &self.vars[i], &inputs, train, momentum);
                for id in &node.inputs {
                    remaining[id.0] -= 1;
                    if remaining[id.0] == 0 {
                        values[id.0] = None;
                    }
                }
                out
            };
            for (k, id) in tap_ids.iter().enumerate() {
                if id.0 == i {
                    tapped[k] = Some(out.shallow_clone());
                }
            }
            values.push(Some(out));
        }
        let logits = values[self.graph.output.0].take().expect("output computed");
        Ok(Forward { logits, taps: tapped.into_iter().map(|t| t.expect("tap computed")).collect() })
    }

    /// Lays every 4-d variable (the convolution weights) out as channels-last (NHWC), which
    /// makes libtorch pick cuDNN's NHWC kernels (faster with bf16/fp16 tensor cores). The values,
    /// names and the optimizer's view of the variables are unchanged.
    pub fn to_channels_last(&self) -> Result<()> {
        for (_, _, t) in self.named_tensors() {
            if t.dim() == 4 {
                crate::extras::channels_last_(&t)?;
            }
        }
        self.channels_last.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the convolution weights are laid out channels-last (see
    /// [`TchModel::to_channels_last`]).
    pub fn is_channels_last(&self) -> bool {
        self.channels_last.load(Ordering::Relaxed)
    }

    /// Precise BatchNorm: replaces every BatchNorm's running mean and variance by their plain
    /// average over `batches` (forward passes in training mode, without gradient; batch `i`
    /// enters with momentum `1/(i+1)`, which makes the exponential average a cumulative one).
    /// Weights and `num_batches_tracked` are unchanged. Returns the number of batches used.
    pub fn recalibrate_bn<I>(&self, batches: I) -> Result<usize>
    where
        I: IntoIterator<Item = Result<Tensor>>,
    {
        struct Reset<'a>(&'a AtomicU64);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.store(NO_OVERRIDE, Ordering::Relaxed);
            }
        }
        let _reset = Reset(&self.bn_momentum);
        let mut n = 0usize;
        for x in batches {
            let x = x?;
            self.bn_momentum.store((1.0 / (n as f64 + 1.0)).to_bits(), Ordering::Relaxed);
            let _ = tch::no_grad(|| self.forward_t(&x, true))?;
            n += 1;
        }
        Ok(n)
    }

    /// Every named tensor of the model, in graph order, as `(name, kind, tensor)`.
    pub fn named_tensors(&self) -> Vec<(String, ParamKind, Tensor)> {
        let named = self.vs.variables();
        self.graph
            .params()
            .into_iter()
            .filter_map(|p| named.get(&p.name).map(|t| (p.name, p.kind, t.shallow_clone())))
            .collect()
    }
}

/// Applies one node's op: the single place where the IR meets libtorch.
/// `bn_momentum` replaces BatchNorm's own momentum (and leaves its batch counter alone) during
/// [`TchModel::recalibrate_bn`].
fn apply(
    node: &Node,
    vars: &NodeVars,
    x: &[&Tensor],
    train: bool,
    bn_momentum: Option<f64>,
) -> Tensor {
    match (&node.op, vars) {
        (Op::Conv2d(c), NodeVars::Conv { weight, bias }) => x[0].conv2d(
            weight,
            bias.as_ref(),
            dims(&c.stride),
            dims(&c.padding),
            dims(&c.dilation),
            c.groups as i64,
        ),
        (Op::BatchNorm2d(bn), NodeVars::BatchNorm { weight, bias, mean, var, count }) => {
            if train && bn_momentum.is_none() {
                tch::no_grad(|| {
                    let _ = count.shallow_clone().g_add_scalar_(1);
                });
            }
            Tensor::batch_norm(
                x[0],
                Some(weight),
                Some(bias),
                Some(mean),
                Some(var),
                train,
                bn_momentum.unwrap_or(bn.momentum),
                bn.eps,
                true,
            )
        }
        (Op::Linear(_), NodeVars::Linear { weight, bias }) => x[0].linear(weight, Some(bias)),
        (Op::Activation(a), _) => match a {
            Activation::Relu => x[0].relu(),
            Activation::Hardswish => x[0].hardswish(),
            Activation::Hardsigmoid => x[0].hardsigmoid(),
            Activation::Silu => x[0].silu(),
            Activation::Sigmoid => x[0].sigmoid(),
        },
        (Op::MaxPool2d(p), _) => {
            x[0].max_pool2d(dims(&p.kernel), dims(&p.stride), dims(&p.padding), [1, 1], false)
        }
        (Op::AvgPool2d(Pool2d { kernel, stride, padding, count_include_pad }), _) => x[0]
            .avg_pool2d(dims(kernel), dims(stride), dims(padding), false, *count_include_pad, None),
        (Op::GlobalAvgPool, _) => x[0].adaptive_avg_pool2d([1, 1]),
        (Op::Flatten, _) => x[0].flatten(1, -1),
        (Op::Dropout { p }, _) => x[0].dropout(*p, train),
        (Op::StochasticDepth { p }, _) => {
            if !train || *p == 0.0 {
                x[0].shallow_clone()
            } else {
                let survival = 1.0 - p;
                let n = x[0].size()[0];
                let noise = Tensor::empty([n, 1, 1, 1], (x[0].kind(), x[0].device()))
                    .bernoulli_float_(survival)
                    / survival;
                x[0] * noise
            }
        }
        (Op::Add, _) => x[0] + x[1],
        (Op::Mul, _) => x[0] * x[1],
        (Op::Concat, _) => Tensor::cat(x, 1),
        (Op::Input, _) | (Op::Conv2d(_) | Op::BatchNorm2d(_) | Op::Linear(_), _) => {
            unreachable!("node `{}`: variables do not match its op", node.name)
        }
    }
}
