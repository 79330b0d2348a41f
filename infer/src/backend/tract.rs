//! tract: pure-Rust inference on the CPU.
//!
//! The model is parsed and decluttered once with a symbolic batch axis `N`; runnable plans are
//! optimised per concrete batch size on first use and cached.
//!
//! By default a batch of `N` runs as `N` passes of the batch-1 plan: tract's plans for `N > 1`
//! add transposes (`MoveAxis`) and unfused bias additions around every convolution, and its
//! depthwise convolution gets slower per image, so a batch-32 plan costs 1.5–2.5× more per
//! image than 32 single passes (profiles in `docs/benchmarks.md`). [`TractBackend::with_batch_plans`]
//! turns batched plans back on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::ArrayView4;
use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::prelude::*;

use super::{Backend, Outputs, check_input, to_2d};
use crate::error::{Error, Result};
use crate::onnx_file::{EMBEDDING, OnnxFile};

type Plan = Arc<TypedRunnableModel>;

/// A tract model with a plan cache keyed by batch size.
pub struct TractBackend {
    /// Decluttered, batch axis symbolic.
    model: TypedModel,
    batch: Symbol,
    plans: HashMap<usize, Plan>,
    /// Output slots of the logits and the embedding.
    logits_slot: usize,
    embedding_slot: Option<usize>,
    executor: Option<Executor>,
    /// Run batches through batch-size-specific plans instead of image by image.
    batch_plans: bool,
    file: OnnxFile,
}

impl TractBackend {
    /// Parses `file` into tract. `threads` > 1 runs matrix products on a private pool.
    pub fn new(file: &OnnxFile, threads: Option<usize>) -> Result<Self> {
        let what = format!("loading {}", file.path.display());
        let model = tract_onnx::onnx()
            .model_for_proto_model(&file.proto)
            .map_err(|e| Error::tract(&what, e))?;
        let batch = model.symbols.sym("N");
        let mut dims: TVec<TDim> = tvec![batch.to_dim()];
        for (i, axis) in ["C", "H", "W"].iter().enumerate() {
            dims.push(match file.input.fixed(i + 1) {
                Some(n) => n.to_dim(),
                None => model.symbols.sym(axis).to_dim(),
            });
        }
        let fact = InferenceFact::dt_shape(f32::datum_type(), dims);
        let model = model
            .with_input_fact(0, fact)
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .map_err(|e| Error::tract(&what, e))?;
        let out_names: Vec<String> =
            model.outputs.iter().map(|o| model.node(o.node).name.clone()).collect();
        let slot = |name: &str| {
            file.outputs.iter().position(|o| o.name == name).filter(|i| *i < out_names.len())
        };
        let logits_slot = slot(&file.logits().name).unwrap_or(0);
        let embedding_slot = file.embedding_opt().and_then(|_| slot(EMBEDDING));
        let executor = match threads {
            Some(t) if t > 1 => Some(Executor::multithread_with_name(t, "fer-tract")),
            _ => None,
        };
        Ok(TractBackend {
            model,
            batch,
            plans: HashMap::new(),
            logits_slot,
            embedding_slot,
            executor,
            batch_plans: false,
            file: file.clone(),
        })
    }

    /// Runs a batch of `N` through a plan optimised for `N` (slower than `N` single passes in
    /// tract 0.23 for the convolutional networks we export; kept for measuring that).
    pub fn with_batch_plans(mut self, on: bool) -> Self {
        self.batch_plans = on;
        self
    }

    /// The plan for batch size `n`, optimised on first use.
    fn plan(&mut self, n: usize) -> Result<Plan> {
        if let Some(p) = self.plans.get(&n) {
            return Ok(p.clone());
        }
        let start = std::time::Instant::now();
        let subs = HashMap::from([(self.batch.clone(), (n as i64).to_dim())]);
        let what = format!("optimising {} for batch {n}", self.file.path.display());
        let plan = self
            .model
            .set_symbols(&subs)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| Error::tract(&what, e))?;
        tracing::debug!(batch = n, elapsed = ?start.elapsed(), "tract plan ready");
        self.plans.insert(n, plan.clone());
        Ok(plan)
    }

    /// Times every node of the plan for `input`'s batch size over `iters` runs and sums the
    /// time per operator kind (for example `Conv`, `OptMatMul`), most expensive first.
    pub fn profile(&mut self, input: ArrayView4<'_, f32>, iters: usize) -> Result<Vec<OpTime>> {
        check_input(&self.file, input.shape())?;
        let plan = self.plan(input.shape()[0])?;
        let input = input.as_standard_layout();
        let data = input.as_slice().ok_or_else(|| Error::invalid("input", "not contiguous"))?;
        let tensor = Tensor::from_shape(input.shape(), data)
            .map_err(|e| Error::tract("wrapping the input batch", e))?;
        let mut totals: HashMap<String, (Duration, usize)> = HashMap::new();
        let mut state = tract_onnx::tract_core::internal::SimpleState::new(&plan)
            .map_err(|e| Error::tract("profiling", e))?;
        for _ in 0..iters.max(1) {
            let t = tensor.clone();
            let run = || {
                state.run_plan_with_eval(tvec![t.into()], |ctx, st, node, inputs| {
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

impl Backend for TractBackend {
    fn name(&self) -> &str {
        "tract"
    }

    fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Outputs> {
        check_input(&self.file, input.shape())?;
        let n = input.shape()[0];
        if self.batch_plans || n == 1 {
            return self.run_plan(input);
        }
        let mut parts = Vec::with_capacity(n);
        for i in 0..n {
            parts.push(self.run_plan(input.slice(ndarray::s![i..i + 1, .., .., ..]))?);
        }
        let stack = |rows: Vec<ndarray::ArrayView2<'_, f32>>, name: &str| {
            ndarray::concatenate(ndarray::Axis(0), &rows)
                .map_err(|e| Error::Output { name: name.into(), msg: e.to_string() })
        };
        let logits = stack(parts.iter().map(|p| p.logits.view()).collect(), "logits")?;
        let embedding = match parts.iter().map(|p| p.embedding.as_ref().map(|e| e.view())).collect()
        {
            Some(rows) => Some(stack(rows, EMBEDDING)?),
            None => None,
        };
        Ok(Outputs { logits, embedding })
    }
}

impl TractBackend {
    /// Runs `input` through the plan for its batch size.
    fn run_plan(&mut self, input: ArrayView4<'_, f32>) -> Result<Outputs> {
        let n = input.shape()[0];
        let plan = self.plan(n)?;
        let input = input.as_standard_layout();
        let data = input.as_slice().ok_or_else(|| Error::invalid("input", "not contiguous"))?;
        let tensor = Tensor::from_shape(input.shape(), data)
            .map_err(|e| Error::tract("wrapping the input batch", e))?;
        let run = || plan.run(tvec![tensor.into()]);
        let outs = match &self.executor {
            Some(ex) => multithread_tract_scope(ex.clone(), run),
            None => run(),
        }
        .map_err(|e| Error::tract(format!("running {}", self.file.path.display()), e))?;
        let get = |slot: usize, name: &str| -> Result<ndarray::Array2<f32>> {
            let t = outs.get(slot).ok_or_else(|| Error::Output {
                name: name.into(),
                msg: format!("tract produced {} outputs", outs.len()),
            })?;
            let view = t
                .to_plain_array_view::<f32>()
                .map_err(|e| Error::tract(format!("reading output `{name}`"), e))?;
            to_2d(name, view.shape(), view.iter().copied().collect(), n)
        };
        let logits = get(self.logits_slot, &self.file.logits().name)?;
        let embedding = match self.embedding_slot {
            Some(s) => Some(get(s, EMBEDDING)?),
            None => None,
        };
        Ok(Outputs { logits, embedding })
    }
}
