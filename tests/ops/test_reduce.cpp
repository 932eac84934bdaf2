#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "fiber/fiber.hpp"
#include "fiber/ops/reduce.hpp"
#include "test_util.hpp"

using fiber::Shape;
using fiber::Tensor;

namespace {
// Naive double-precision reduction of a contiguous tensor over one axis, for reference.
template <class T, class F>
std::vector<double> naive_reduce(const Tensor<T>& x, int axis, double init, F f) {
  auto v = x.contiguous().to_vector();
  const Shape& s = x.shape();
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= s[i];
  for (int i = axis + 1; i < s.rank(); ++i) inner *= s[i];
  std::vector<double> out(outer * inner, init);
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t r = 0; r < s[axis]; ++r)
      for (std::int64_t i = 0; i < inner; ++i) {
        double& acc = out[o * inner + i];
        acc = f(acc, double(v[(o * s[axis] + r) * inner + i]));
      }
  return out;
}

template <class T>
void check_vec(const Tensor<T>& got, const std::vector<double>& want, double tol) {
  auto g = got.to_vector();
  REQUIRE(g.size() == want.size());
  for (std::size_t i = 0; i < g.size(); ++i)
    CHECK_MESSAGE(std::abs(double(g[i]) - want[i]) <= tol * (1 + std::abs(want[i])), i, ": ", g[i], " vs ", want[i]);
}
}  // namespace

TEST_CASE("sum, mean, amax, amin along each axis match a naive reduction") {
  fiber::Generator gen(11);
  auto x = fiber::randn<float>({5, 37, 19}, gen);
  for (int axis = 0; axis < 3; ++axis) {
    CAPTURE(axis);
    check_vec(fiber::sum(x, axis), naive_reduce(x, axis, 0.0, [](double a, double b) { return a + b; }), 1e-5);
    auto m = naive_reduce(x, axis, 0.0, [](double a, double b) { return a + b; });
    for (auto& v : m) v /= x.shape()[axis];
    check_vec(fiber::mean(x, axis), m, 1e-5);
    check_vec(fiber::amax(x, axis), naive_reduce(x, axis, -1e300, [](double a, double b) { return std::max(a, b); }), 0);
    check_vec(fiber::amin(x, axis), naive_reduce(x, axis, 1e300, [](double a, double b) { return std::min(a, b); }), 0);
  }
}

TEST_CASE("reducing several axes, keepdim, all axes, and non-contiguous inputs") {
  auto x = fiber::arange<double>(0, 24).reshape({2, 3, 4});
  auto s = fiber::sum(x, {0, 2}, true);
  CHECK(s.shape() == Shape{1, 3, 1});
  CHECK(s.to_vector() == std::vector<double>{0 + 1 + 2 + 3 + 12 + 13 + 14 + 15, 4 * 4 + 6 + 16 * 4 + 6, 8 * 4 + 6 + 20 * 4 + 6});
  CHECK(fiber::sum(x).item() == 276.0);
  CHECK(fiber::sum(x).dim() == 0);
  auto xt = x.permute({2, 0, 1});  // [4, 2, 3]
  CHECK(fiber::sum(xt, -1).shape() == Shape{4, 2});
  CHECK(fiber::sum(xt, -1).at({3, 1}) == 15.0 + 19 + 23);
  CHECK(fiber::amax(x.transpose(0, 2) * -1.0).item() == 0.0);
  CHECK_THROWS_WITH_AS(fiber::sum(x, {0, 0}), doctest::Contains("axis 0 repeated"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::sum(x, 3), doctest::Contains("sum: axis 3 is out of range"), fiber::Error);
}

TEST_CASE("reductions of expressions run without materialising the expression") {
  fiber::Generator gen(2);
  auto a = fiber::randn<float>({64, 300}, gen);
  auto b = fiber::randn<float>({300}, gen);
  Tensor<float> prod = a * b;
  const auto before = fiber::allocation_stats().allocations.load();
  auto fused = fiber::sum(a * b, 0);
  CHECK(fiber::allocation_stats().allocations.load() == before + 1);
  // Against the sum in double: a float sum of 64 products (fused or not, the compiler may contract
  // a product and its accumulation into one FMA) is within 64 eps sum|a b| of it.
  const auto got = fused.to_vector(), pa = a.to_vector(), pb = b.to_vector();
  double worst = 0;
  for (std::int64_t j = 0; j < 300; ++j) {
    double exact = 0, magnitude = 0;
    for (std::int64_t i = 0; i < 64; ++i) {
      exact += double(pa[i * 300 + j]) * pb[j];
      magnitude += std::abs(double(pa[i * 300 + j]) * pb[j]);
    }
    worst = std::max(worst, std::abs(got[j] - exact) / (64 * 6e-8 * magnitude));
  }
  CHECK(worst <= 1.0);
  FIBER_CHECK_CLOSE(fused, fiber::sum(prod, 0), 1e-5, 1e-5);
}

TEST_CASE("long reductions are chunked yet identical for any thread count") {
  fiber::Generator gen(5);
  auto x = fiber::randn<float>({3, 1 << 19}, gen);
  fiber::set_num_threads(1);
  auto one = fiber::sum(x, 1).to_vector();
  auto all = fiber::sum(x).item();
  fiber::set_num_threads(2);
  CHECK(fiber::sum(x, 1).to_vector() == one);
  CHECK(fiber::sum(x).item() == all);
  fiber::set_num_threads(3);
  CHECK(fiber::sum(x, 1).to_vector() == one);
  fiber::set_num_threads(2);
  check_vec(fiber::sum(x, 1), naive_reduce(x, 1, 0.0, [](double p, double q) { return p + q; }), 2e-5);
}

TEST_CASE("var uses Bessel's correction; argmax/argmin take the first extreme") {
  auto x = Tensor<double>::from_data({2, 4}, {1, 2, 3, 4, 2, 2, 2, 2});
  CHECK(fiber::var(x, 1).at({0}) == doctest::Approx(5.0 / 3.0));
  CHECK(fiber::var(x, 1).at({1}) == 0.0);
  CHECK(fiber::var(x, 1, false, 0).at({0}) == doctest::Approx(1.25));
  auto y = Tensor<float>::from_data({2, 3}, {1, 5, 5, 7, -1, 7});
  CHECK(fiber::argmax(y, 1).to_vector() == std::vector<std::int64_t>{1, 0});
  CHECK(fiber::argmin(y, 0).to_vector() == std::vector<std::int64_t>{0, 1, 0});
  CHECK(fiber::argmax(y, 0, true).shape() == Shape{1, 3});
  auto n = Tensor<float>::from_data({3}, {1, std::numeric_limits<float>::quiet_NaN(), 3});
  CHECK(fiber::argmax(n, 0).item() == 1);
  CHECK(std::isnan(fiber::amax(n).item()));
  CHECK_THROWS_WITH_AS(fiber::amax(fiber::zeros<float>({0, 2}), 0), doctest::Contains("empty dimension"), fiber::Error);
  CHECK(fiber::sum(fiber::zeros<float>({0, 2}), 0).to_vector() == std::vector<float>{0, 0});
}
