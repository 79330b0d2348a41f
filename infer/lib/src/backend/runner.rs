//! The generic layer: one runner per runtime, knowing nothing about the model it runs.
//!
//! A [`Runner`] is built from an [`OnnxFile`] and a [`Signature`] (which graph inputs it is fed,
//! with the shapes they may take, and which outputs it returns); it takes float tensors in the
//! signature's input order and gives float tensors back in its output order. The classifier
//! ([`super::Classifier`]: logits and embedding) and the face detector
//! ([`crate::face::BlazeFace`]) add meaning on top. [`super::open_runner`] picks the runtime and
//! applies the one execution-provider rule of [`super::ort`] to every model.

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::onnx_file::{Dim, OnnxFile, TensorDecl};

/// What a runner is fed and what it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The graph inputs it is fed, in the order [`Runner::run`] takes them; an axis that is
    /// [`Dim::Symbol`] may take any size (tract plans one per concrete shape).
    pub inputs: Vec<TensorDecl>,
    /// The graph outputs it returns, in this order.
    pub outputs: Vec<String>,
}

impl Signature {
    /// Every graph input that is not an initializer and every graph output of `file`, with
    /// their declared shapes.
    pub fn of(file: &OnnxFile) -> Self {
        Signature {
            inputs: file.graph_inputs(),
            outputs: file.outputs.iter().map(|o| o.name.clone()).collect(),
        }
    }

    /// Checks that every name is one of `file`'s graph inputs or outputs.
    pub(crate) fn check(&self, file: &OnnxFile) -> Result<()> {
        let inputs = file.graph_inputs();
        let missing_in = self.inputs.iter().find(|i| inputs.iter().all(|g| g.name != i.name));
        let missing_out = self.outputs.iter().find(|o| file.outputs.iter().all(|g| &&g.name != o));
        let what = match (missing_in, missing_out) {
            (Some(i), _) => format!("no graph input named `{}`", i.name),
            (None, Some(o)) => format!("no graph output named `{o}`"),
            (None, None) if self.inputs.is_empty() => "no input to feed".to_string(),
            (None, None) => return Ok(()),
        };
        Err(Error::Model { path: file.path.clone(), msg: what })
    }

    /// Checks the shapes of `inputs` against the declared ones (count, rank, fixed axes).
    pub(crate) fn check_inputs(&self, inputs: &[ArrayViewD<'_, f32>]) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::invalid(
                "inputs",
                format!("{} tensors given, the model takes {}", inputs.len(), self.inputs.len()),
            ));
        }
        for (decl, x) in self.inputs.iter().zip(inputs) {
            let Some(dims) = &decl.shape else { continue };
            let ok = dims.len() == x.ndim()
                && dims.iter().zip(x.shape()).all(|(d, n)| !matches!(d, Dim::Fixed(f) if f != n));
            if !ok {
                return Err(Error::InputShape {
                    expected: decl.shape_text(),
                    got: x.shape().to_vec(),
                });
            }
        }
        Ok(())
    }
}

/// A model loaded in one runtime: named float tensors in, named float tensors out.
pub trait Runner: Send {
    /// Runtime and device, for example `ort-cpu`, `ort-cuda` or `tract`.
    fn name(&self) -> &str;
    /// What it is fed and returns.
    fn signature(&self) -> &Signature;
    /// Runs one set of inputs (in [`Signature::inputs`] order); returns the outputs in
    /// [`Signature::outputs`] order.
    fn run(&mut self, inputs: &[ArrayViewD<'_, f32>]) -> Result<Vec<ArrayD<f32>>>;
    /// Whether `N` passes with a batch of one are faster than one pass with a batch of `N`
    /// (true for tract, see [`super::tract`]); the classifier then splits its batches.
    fn prefers_single_images(&self) -> bool {
        false
    }
}
