//! An ONNX file as `fer-infer` opens it: the protobuf, the declared input/output shapes, and
//! the FER metadata (labels, preprocessing, temperature) resolved against them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = fer_infer::OnnxFile::from_bytes("fuzz.onnx", data.to_vec()) {
        let _ = fer_infer::InferMeta::resolve(&f, &fer_infer::MetaOverrides::default());
    }
});
