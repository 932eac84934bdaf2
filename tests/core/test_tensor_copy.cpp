// Tensor::copy_ / contiguous() of permuted views: float and double copies with strided runs go
// through the expression evaluator's tiled transpose (fiber/expr/evaluate.hpp). Checked element
// by element against at() for shapes with tails in both tile dimensions, a copy onto its own
// transpose (overlapping storage), and integer tensors (the strided loop).
// This file includes expression.hpp first on purpose: tensor.hpp's include of evaluate.hpp must
// then wait for the expression nodes (see the note at the top of expression.hpp).
#include "fiber/expr/expression.hpp"

#include <doctest/doctest.h>

#include "fiber/core/rng.hpp"

using fiber::Tensor;

namespace {
template <class T>
bool equals_elementwise(const Tensor<T>& copy, const Tensor<T>& view) {
  REQUIRE(copy.shape() == view.shape());
  REQUIRE(copy.dim() == 3);
  for (std::int64_t i = 0; i < view.size(0); ++i)
    for (std::int64_t j = 0; j < view.size(1); ++j)
      for (std::int64_t k = 0; k < view.size(2); ++k)
        if (copy.at({i, j, k}) != view.at({i, j, k})) return false;
  return true;
}
}  // namespace

TEST_CASE_TEMPLATE("contiguous() of permuted views equals the view element by element", T, float, double) {
  fiber::Generator gen(3);
  const Tensor<T> x = fiber::randn<T>({3, 37, 45}, gen);
  for (auto order : std::vector<std::vector<int>>{{0, 2, 1}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}, {1, 0, 2}}) {
    CAPTURE(order[0] * 100 + order[1] * 10 + order[2]);
    const Tensor<T> v = x.permute(std::span<const int>(order));
    const Tensor<T> c = v.contiguous();
    CHECK(c.is_contiguous());
    CHECK(equals_elementwise(c, v));
  }
  // A strided (sliced) transposed view, and a broadcast source.
  const Tensor<T> s = x.slice(2, 1, 45, 2).transpose(1, 2);
  CHECK(equals_elementwise(s.contiguous(), s));
  Tensor<T> b = Tensor<T>::empty({3, 37, 45});
  b.copy_(x.select(1, 4).unsqueeze(1));
  CHECK(equals_elementwise(b, x.select(1, 4).unsqueeze(1).expand({3, 37, 45})));
}

TEST_CASE("copy_ onto its own transpose (overlapping storage) and integer copies") {
  fiber::Generator gen(4);
  const Tensor<float> sq = fiber::randn<float>({1, 40, 40}, gen);
  const Tensor<float> want = sq.transpose(1, 2).contiguous();
  sq.copy_(sq.transpose(1, 2));
  CHECK(sq.to_vector() == want.to_vector());
  const auto ints = Tensor<std::int64_t>::arange(0, 3 * 20 * 30).reshape({3, 20, 30});
  CHECK(equals_elementwise(ints.transpose(1, 2).contiguous(), ints.transpose(1, 2)));
}
