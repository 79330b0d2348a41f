// The NCCL backend of fer-train's process group (see dist.cpp), compiled into the CUDA shim
// (libfer_cuda_graph.so) because ProcessGroupNCCL lives in libtorch_cuda. Built only when NCCL's
// header is found (the nvidia-nccl wheel next to torch); otherwise the symbol is absent and
// fer-train uses Gloo for CUDA tensors too, with a log line saying so.
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <chrono>
#include <cstdio>

extern "C" void* fer_nccl_backend(void* store, int rank, int size, int64_t timeout_ms, char* err,
                                  int err_len) {
  try {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(timeout_ms);
    auto s = *static_cast<c10::intrusive_ptr<c10d::Store>*>(store);
    c10::intrusive_ptr<c10d::Backend> b =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(s, rank, size, opts);
    return new c10::intrusive_ptr<c10d::Backend>(b);
  } catch (const std::exception& e) {
    std::snprintf(err, static_cast<size_t>(err_len), "%s", e.what());
    return nullptr;
  }
}
