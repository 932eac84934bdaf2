#pragma once
// nn::Embedding: rows of a [num, dim] table looked up by int64 ids.
#include <cstdint>
#include <optional>
#include <string>

#include "fiber/nn/module.hpp"
#include "fiber/ops/index.hpp"

namespace fiber::nn {

template <class T>
struct Embedding {
  Var<T> weight;  // [num, dim]
  std::optional<std::int64_t> padding_idx;  // that row gets no gradient (nn.Embedding's padding_idx)

  Embedding() = default;
  Embedding(std::int64_t num, std::int64_t dim, std::optional<std::int64_t> padding = std::nullopt)
      : weight(make_parameter<T>({num, dim})), padding_idx(padding) {}

  // ids: [*] -> [*, dim]; an id outside [0, num) is a fiber::Error naming it.
  Var<T> operator()(const Tensor<std::int64_t>& ids) const { return embedding(weight, ids, padding_idx); }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    visit_parameter(f, prefix, "weight", weight);
  }
};

}  // namespace fiber::nn
