//! The pickle virtual machine of `.pth` files, on raw bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fer_checkpoint::pickle::unpickle(data);
});
