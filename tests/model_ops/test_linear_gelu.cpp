// linear_gelu: bit-for-bit equal to gelu(linear(x)) in forward (small and GEMM-kernel sizes, with
// and without bias, Var and Tensor), gradcheck of x, W and b, NoGrad, errors.
#include <doctest/doctest.h>

#include "fiber/autograd/grad_mode.hpp"
#include "fiber/ops/linear_gelu.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("linear_gelu: forward bit for bit equal to gelu(linear(x, W, b))") {
  struct Case {
    std::int64_t rows, in, out;
  };
  for (const Case c : {Case{3, 5, 7}, Case{37, 64, 50}, Case{200, 96, 384}}) {
    CAPTURE(c.rows);
    const Tensor<float> x = rnd({c.rows, c.in}, 1, -3, 3).to<float>(), w = rnd({c.out, c.in}, 2).to<float>(),
                        b = rnd({c.out}, 3).to<float>();
    const Tensor<float> want = gelu(fiber::linear(x, w, b));
    CHECK(fiber::linear_gelu(x, w, b).to_vector() == want.to_vector());
    CHECK(fiber::linear_gelu(x, w).to_vector() == Tensor<float>(gelu(fiber::linear(x, w))).to_vector());
    // The Var path writes the pre-activation too; its output is the same.
    Var<float> wv(w, true);
    CHECK(fiber::linear_gelu(Var<float>(x), wv, Var<float>(b)).value().to_vector() == want.to_vector());
    const Tensor<double> xd = x.to<double>(), wd = w.to<double>(), bd = b.to<double>();
    CHECK(fiber::linear_gelu(xd, wd, bd).to_vector() == Tensor<double>(gelu(fiber::linear(xd, wd, bd))).to_vector());
  }
}

TEST_CASE("gradcheck: linear_gelu") {
  const auto x = rnd({2, 3, 4}, 4, -2, 2), w = rnd({5, 4}, 5), b = rnd({5}, 6);
  CHECK_GRADCHECK([](Vars v) { return fiber::linear_gelu(v[0], v[1], v[2]); }, x, w, b);
  CHECK_GRADCHECK([](Vars v) { return fiber::linear_gelu(v[0], v[1]); }, x, w);
  CHECK_GRADCHECK([](Vars v) { return fiber::linear_gelu(v[0].transpose(0, 1), v[1]); }, x, w);
}

TEST_CASE("linear_gelu: no graph under NoGrad; bad shapes name the op") {
  Var<float> x(Tensor<float>::ones({2, 3}), true), w(Tensor<float>::ones({4, 3}), true);
  {
    fiber::NoGrad no_grad;
    CHECK(fiber::linear_gelu(x, w).is_leaf());
  }
  CHECK_FALSE(fiber::linear_gelu(x, w).is_leaf());
  CHECK_THROWS_WITH_AS(fiber::linear_gelu(Tensor<float>::ones({2, 3}), Tensor<float>::ones({4, 2})),
                       doctest::Contains("linear_gelu: input [2, 3] and weight [4, 2] do not match"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::linear_gelu(Tensor<float>::ones({2, 3}), Tensor<float>::ones({4, 3}), Tensor<float>::ones({3})),
                       doctest::Contains("linear_gelu: bias of shape [3] for weight [4, 3]"), fiber::Error);
}
