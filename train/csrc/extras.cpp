// libtorch entry points that tch 0.24 does not bind, behind a C interface:
//  - CUDA autocast with an explicit dtype (tch only toggles the deprecated global switch, which
//    means float16);
//  - the fused multi-tensor SGD step (`torch.optim.SGD(fused=True)`'s kernel);
//  - conversion to the channels-last memory format;
//  - pinned host tensors for asynchronous host-to-device copies.
// Tensors are tch's handles (`at::Tensor*`). Every C++ exception is caught here: functions
// return 0 on success and 1 on failure, with the message in fer_last_error().
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include "shim.hpp"

#include <string>
#include <vector>

namespace {
thread_local std::string last_error;

int fail(const char* what) {
  last_error = what;
  return 1;
}

}  // namespace

extern "C" {

const char* fer_last_error() { return last_error.c_str(); }

// Sets the message fer_last_error() returns (for the other shim files); returns 1.
int fer_set_last_error(const char* what) { return fail(what); }

// Enters a CUDA autocast region: dtype 0 = bfloat16, 1 = float16.
int fer_amp_enter(int dtype) {
  try {
    at::autocast::set_autocast_dtype(at::kCUDA, dtype == 0 ? at::kBFloat16 : at::kHalf);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Leaves the region entered by fer_amp_enter; the cast cache is dropped at the outermost exit.
int fer_amp_exit() {
  try {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Whether CUDA autocast is on (1), off (0), or the query failed (-1).
int fer_amp_enabled() {
  try {
    return at::autocast::is_autocast_enabled(at::kCUDA) ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

// Sets CUDA autocast on or off without touching the nesting level or the dtype; returns the
// previous state (1 or 0), or -1 on failure. Used to run losses in full precision inside an
// autocast region.
int fer_amp_set_enabled(int enabled) {
  try {
    bool prev = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, enabled != 0);
    return prev ? 1 : 0;
  } catch (const std::exception& e) {
    last_error = e.what();
    return -1;
  }
}

// One fused SGD step over n parameters (no dampening), as torch.optim.SGD(fused=True).
// `first` makes the kernel initialise the momentum buffers from the gradients.
int fer_fused_sgd(void** params, void** grads, void** bufs, int n, double weight_decay,
                  double momentum, double lr, int nesterov, int first) {
  try {
    at::_fused_sgd_(fer_tensors(params, n), fer_tensors(grads, n),
                    momentum > 0 ? fer_tensors(bufs, n) : std::vector<at::Tensor>{}, weight_decay,
                    momentum, lr, 0.0, nesterov != 0, false, first != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// As fer_fused_sgd with the learning rate read from a one-element tensor on the parameters'
// device, so that a captured CUDA graph follows a schedule by rewriting that tensor.
int fer_fused_sgd_tensor_lr(void** params, void** grads, void** bufs, int n, double weight_decay,
                            double momentum, void* lr, int nesterov, int first) {
  try {
    at::_fused_sgd_(fer_tensors(params, n), fer_tensors(grads, n),
                    momentum > 0 ? fer_tensors(bufs, n) : std::vector<at::Tensor>{}, weight_decay,
                    momentum, *static_cast<at::Tensor*>(lr), 0.0, nesterov != 0, false,
                    first != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// self[i] += weight * (end[i] - self[i]) for n pairs (torch._foreach_lerp_): the weight EMA's
// update, a few multi-tensor kernel launches for the whole model on CUDA.
int fer_foreach_lerp_(void** self, void** ends, int n, double weight) {
  try {
    auto a = fer_tensors(self, n);
    at::_foreach_lerp_(a, fer_tensors(ends, n), weight);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Deterministic cuDNN algorithms on (1) or off (0), as torch.backends.cudnn.deterministic.
int fer_set_deterministic_cudnn(int on) {
  try {
    at::globalContext().setDeterministicCuDNN(on != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Re-lays a 4-d tensor out as channels-last, in place (its data; the handle stays valid, and so
// does a variable's autograd identity).
int fer_channels_last_(void* t) {
  try {
    auto* x = static_cast<at::Tensor*>(t);
    x->set_data(x->contiguous(at::MemoryFormat::ChannelsLast));
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Whether a tensor is laid out channels-last (1), not (0), or the query failed (-1).
int fer_is_channels_last(void* t) {
  try {
    return static_cast<at::Tensor*>(t)->is_contiguous(at::MemoryFormat::ChannelsLast) ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

// A new uninitialised float32 (kind 0), int64 (kind 1) or uint8 (kind 2) CPU tensor in pinned
// (page-locked) memory from libtorch's caching host allocator, so that a non-blocking copy to
// the GPU is truly asynchronous and the block is not reused before that copy completes.
// Returns a new tensor handle, or null on failure.
void* fer_empty_pinned(const int64_t* dims, int ndim, int kind) {
  try {
    auto dtype = kind == 0 ? at::kFloat : kind == 1 ? at::kLong : at::kByte;
    auto opts = at::TensorOptions().dtype(dtype).pinned_memory(true);
    return new at::Tensor(at::empty(at::IntArrayRef(dims, ndim), opts));
  } catch (const std::exception& e) {
    last_error = e.what();
    return nullptr;
  }
}
}
