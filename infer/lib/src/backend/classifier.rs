//! The classifier on top of a [`Runner`]: an image batch in, logits (and the embedding, when
//! the file exports one) out.

use ndarray::{ArrayView4, ArrayViewD};

use super::{Backend, BackendOptions, Outputs, Runner, Signature, check_input, open_runner, to_2d};
use crate::error::{Error, Result};
use crate::onnx_file::{Dim, EMBEDDING, OnnxFile, TensorDecl};

/// An exported classifier in one runtime.
pub struct Classifier {
    runner: Box<dyn Runner>,
    file: OnnxFile,
    /// Run batches in one pass even where the runtime prefers single images.
    batch_plans: bool,
}

impl Classifier {
    /// What the classifier feeds and reads: the image input with a free batch axis `N` (and
    /// `C`, `H`, `W` free where the file does not fix them), then the logits and, when the
    /// file has one, the embedding.
    pub fn signature(file: &OnnxFile) -> Signature {
        let mut dims = vec![Dim::Symbol("N".into())];
        for (i, axis) in ["C", "H", "W"].iter().enumerate() {
            dims.push(match file.input.fixed(i + 1) {
                Some(n) => Dim::Fixed(n),
                None => Dim::Symbol((*axis).into()),
            });
        }
        let input = TensorDecl { name: file.input.name.clone(), shape: Some(dims) };
        let mut outputs = vec![file.logits().name.clone()];
        if file.embedding_opt().is_some() {
            outputs.push(EMBEDDING.into());
        }
        Signature { inputs: vec![input], outputs }
    }

    /// Builds the runner `opts` describes for `file`.
    pub fn open(file: &OnnxFile, opts: &BackendOptions) -> Result<Self> {
        Ok(Self::new(file, open_runner(file, Self::signature(file), opts)?))
    }

    /// Ties a runner built with [`Self::signature`] to its file.
    pub fn new(file: &OnnxFile, runner: Box<dyn Runner>) -> Self {
        Classifier { runner, file: file.clone(), batch_plans: false }
    }

    /// Runs a batch of `N` in one pass even where `N` single passes are faster (tract; kept
    /// for measuring that).
    pub fn with_batch_plans(mut self, on: bool) -> Self {
        self.batch_plans = on;
        self
    }

    /// One pass of the runner over `input`.
    fn run_once(&mut self, input: ArrayView4<'_, f32>) -> Result<Outputs> {
        let n = input.shape()[0];
        let x: ArrayViewD<'_, f32> = input.into_dyn();
        let outs = self.runner.run(&[x])?;
        let names = self.runner.signature().outputs.clone();
        let mut it = outs.into_iter().zip(names);
        let mut next = || -> Result<ndarray::Array2<f32>> {
            let (a, name) = it.next().ok_or_else(|| Error::Output {
                name: self.file.logits().name.clone(),
                msg: "not produced by the runtime".into(),
            })?;
            let shape = a.shape().to_vec();
            to_2d(&name, &shape, a.into_iter().collect(), n)
        };
        let logits = next()?;
        let embedding = match self.file.embedding_opt() {
            Some(_) => Some(next()?),
            None => None,
        };
        Ok(Outputs { logits, embedding })
    }
}

impl Backend for Classifier {
    fn name(&self) -> &str {
        self.runner.name()
    }

    fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Outputs> {
        check_input(&self.file, input.shape())?;
        let n = input.shape()[0];
        if self.batch_plans || n == 1 || !self.runner.prefers_single_images() {
            return self.run_once(input);
        }
        let mut parts = Vec::with_capacity(n);
        for i in 0..n {
            parts.push(self.run_once(input.slice(ndarray::s![i..i + 1, .., .., ..]))?);
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
