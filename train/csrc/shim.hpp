// What the shim's C++ files share: tch's tensor handles as at::Tensor values, and the
// thread-local error message that fer_last_error() returns (defined in extras.cpp).
#pragma once

#include <ATen/ATen.h>

#include <vector>

extern "C" int fer_set_last_error(const char* what);

// The n tensors behind tch's handles (`at::Tensor*`), as values sharing their storage.
inline std::vector<at::Tensor> fer_tensors(void** ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) v.push_back(*static_cast<at::Tensor*>(ts[i]));
  return v;
}
