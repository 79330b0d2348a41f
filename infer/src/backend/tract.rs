//! tract: pure-Rust inference on the CPU.
//!
//! The model is parsed and decluttered once with a symbolic batch axis `N`. Runnable plans are
//! optimised per batch size on first use and cached: tract optimises convolutions far better
//! with concrete shapes (see `docs/benchmarks.md`), and an application uses one or two batch
//! sizes (its batch, and the last partial one).

use std::collections::HashMap;
use std::sync::Arc;

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
            file: file.clone(),
        })
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

    /// The optimised model for batch size `n` (for profiling).
    pub fn optimized_model(&mut self, n: usize) -> Result<Plan> {
        self.plan(n)
    }
}

impl Backend for TractBackend {
    fn name(&self) -> &str {
        "tract"
    }

    fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Outputs> {
        check_input(&self.file, input.shape())?;
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
