#pragma once
// ForwardContext: what a forward pass needs besides its inputs. Training mode (dropout and drop
// path active, drawn from `rng`) and the activation hook, called with the official module path of
// every named intermediate ("fused.image.layers.2.blocks.14") so any of them can be dumped and
// compared with the reference. The default context is inference with no hook, which costs nothing.
#include <functional>
#include <string>
#include <string_view>

#include "fiber/autograd/var.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"

namespace fiber::nn {

template <class T>
struct ForwardContext {
  bool training = false;
  Generator* rng = nullptr;  // required when training with dropout or drop path
  std::function<void(std::string_view name, const Tensor<T>& value)> hook;

  // Reports an intermediate to the hook, if any.
  void emit(std::string_view name, const Var<T>& v) const {
    if (hook) hook(name, v.value());
  }
  Generator& generator() const {
    FIBER_CHECK(rng, "training forward: dropout / drop path need a generator (ForwardContext::rng)");
    return *rng;
  }
};

}  // namespace fiber::nn
