//! ONNX export of models-spec graphs.
