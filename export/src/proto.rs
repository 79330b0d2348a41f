//! Small constructors for ONNX protobuf messages (`tract_onnx::pb`, prost-generated).

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::{
    AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};

/// One dimension of a graph input or output: fixed or symbolic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named symbolic size, for example `batch`.
    Symbol(&'static str),
}

/// A node attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attr {
    /// `INT`.
    Int(i64),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOAT`.
    Float(f32),
}

/// Converts usizes to the int64 ONNX wants.
pub(crate) fn ints(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto { name: name.to_string(), ..Default::default() };
    match value {
        Attr::Int(i) => {
            a.r#type = AttributeType::Int as i32;
            a.i = i;
        }
        Attr::Ints(v) => {
            a.r#type = AttributeType::Ints as i32;
            a.ints = v;
        }
        Attr::Float(f) => {
            a.r#type = AttributeType::Float as i32;
            a.f = f;
        }
    }
    a
}

/// A node of the default domain.
pub(crate) fn node(
    op_type: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<(&str, Attr)>,
) -> NodeProto {
    NodeProto {
        op_type: op_type.to_string(),
        name: name.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs.into_iter().map(|(n, v)| attribute(n, v)).collect(),
        ..Default::default()
    }
}

/// A float32 initializer, little-endian `raw_data`.
pub(crate) fn tensor_f32(name: &str, shape: &[usize], values: &[f32]) -> TensorProto {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        name: name.to_string(),
        dims: ints(shape),
        data_type: DataType::Float as i32,
        raw_data: raw,
        ..Default::default()
    }
}

/// A float32 graph input or output.
pub(crate) fn value_info_f32(name: &str, dims: &[Dim], doc: &str) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: String::new(),
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Symbol(s) => dimension::Value::DimParam(s.to_string()),
            }),
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: DataType::Float as i32,
        shape: Some(TensorShapeProto { dim }),
    };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(tensor)),
        }),
        doc_string: doc.to_string(),
    }
}
