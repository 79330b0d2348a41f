//! The CUDA graph shim on any machine: it is built (scripts/setup.sh installs libtorch's CUDA
//! build and the CUDA headers it needs, so a missing install step fails here instead of turning
//! graphs off silently) and loads; without a GPU its calls fail with a sentence, not an abort.

use fer_train::cuda_graph::{self, Graph, SideStream};

#[test]
fn the_shim_is_built_and_loads() {
    if let Err(why) = cuda_graph::available() {
        panic!("{why}");
    }
}

#[test]
fn without_a_gpu_capture_fails_with_a_message() {
    fer_train::device::load_cuda_backend();
    if tch::Cuda::is_available() {
        eprintln!("a GPU is present: tests/cuda_graphs.rs covers capture there");
        return;
    }
    let e = SideStream::enter(0).err().expect("no side stream without a GPU");
    eprintln!("{e}");
    assert!(e.to_string().starts_with("switching to a side stream: "), "{e}");
    // Capture outside a side stream (here: without any CUDA device) is refused as well.
    let e = Graph::capture(|| Ok(())).err().expect("no capture without a GPU");
    eprintln!("{e}");
    assert!(e.to_string().contains("CUDA graph"), "{e}");
}
