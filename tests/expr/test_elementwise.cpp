#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

using fiber::Tensor;

namespace {
// Values over a range that exercises each function, in a length that leaves a partial packet.
Tensor<float> sample(float lo, float hi, std::int64_t n = 1003) {
  auto t = Tensor<float>::empty({n});
  for (std::int64_t i = 0; i < n; ++i) t.data()[i] = lo + (hi - lo) * float(i) / float(n - 1);
  return t;
}

template <class Result>
void check_against(const Result& got, const Tensor<float>& x, double (*f)(double), double rtol, double atol) {
  Tensor<float> y = got;
  auto vx = x.to_vector();
  auto vy = y.to_vector();
  for (std::size_t i = 0; i < vx.size(); ++i) {
    const double want = f(vx[i]);
    CHECK_MESSAGE(std::abs(vy[i] - want) <= atol + rtol * std::abs(want), "x=", vx[i], " got ", vy[i], " want ", want);
  }
}
}  // namespace

TEST_CASE("unary functions agree with the C library in float (stated tolerances)") {
  auto x = sample(-6, 6);
  auto pos = sample(0.01f, 50);
  check_against(fiber::exp(x), x, [](double v) { return std::exp(v); }, 2e-7, 0);
  check_against(fiber::log(pos), pos, [](double v) { return std::log(v); }, 0, 2e-7);
  check_against(fiber::sqrt(pos), pos, [](double v) { return std::sqrt(v); }, 1.2e-7, 0);
  check_against(fiber::rsqrt(pos), pos, [](double v) { return 1 / std::sqrt(v); }, 2.4e-7, 0);
  // tanh in float: within 5 ulp (backend/cpu/simd_math.hpp), 3e-7 relative.
  check_against(fiber::tanh(x), x, [](double v) { return std::tanh(v); }, 3e-7, 1e-8);
  check_against(fiber::sigmoid(x), x, [](double v) { return 1 / (1 + std::exp(-v)); }, 3e-7, 0);
  check_against(fiber::erf(x), x, [](double v) { return std::erf(v); }, 2.4e-7, 1e-8);
  // GELU in float computes erf as PyTorch's vectorised CPU kernel does (A&S 7.1.26, |error| <
  // 1.5e-7): the absolute error of x/2 * (1 + erf) stays below 5e-7 (measured 4.7e-7 on [-6, 6]).
  check_against(fiber::gelu(x), x, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, 1e-7, 5e-7);
  check_against(fiber::relu(x), x, [](double v) { return v > 0 ? v : 0.0; }, 0, 0);
  check_against(fiber::abs(x), x, [](double v) { return std::abs(v); }, 0, 0);
  check_against(-x, x, [](double v) { return -v; }, 0, 0);
  check_against(fiber::square(x), x, [](double v) { return v * v; }, 6e-8, 0);
  check_against(fiber::reciprocal(pos), pos, [](double v) { return 1 / v; }, 6e-8, 0);
  check_against(fiber::sign(x), x, [](double v) { return double((v > 0) - (v < 0)); }, 0, 0);
}

TEST_CASE("binary arithmetic, pow, minimum, maximum, clamp") {
  auto a = Tensor<float>::from_data({5}, {1, -2, 3, 0.5f, 4});
  auto b = Tensor<float>::from_data({5}, {2, 2, -1, 0.25f, 4});
  CHECK(Tensor<float>(a + b).to_vector() == std::vector<float>{3, 0, 2, 0.75f, 8});
  CHECK(Tensor<float>(a - b).to_vector() == std::vector<float>{-1, -4, 4, 0.25f, 0});
  CHECK(Tensor<float>(a * b).to_vector() == std::vector<float>{2, -4, -3, 0.125f, 16});
  CHECK(Tensor<float>(a / b).to_vector() == std::vector<float>{0.5f, -1, -3, 2, 1});
  CHECK(Tensor<float>(fiber::maximum(a, b)).to_vector() == std::vector<float>{2, 2, 3, 0.5f, 4});
  CHECK(Tensor<float>(fiber::minimum(a, b)).to_vector() == std::vector<float>{1, -2, -1, 0.25f, 4});
  CHECK(Tensor<float>(fiber::clamp(a, -1.0, 2.0)).to_vector() == std::vector<float>{1, -1, 2, 0.5f, 2});
  Tensor<float> p = fiber::pow(fiber::abs(a), 1.5);
  for (int i = 0; i < 5; ++i) CHECK(p.at({i}) == doctest::Approx(std::pow(std::abs(a.at({i})), 1.5)).epsilon(1e-6));
  CHECK(Tensor<float>(2.0 * a + 1).to_vector() == std::vector<float>{3, -3, 7, 2, 9});
  CHECK(Tensor<float>(1.0 / b).at({0}) == 0.5f);
}

TEST_CASE("comparisons give bool tensors; where and masked_fill select") {
  auto a = Tensor<float>::from_data({4}, {1, 2, 3, 4});
  auto b = Tensor<float>::from_data({4}, {4, 2, 2, 1});
  Tensor<bool> lt = a < b;
  CHECK(lt.to_vector() == std::vector<bool>{true, false, false, false});
  CHECK(Tensor<bool>(a == b).to_vector() == std::vector<bool>{false, true, false, false});
  CHECK(Tensor<bool>(a >= b).to_vector() == std::vector<bool>{false, true, true, true});
  CHECK(Tensor<bool>(a != b || a > 3.5).to_vector() == std::vector<bool>{true, false, true, true});
  CHECK(Tensor<bool>(!(a <= 2.0)).to_vector() == std::vector<bool>{false, false, true, true});
  CHECK(Tensor<float>(fiber::where(lt, a, b)).to_vector() == std::vector<float>{1, 2, 2, 1});
  CHECK(Tensor<float>(fiber::masked_fill(a, a > 2.0, -1e9)).to_vector() == std::vector<float>{1, 2, -1e9f, -1e9f});
  static_assert(std::is_same_v<fiber::result_t<decltype(a < b)>, bool>);
}

TEST_CASE("integer and mixed-type expressions promote like PyTorch") {
  auto i = Tensor<std::int64_t>::from_data({3}, {1, 2, 3});
  auto f = Tensor<float>::from_data({3}, {0.5f, 0.5f, 0.5f});
  static_assert(std::is_same_v<fiber::result_t<decltype(i * 2)>, std::int64_t>);
  static_assert(std::is_same_v<fiber::result_t<decltype(i * f)>, float>);
  static_assert(std::is_same_v<fiber::result_t<decltype(f * 2.5)>, float>);
  CHECK(fiber::eval(i * 3 + 1).to_vector() == std::vector<std::int64_t>{4, 7, 10});
  CHECK(fiber::eval(i * f).to_vector() == std::vector<float>{0.5f, 1, 1.5f});
  auto d = Tensor<double>::from_data({3}, {0.1, 0.2, 0.3});
  static_assert(std::is_same_v<fiber::result_t<decltype(d + f)>, double>);
  CHECK(fiber::eval(d + f).at({0}) == doctest::Approx(0.6));
  auto mask = Tensor<bool>::from_data({3}, {true, false, true});
  CHECK(fiber::eval(mask * f).to_vector() == std::vector<float>{0.5f, 0, 0.5f});
}

TEST_CASE("assigning into views, including strided and overlapping ones") {
  auto t = fiber::arange<float>(0, 12).reshape({3, 4});
  t.t().narrow(0, 1, 2).assign(t.t().narrow(0, 1, 2) * 10.0);  // columns 1, 2 scaled in place
  CHECK(t.to_vector() == std::vector<float>{0, 10, 20, 3, 4, 50, 60, 7, 8, 90, 100, 11});
  // Overlap with a different layout: assigning the transpose of a square matrix into itself.
  auto s = fiber::arange<float>(0, 4).reshape({2, 2});
  s.assign(s.t() + 0.0);
  CHECK(s.to_vector() == std::vector<float>{0, 2, 1, 3});
  CHECK_THROWS_WITH_AS(s.assign(fiber::arange<float>(0, 3) + 1.0), doctest::Contains("assign: shapes [3] and [2, 2] cannot be broadcast"), fiber::Error);
}

TEST_CASE("NaN compares unequal to everything and counts as true, as in IEEE and PyTorch") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto a = Tensor<float>::from_data({3}, {nan, 1, 0});
  CHECK(Tensor<bool>(a != a).to_vector() == std::vector<bool>{true, false, false});
  CHECK(Tensor<bool>(a == a).to_vector() == std::vector<bool>{false, true, true});
  CHECK(Tensor<float>(fiber::where(a, 5.0, 7.0)).to_vector() == std::vector<float>{5, 5, 7});
}
