#pragma once
// The module contract. A module is a plain struct over a configuration; it owns its parameters
// as Var<T> members and has one
//
//   template <class F> void visit(const std::string& prefix, F&& f);
//
// that calls f(key, entry) for every parameter and buffer, in the official state-dict order, with
// key = prefix + the official name ("vit_model.layers.0.blocks.1.attn.qkv.weight"). Loading,
// saving, optimisers, parameter counts and activation dumps all walk this one tree of names, so
// there is no second table of keys to keep in step.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber::nn {

// What a visited key is.
enum class Role {
  parameter,  // trained; loaded and saved
  tied,       // a view of another parameter's storage (rank_output = row 1 of itm_score.fc):
              // loaded (into the shared storage) and saved, never handed to an optimiser
  derived,    // a buffer official checkpoints carry that we compute from the configuration
              // (relative_position_index, attn_mask, position_ids): accepted when loading, not read
};

template <class T>
struct Entry {
  Role role;
  Var<T>* var;  // null for derived buffers
};

// Calls f(prefix + name, entry) for a parameter (skipped when undefined: an optional bias).
template <class T, class F>
void visit_parameter(F&& f, const std::string& prefix, std::string_view name, Var<T>& v) {
  if (v.defined()) f(prefix + std::string(name), Entry<T>{Role::parameter, &v});
}
template <class T, class F>
void visit_tied(F&& f, const std::string& prefix, std::string_view name, Var<T>& v) {
  f(prefix + std::string(name), Entry<T>{Role::tied, &v});
}
template <class T, class F>
void visit_derived(F&& f, const std::string& prefix, std::string_view name) {
  f(prefix + std::string(name), Entry<T>{Role::derived, nullptr});
}

// A parameter of `shape`, zero-filled until loaded or initialised.
template <class T>
Var<T> make_parameter(const Shape& shape) {
  return Var<T>::parameter(Tensor<T>::zeros(shape));
}

// Every trainable parameter of `module` with its key, in visiting order.
template <class T, class M>
std::vector<std::pair<std::string, Var<T>*>> named_parameters(M& module, const std::string& prefix = "") {
  std::vector<std::pair<std::string, Var<T>*>> out;
  module.visit(prefix, [&](const std::string& key, Entry<T> e) {
    if (e.role == Role::parameter) out.emplace_back(key, e.var);
  });
  return out;
}

// The number of trainable scalars.
template <class T, class M>
std::int64_t parameter_count(M& module) {
  std::int64_t n = 0;
  for (auto& [key, v] : named_parameters<T>(module)) n += v->numel();
  return n;
}

}  // namespace fiber::nn
