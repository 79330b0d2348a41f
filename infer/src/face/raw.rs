//! A model with one float input and several float outputs, run as is by ONNX Runtime or tract:
//! what the face detector needs (the classifier path, [`crate::backend`], knows our metadata
//! and output names; this one knows nothing about the model).

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use ort::session::Session;
use ort::value::TensorRef;
use prost::Message;
use tract_onnx::pb::{AttributeProto, ModelProto, TensorProto, attribute_proto, tensor_proto};
use tract_onnx::prelude::*;

use crate::backend::BackendKind;
use crate::error::{Error, Result};

enum Engine {
    Ort(Box<Session>),
    Tract(Arc<TypedRunnableModel>),
}

/// A loaded model with fixed input shape.
pub struct RawModel {
    engine: Engine,
    input_name: String,
    output_names: Vec<String>,
    path: PathBuf,
}

/// ONNX `ConstantOfShape` without its optional `value` attribute means a float zero; tract
/// 0.23 refuses such nodes, so the attribute is written out before loading.
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

impl RawModel {
    /// Loads `path` for `backend` (CPU) with `threads` intra-op threads (ONNX Runtime) or on
    /// tract with a plan optimised for `input_shape`.
    pub fn open(
        path: &Path,
        backend: BackendKind,
        input_shape: &[usize],
        threads: Option<usize>,
    ) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
        let mut proto = ModelProto::decode(bytes.as_slice())
            .map_err(|source| Error::NotOnnx { path: path.into(), source })?;
        let graph = proto.graph.as_ref().ok_or_else(|| Error::Model {
            path: path.into(),
            msg: "the ONNX file has no graph".into(),
        })?;
        let inits: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let input_name = graph
            .input
            .iter()
            .map(|i| i.name.clone())
            .find(|n| !inits.contains(n.as_str()))
            .ok_or_else(|| Error::Model { path: path.into(), msg: "no graph input".into() })?;
        let output_names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        let what = format!("loading {}", path.display());
        let engine = match backend {
            BackendKind::Ort => {
                let env = crate::backend::ort::environment()?;
                let mut b = Session::builder(&env).map_err(|e| Error::ort(&what, e))?;
                if let Some(t) = threads {
                    b = b.with_intra_threads(t).map_err(|e| Error::ort(&what, e))?;
                }
                Engine::Ort(Box::new(
                    b.commit_from_memory(&bytes).map_err(|e| Error::ort(&what, e))?,
                ))
            }
            BackendKind::Tract => {
                fill_constant_of_shape(&mut proto);
                let fact = InferenceFact::dt_shape(f32::datum_type(), input_shape);
                let plan = tract_onnx::onnx()
                    .model_for_proto_model(&proto)
                    .and_then(|m| m.with_input_fact(0, fact))
                    .and_then(|m| m.into_optimized())
                    .and_then(|m| m.into_runnable())
                    .map_err(|e| Error::tract(&what, e))?;
                Engine::Tract(plan)
            }
        };
        Ok(RawModel { engine, input_name, output_names, path: path.into() })
    }

    /// The outputs' names, in graph order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Runs `input`; returns every output in graph order.
    pub fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<ArrayD<f32>>> {
        let what = || format!("running {}", self.path.display());
        match &mut self.engine {
            Engine::Ort(session) => {
                let input = input.as_standard_layout();
                let tensor = TensorRef::from_array_view(input.view())
                    .map_err(|e| Error::ort("wrapping the input", e))?;
                let outs = session
                    .run(ort::inputs![self.input_name.as_str() => tensor])
                    .map_err(|e| Error::ort(what(), e))?;
                self.output_names
                    .iter()
                    .map(|name| {
                        let v = outs.get(name).ok_or_else(|| Error::Output {
                            name: name.clone(),
                            msg: "not produced by the session".into(),
                        })?;
                        let a = v
                            .try_extract_array::<f32>()
                            .map_err(|e| Error::ort(format!("reading output `{name}`"), e))?;
                        Ok(a.to_owned().into_dyn())
                    })
                    .collect()
            }
            Engine::Tract(plan) => {
                let input = input.as_standard_layout();
                let data =
                    input.as_slice().ok_or_else(|| Error::invalid("input", "not contiguous"))?;
                let t = Tensor::from_shape(input.shape(), data)
                    .map_err(|e| Error::tract("wrapping the input", e))?;
                let outs = plan.run(tvec![t.into()]).map_err(|e| Error::tract(what(), e))?;
                outs.iter()
                    .map(|o| {
                        let a =
                            o.to_plain_array_view::<f32>().map_err(|e| Error::tract(what(), e))?;
                        Ok(ArrayD::from_shape_vec(IxDyn(a.shape()), a.iter().copied().collect())
                            .expect("shape of the view"))
                    })
                    .collect()
            }
        }
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
