#pragma once
// SavedTensor<T>: a tensor that a node keeps for its backward, with the version of its storage at
// the moment it was saved (fiber/core/storage.hpp). Unpacking it in the backward compares the
// versions, so a saved tensor written in place between forward and backward (an optimiser step,
// w.value().assign(...), fill_, copy_) is a fiber::Error naming the op, never a wrong gradient:
//
//   return record("matmul", value, {&a, &b},
//                 [av = save_for_backward(a.value())](const Tensor<T>& g, GradNeeds needs) {
//                   const Tensor<T>& a = av.get();  // throws if `a` was modified since
//                   ...
//                 });
//
// The version is per storage (as PyTorch's): a write to any view of the storage counts.
#include <cstdint>
#include <utility>

#include "fiber/core/error.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber {

namespace detail {
// The op whose backward runs on this thread, for the error below (set by the nodes' apply()).
inline thread_local const char* backward_op = nullptr;

inline void check_saved_version(std::uint64_t saved, std::uint64_t now, const Shape& shape) {
  if (saved == now) return;
  fail("backward of ", backward_op ? backward_op : "an operation", ": a tensor of shape ", shape,
       " saved for the backward was modified in place (version ", saved, " -> ", now,
       "); run the backward before writing to it, or give the op a clone()");
}
}  // namespace detail

// RAII: names the op whose backward runs on this thread while it lives.
class BackwardScope {
 public:
  explicit BackwardScope(const char* op) : previous_(std::exchange(detail::backward_op, op)) {}
  ~BackwardScope() { detail::backward_op = previous_; }
  BackwardScope(const BackwardScope&) = delete;
  BackwardScope& operator=(const BackwardScope&) = delete;

 private:
  const char* previous_;
};

template <class T>
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(Tensor<T> t) : tensor_(std::move(t)), version_(tensor_.version()) {}

  // The tensor, after checking that it was not written in place since it was saved.
  const Tensor<T>& get() const {
    detail::check_saved_version(version_, tensor_.version(), tensor_.shape());
    return tensor_;
  }
  const Tensor<T>& operator*() const { return get(); }
  const Tensor<T>* operator->() const { return &get(); }

  // Metadata needs no check: a write in place never changes it.
  bool defined() const { return tensor_.defined(); }
  const Shape& shape() const { return tensor_.shape(); }
  std::uint64_t saved_version() const { return version_; }

 private:
  Tensor<T> tensor_;
  std::uint64_t version_ = 0;
};

// The one way a backward closure keeps a tensor: the tensor (a handle, no copy) and its version.
template <class T>
SavedTensor<T> save_for_backward(Tensor<T> t) {
  return SavedTensor<T>(std::move(t));
}

}  // namespace fiber
