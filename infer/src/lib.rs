//! Inference on exported ONNX models.
