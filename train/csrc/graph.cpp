// CUDA graph capture of a training step, behind a C interface. Built by build.rs as a shared
// library of its own (linked against libtorch_cuda), embedded in the binary and loaded only when
// a CUDA device is in use, so that fer-train still starts where the CUDA libraries are missing.
//
// Every C++ exception is caught: functions return 0 on success and 1 on failure, with the
// message in fer_graph_last_error().
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>

// Declared in ATen/cuda/CUDAContextLight.h, whose includes need CUDA's libcu++ headers (not in the
// wheels this builds against); the definition is libtorch_cuda's.
namespace at::cuda {
cudaDeviceProp* getDeviceProperties(c10::DeviceIndex device);
}

namespace {
thread_local std::string last_error;

int fail(const char* what) {
  last_error = what;
  return 1;
}

// A captured graph and what capture changed that must be put back at its end.
struct Graph {
  at::cuda::CUDAGraph graph;
  bool autocast_cache = true;
};

// The stream that was current before fer_side_stream_enter.
struct SavedStream {
  c10::cuda::CUDAStream previous;
};
}  // namespace

extern "C" {

const char* fer_graph_last_error() { return last_error.c_str(); }

// Makes a stream from libtorch's pool the current stream of `device` (graphs cannot be captured
// on the default stream), after the device has finished its earlier work. Returns a handle for
// fer_side_stream_exit, or null on failure.
void* fer_side_stream_enter(int device) {
  try {
    auto idx = static_cast<c10::DeviceIndex>(device);
    auto previous = c10::cuda::getCurrentCUDAStream(idx);
    auto side = c10::cuda::getStreamFromPool(false, idx);
    c10::cuda::device_synchronize();
    c10::cuda::setCurrentCUDAStream(side);
    return new SavedStream{previous};
  } catch (const std::exception& e) {
    last_error = e.what();
    return nullptr;
  }
}

// Waits for the side stream's work and makes the saved stream current again; frees the handle.
int fer_side_stream_exit(void* saved) {
  auto* s = static_cast<SavedStream*>(saved);
  try {
    c10::cuda::device_synchronize();
    c10::cuda::setCurrentCUDAStream(s->previous);
    delete s;
    return 0;
  } catch (const std::exception& e) {
    delete s;
    return fail(e.what());
  }
}

// A new, empty graph (null on failure).
void* fer_graph_new() {
  try {
    return new Graph();
  } catch (const std::exception& e) {
    last_error = e.what();
    return nullptr;
  }
}

void fer_graph_free(void* g) { delete static_cast<Graph*>(g); }

// Starts capturing the current (non-default) stream's work into `g`. Autocast's cast cache is
// off until the capture ends: a cached cast would be freed at the autocast region's exit while
// the graph still refers to its memory.
int fer_graph_capture_begin(void* g) {
  auto* graph = static_cast<Graph*>(g);
  try {
    graph->autocast_cache = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    graph->graph.capture_begin();
    return 0;
  } catch (const std::exception& e) {
    at::autocast::set_autocast_cache_enabled(graph->autocast_cache);
    return fail(e.what());
  }
}

// Ends the capture and instantiates the graph. Also called after a failure between begin and
// end, to leave capture mode; then it reports the capture's error.
int fer_graph_capture_end(void* g) {
  auto* graph = static_cast<Graph*>(g);
  try {
    graph->graph.capture_end();
    at::autocast::set_autocast_cache_enabled(graph->autocast_cache);
    return 0;
  } catch (const std::exception& e) {
    at::autocast::set_autocast_cache_enabled(graph->autocast_cache);
    return fail(e.what());
  }
}

// Launches the captured work on the current stream.
int fer_graph_replay(void* g) {
  try {
    static_cast<Graph*>(g)->graph.replay();
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Total memory of CUDA device `device`, in bytes, into *total.
int fer_device_total_memory(int device, uint64_t* total) {
  try {
    *total = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(device))->totalGlobalMem;
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
}
