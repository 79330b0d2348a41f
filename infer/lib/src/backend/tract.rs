//! tract: pure-Rust inference on the CPU, for any graph.
//!
//! The model is parsed and decluttered once with the signature's symbolic axes (the
//! classifier's batch axis `N`); runnable plans are optimised per concrete input shape on
//! first use and cached (a signature without symbolic axes, like the face detector's, gets its
//! one plan when it is opened).
//!
//! The classifier runs a batch of `N` as `N` passes of the batch-1 plan
//! ([`Runner::prefers_single_images`]): tract's plans for `N > 1` add transposes (`MoveAxis`)
//! and unfused bias additions around every convolution, and its depthwise convolution gets
//! slower per image, so a batch-32 plan costs 1.5–2.5× more per image than 32 single passes
//! (profiles in `docs/benchmarks.md`). [`super::Classifier::with_batch_plans`] turns batched
//! plans back on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::pb::{AttributeProto, ModelProto, TensorProto, attribute_proto, tensor_proto};
use tract_onnx::prelude::*;

use super::{Runner, Signature};
use crate::error::{Error, Result};
use crate::onnx_file::{Dim, OnnxFile};

type Plan = Arc<TypedRunnableModel>;

/// A tract model with a plan cache keyed by the concrete input shapes.
pub struct TractRunner {
    /// Decluttered, with the signature's symbolic axes.
    model: TypedModel,
    /// The symbol of each input axis that is not fixed (`None` for fixed axes).
    symbols: Vec<Vec<Option<Symbol>>>,
    plans: HashMap<Vec<Vec<usize>>, Plan>,
    /// Model input slot of each signature input, model output slot of each signature output.
    input_slots: Vec<usize>,
    output_slots: Vec<usize>,
    executor: Option<Executor>,
    sig: Signature,
    path: PathBuf,
}

/// ONNX `ConstantOfShape` without its optional `value` attribute means a float zero; tract
/// 0.23 refuses such nodes, so the attribute is written out before loading. Returns how many
/// nodes were completed.
fn fill_constant_of_shape(model: &mut ModelProto) -> usize {
    let mut fixed = 0;
    if let Some(g) = model.graph.as_mut() {
        for n in g.node.iter_mut().filter(|n| n.op_type == "ConstantOfShape") {
            if n.attribute.iter().any(|a| a.name == "value") {
                continue;
            }
            let zero = TensorProto {
                dims: vec![1],
                data_type: tensor_proto::DataType::Float as i32,
                float_data: vec![0.0],
                ..Default::default()
            };
            n.attribute.push(AttributeProto {
                name: "value".into(),
                r#type: attribute_proto::AttributeType::Tensor as i32,
                t: Some(zero),
                ..Default::default()
            });
            fixed += 1;
        }
    }
    fixed
}

impl TractRunner {
    /// Parses `file` into tract, fed and read as `sig` says. `threads` > 1 runs matrix
    /// products on a private pool.
    pub fn new(file: &OnnxFile, sig: Signature, threads: Option<usize>) -> Result<Self> {
        sig.check(file)?;
        let what = format!("loading {}", file.path.display());
        let mut proto = file.proto.clone();
        let needs_fill = proto.graph.as_ref().is_some_and(|g| {
            g.node.iter().any(|n| {
                n.op_type == "ConstantOfShape" && n.attribute.iter().all(|a| a.name != "value")
            })
        });
        if needs_fill {
            fill_constant_of_shape(Arc::make_mut(&mut proto));
        }
        let mut model =
            tract_onnx::onnx().model_for_proto_model(&proto).map_err(|e| Error::tract(&what, e))?;
        let graph_inputs: Vec<String> = file.graph_inputs().into_iter().map(|d| d.name).collect();
        let input_slots: Vec<usize> = sig
            .inputs
            .iter()
            .map(|d| graph_inputs.iter().position(|n| *n == d.name).unwrap_or(0))
            .collect();
        let output_slots: Vec<usize> = sig
            .outputs
            .iter()
            .map(|o| file.outputs.iter().position(|g| &g.name == o).unwrap_or(0))
            .collect();
        let mut symbols = Vec::with_capacity(sig.inputs.len());
        for (decl, &slot) in sig.inputs.iter().zip(&input_slots) {
            let Some(dims) = &decl.shape else {
                symbols.push(Vec::new());
                continue;
            };
            let mut syms = Vec::with_capacity(dims.len());
            let mut facts: TVec<TDim> = tvec![];
            for (j, d) in dims.iter().enumerate() {
                match d {
                    Dim::Fixed(n) => {
                        syms.push(None);
                        facts.push(n.to_dim());
                    }
                    Dim::Symbol(s) => {
                        let name =
                            if s.is_empty() { format!("{}_{j}", decl.name) } else { s.clone() };
                        let sym = model.symbols.sym(&name);
                        facts.push(sym.to_dim());
                        syms.push(Some(sym));
                    }
                }
            }
            symbols.push(syms);
            let fact = InferenceFact::dt_shape(f32::datum_type(), facts);
            model = model.with_input_fact(slot, fact).map_err(|e| Error::tract(&what, e))?;
        }
        let model = model
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(|e| Error::tract(&what, e))?;
        let executor = match threads {
            Some(t) if t > 1 => Some(Executor::multithread_with_name(t, "fer-tract")),
            _ => None,
        };
        let mut runner = TractRunner {
            model,
            symbols,
            plans: HashMap::new(),
            input_slots,
            output_slots,
            executor,
            sig,
            path: file.path.clone(),
        };
        let fixed: Option<Vec<Vec<usize>>> = runner
            .sig
            .inputs
            .iter()
            .map(|d| {
                d.shape
                    .as_ref()?
                    .iter()
                    .map(|a| match a {
                        Dim::Fixed(n) => Some(*n),
                        Dim::Symbol(_) => None,
                    })
                    .collect()
            })
            .collect();
        if let Some(shapes) = fixed {
            runner.plan(&shapes)?;
        }
        Ok(runner)
    }

    /// The plan for inputs of these shapes, optimised on first use.
    fn plan(&mut self, shapes: &[Vec<usize>]) -> Result<Plan> {
        if let Some(p) = self.plans.get(shapes) {
            return Ok(p.clone());
        }
        let start = Instant::now();
        let mut subs = HashMap::new();
        for (syms, shape) in self.symbols.iter().zip(shapes) {
            for (s, n) in syms.iter().zip(shape) {
                if let Some(s) = s {
                    subs.insert(s.clone(), (*n as i64).to_dim());
                }
            }
        }
        let what = format!("optimising {} for inputs {shapes:?}", self.path.display());
        let plan = self
            .model
            .set_symbols(&subs)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| Error::tract(&what, e))?;
        tracing::debug!(?shapes, elapsed = ?start.elapsed(), "tract plan ready");
        self.plans.insert(shapes.to_vec(), plan.clone());
        Ok(plan)
    }

    /// The inputs as tract tensors in model slot order, with their plan.
    fn prepare(&mut self, inputs: &[ArrayViewD<'_, f32>]) -> Result<(Plan, TVec<TValue>)> {
        self.sig.check_inputs(inputs)?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|x| x.shape().to_vec()).collect();
        let plan = self.plan(&shapes)?;
        let mut slots: Vec<(usize, TValue)> = Vec::with_capacity(inputs.len());
        for (x, &slot) in inputs.iter().zip(&self.input_slots) {
            let x = x.as_standard_layout();
            let data = x.as_slice().ok_or_else(|| Error::invalid("input", "not contiguous"))?;
            let t = Tensor::from_shape(x.shape(), data)
                .map_err(|e| Error::tract("wrapping the input batch", e))?;
            slots.push((slot, t.into()));
        }
        slots.sort_by_key(|(slot, _)| *slot);
        Ok((plan, slots.into_iter().map(|(_, t)| t).collect()))
    }

    /// Times every node of the plan for `input`'s batch size over `iters` runs and sums the
    /// time per operator kind (for example `Conv`, `OptMatMul`), most expensive first.
    pub fn profile(&mut self, inputs: &[ArrayViewD<'_, f32>], iters: usize) -> Result<Vec<OpTime>> {
        let (plan, tensors) = self.prepare(inputs)?;
        let mut totals: HashMap<String, (Duration, usize)> = HashMap::new();
        let mut state = tract_onnx::tract_core::internal::SimpleState::new(&plan)
            .map_err(|e| Error::tract("profiling", e))?;
        for _ in 0..iters.max(1) {
            let t = tensors.clone();
            let run = || {
                state.run_plan_with_eval(t, |ctx, st, node, inputs| {
                    let start = Instant::now();
                    let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
                    let e = totals.entry(node.op().name().to_string()).or_default();
                    e.0 += start.elapsed();
                    e.1 += 1;
                    r
                })
            };
            match &self.executor {
                Some(ex) => multithread_tract_scope(ex.clone(), run),
                None => run(),
            }
            .map_err(|e| Error::tract("profiling", e))?;
        }
        let n = iters.max(1) as f64;
        let mut out: Vec<OpTime> = totals
            .into_iter()
            .map(|(op, (d, count))| OpTime {
                op,
                ms_per_run: d.as_secs_f64() * 1e3 / n,
                nodes: (count as f64 / n).round() as usize,
            })
            .collect();
        out.sort_by(|a, b| b.ms_per_run.total_cmp(&a.ms_per_run));
        Ok(out)
    }
}

/// Time spent in one kind of operator during one forward pass.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OpTime {
    /// tract's operator name, for example `Conv` or `OptMatMul`.
    pub op: String,
    /// Milliseconds per forward pass, summed over the nodes of this kind.
    pub ms_per_run: f64,
    /// Nodes of this kind in the plan.
    pub nodes: usize,
}

impl Runner for TractRunner {
    fn name(&self) -> &str {
        "tract"
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn run(&mut self, inputs: &[ArrayViewD<'_, f32>]) -> Result<Vec<ArrayD<f32>>> {
        let (plan, tensors) = self.prepare(inputs)?;
        let run = || plan.run(tensors);
        let outs = match &self.executor {
            Some(ex) => multithread_tract_scope(ex.clone(), run),
            None => run(),
        }
        .map_err(|e| Error::tract(format!("running {}", self.path.display()), e))?;
        self.sig
            .outputs
            .iter()
            .zip(&self.output_slots)
            .map(|(name, &slot)| {
                let t = outs.get(slot).ok_or_else(|| Error::Output {
                    name: name.clone(),
                    msg: format!("tract produced {} outputs", outs.len()),
                })?;
                let view = t
                    .to_plain_array_view::<f32>()
                    .map_err(|e| Error::tract(format!("reading output `{name}`"), e))?;
                ArrayD::from_shape_vec(IxDyn(view.shape()), view.iter().copied().collect())
                    .map_err(|e| Error::Output { name: name.clone(), msg: e.to_string() })
            })
            .collect()
    }

    fn prefers_single_images(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_of_shape_gets_a_zero_value_once() {
        let node =
            |op: &str| tract_onnx::pb::NodeProto { op_type: op.into(), ..Default::default() };
        let mut m = ModelProto {
            graph: Some(tract_onnx::pb::GraphProto {
                node: vec![node("ConstantOfShape"), node("Relu"), node("ConstantOfShape")],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(fill_constant_of_shape(&mut m), 2);
        assert_eq!(fill_constant_of_shape(&mut m), 0);
        let g = m.graph.unwrap();
        assert_eq!(g.node[0].attribute[0].t.as_ref().unwrap().float_data, vec![0.0]);
        assert!(g.node[1].attribute.is_empty());
    }
}
