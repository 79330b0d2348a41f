// Data-parallel training through libtorch's own distributed runtime (c10d), behind a C
// interface for fer-train's `dist` module:
//  - a process group: a TCPStore rendezvous (rank 0 serves it) and a Gloo backend for CPU
//    tensors, or a backend made by a factory the caller passes (NCCL, built in the CUDA shim);
//  - collectives the trainer needs besides gradients: sum all-reduce, broadcast, barrier;
//  - c10d's Reducer, the engine of torch.nn.parallel.DistributedDataParallel: it hooks every
//    parameter's gradient accumulator, packs gradients into buckets as backward produces them
//    and all-reduces each bucket as soon as it is full, so communication overlaps backward;
//    at the end of backward it writes the averaged gradients back.
// ProcessGroupGloo.hpp needs Gloo's headers, which the torch wheel does not ship (Debian's
// libgloo-dev has them; only pointers to Gloo types appear in the class, so any Gloo version
// compiles against the same layout). Without them (FER_HAVE_GLOO undefined) every entry point
// fails with a message saying so. C++ exceptions never cross this interface: functions return
// 0 (or a non-null handle) on success and the message is in fer_last_error().
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#ifdef FER_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/logger.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#endif

#include "shim.hpp"

#ifdef FER_HAVE_GLOO
namespace {
// A process group and the store it met through (kept alive together).
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
};

// The Reducer and the Logger it reports to (as DistributedDataParallel pairs them).
struct GradSync {
  std::shared_ptr<c10d::Reducer> reducer;
  std::shared_ptr<c10d::Logger> logger;
};

int fail(const std::exception& e) { return fer_set_last_error(e.what()); }

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>> works) {
  for (auto& w : works) w->wait();
}
}  // namespace

// The signature of a backend factory: (store as c10::intrusive_ptr<c10d::Store>*, rank, size,
// timeout in ms) -> a new c10::intrusive_ptr<c10d::Backend>*, or null with fer_last_error set
// by the factory's own shim (its message is passed in `err`).
typedef void* (*FerBackendFactory)(void* store, int rank, int size, int64_t timeout_ms,
                                   char* err, int err_len);

extern "C" {

// Meets the other ranks at addr:port (rank 0 serves the store there unless `serve` is 0: the
// launcher's agent serves it, as torchrun does) and builds the process group: Gloo for CPU
// tensors, plus the backend `cuda_factory` makes for CUDA tensors when given. Blocks until all
// `size` ranks arrived or `timeout_ms` passed.
void* fer_dist_init(const char* addr, int port, int rank, int size, int serve, int64_t timeout_ms,
                    FerBackendFactory cuda_factory) {
  try {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0 && serve != 0;
    so.numWorkers = size;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), so);
    auto group = std::make_unique<Group>();
    group->store = store;
    group->pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
    auto gloo_opts = c10d::ProcessGroupGloo::Options::create_default(timeout);
    // Each backend meets in a key space of its own, as torch.distributed arranges it.
    c10::intrusive_ptr<c10d::Store> cpu_store = c10::make_intrusive<c10d::PrefixStore>("cpu/", store);
    c10::intrusive_ptr<c10d::Backend> gloo =
        c10::make_intrusive<c10d::ProcessGroupGloo>(cpu_store, rank, size, gloo_opts);
    gloo->setGroupUid("fer");
    group->pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
    if (cuda_factory != nullptr) {
      char err[1024] = {0};
      c10::intrusive_ptr<c10d::Store> s = c10::make_intrusive<c10d::PrefixStore>("cuda/", store);
      void* made = cuda_factory(&s, rank, size, timeout_ms, err, sizeof(err));
      if (made == nullptr) {
        fer_set_last_error(err);
        return nullptr;
      }
      auto* backend = static_cast<c10::intrusive_ptr<c10d::Backend>*>(made);
      group->pg->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL,
                            *backend);
      group->pg->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
      delete backend;
    } else {
      group->pg->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::GLOO, gloo);
      group->pg->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    }
    return group.release();
  } catch (const std::exception& e) {
    fail(e);
    return nullptr;
  }
}

// Ends the group: `graceful` after a run that finished (NCCL destroys its communicators, as
// torch.distributed.destroy_process_group), otherwise an abort that waits for no peer.
void fer_dist_free(void* g, int graceful) {
  auto* group = static_cast<Group*>(g);
  try {
    if (graceful != 0) {
      group->pg->shutdown();
    } else {
      group->pg->abort();
    }
  } catch (...) {
  }
  delete group;
}

// Sums the n tensors elementwise over all ranks, in place.
int fer_dist_allreduce_sum(void* g, void** ts, int n) {
  try {
    auto v = fer_tensors(ts, n);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : v) {
      std::vector<at::Tensor> one{t};
      works.push_back(static_cast<Group*>(g)->pg->allreduce(one));
    }
    wait_all(std::move(works));
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

// Copies rank `root`'s n tensors to every rank, in place.
int fer_dist_broadcast(void* g, void** ts, int n, int root) {
  try {
    auto v = fer_tensors(ts, n);
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : v) {
      std::vector<at::Tensor> one{t};
      works.push_back(static_cast<Group*>(g)->pg->broadcast(one, opts));
    }
    wait_all(std::move(works));
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

// Waits until every rank reached the barrier.
int fer_dist_barrier(void* g) {
  try {
    static_cast<Group*>(g)->pg->barrier()->wait();
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

// A Reducer over the n parameters (in forward order), all-reducing their gradients in buckets
// of at most `bucket_bytes` (the first, filled by the last layers' gradients, of
// `first_bucket_bytes`), averaged over the ranks.
void* fer_reducer_new(void* g, void** params, int n, int64_t bucket_bytes,
                      int64_t first_bucket_bytes) {
  try {
    auto v = fer_tensors(params, n);
    std::vector<bool> sparse(v.size(), false);
    std::vector<size_t> limits{static_cast<size_t>(first_bucket_bytes),
                               static_cast<size_t>(bucket_bytes)};
    auto [buckets, per_bucket] =
        c10d::compute_bucket_assignment_by_size(v, limits, sparse, {}, std::nullopt);
    // Gradients arrive roughly in reverse forward order: so do the buckets (as DDP orders them).
    std::reverse(buckets.begin(), buckets.end());
    std::reverse(per_bucket.begin(), per_bucket.end());
    std::vector<int64_t> caps(per_bucket.begin(), per_bucket.end());
    auto sync = std::make_unique<GradSync>();
    sync->reducer = std::make_shared<c10d::Reducer>(
        v, buckets, static_cast<Group*>(g)->pg, sparse, bucket_bytes,
        /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
        std::unordered_map<size_t, std::string>{}, first_bucket_bytes,
        /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false, caps);
    sync->logger = std::make_shared<c10d::Logger>(sync->reducer);
    sync->reducer->set_logger(sync->logger);
    return sync.release();
  } catch (const std::exception& e) {
    fail(e);
    return nullptr;
  }
}

// Arms the Reducer for the next backward pass (every step, before backward).
int fer_reducer_prepare(void* r) {
  try {
    auto* sync = static_cast<GradSync*>(r);
    sync->reducer->prepare_for_forward();
    sync->reducer->prepare_for_backward({});
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

void fer_reducer_free(void* r) {
  try {
    delete static_cast<GradSync*>(r);
  } catch (...) {
  }
}

int fer_dist_available() { return 1; }

}  // extern "C"

#else  // FER_HAVE_GLOO

namespace {
const char* kNoGloo =
    "this fer-train was built without data-parallel training: Gloo's headers were not found "
    "at build time (Debian: apt-get install libgloo-dev, then rebuild)";
}

extern "C" {
void* fer_dist_init(const char*, int, int, int, int, int64_t, void*) {
  fer_set_last_error(kNoGloo);
  return nullptr;
}
void fer_dist_free(void*, int) {}
int fer_dist_allreduce_sum(void*, void**, int) { return fer_set_last_error(kNoGloo); }
int fer_dist_broadcast(void*, void**, int, int) { return fer_set_last_error(kNoGloo); }
int fer_dist_barrier(void*) { return fer_set_last_error(kNoGloo); }
void* fer_reducer_new(void*, void**, int, int64_t, int64_t) {
  fer_set_last_error(kNoGloo);
  return nullptr;
}
int fer_reducer_prepare(void*) { return fer_set_last_error(kNoGloo); }
void fer_reducer_free(void*) {}
int fer_dist_available() { return 0; }
}

#endif  // FER_HAVE_GLOO
