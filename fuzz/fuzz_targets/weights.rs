//! Weight files as a user hands them over: `.pth` (zip + pickle) or `.safetensors`, recognised
//! by content, then read again as one of our checkpoints (tensors + model metadata).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::file("weights", data);
    if let Ok(t) = fer_checkpoint::load_weights(&p) {
        let _ = fer_checkpoint::first_non_finite(&t);
    }
    let _ = fer_checkpoint::Checkpoint::load(&p);
});
