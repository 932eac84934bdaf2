// softmax, log_softmax, logsumexp: hand-checked values, edge lines, PyTorch parity (float32),
// gradcheck (float64), errors.
#include <limits>

#include "nn_test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::check_parity;
using fiber::test::fixture;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// softmax along `axis` the slow way, in double, for comparison.
Tensor<double> naive_softmax(const Tensor<double>& x, int axis, bool log) {
  const Tensor<double> m = fiber::amax(x, axis, true);
  const Tensor<double> s = fiber::sum(fiber::exp(x - m), axis, true);
  return log ? Tensor<double>(x - m - fiber::log(s)) : Tensor<double>(fiber::exp(x - m) / s);
}
}  // namespace

TEST_CASE("softmax and log_softmax: hand-checked values") {
  auto x = Tensor<double>::from_data({2, 3}, {1, 2, 3, 0, 0, 0});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  auto y = fiber::softmax(x, 1);
  CHECK(y.at({0, 0}) == doctest::Approx(std::exp(1.0) / z).epsilon(1e-14));
  CHECK(y.at({0, 2}) == doctest::Approx(std::exp(3.0) / z).epsilon(1e-14));
  CHECK(y.at({1, 1}) == doctest::Approx(1.0 / 3).epsilon(1e-14));
  auto ly = fiber::log_softmax(x, -1);
  CHECK(ly.at({0, 1}) == doctest::Approx(2.0 - std::log(z)).epsilon(1e-14));
  CHECK(ly.at({1, 2}) == doctest::Approx(-std::log(3.0)).epsilon(1e-14));
  auto col = fiber::softmax(x, 0);  // along the other axis: pairs (1, 0), (2, 0), (3, 0)
  CHECK(col.at({0, 2}) == doctest::Approx(std::exp(3.0) / (std::exp(3.0) + 1)).epsilon(1e-14));
  CHECK(fiber::softmax(Tensor<float>::scalar(7.f), 0).item() == 1.f);  // a 0-d tensor is one element
}

TEST_CASE("softmax agrees with the naive formula on every axis, row lengths around the packet width") {
  for (std::int64_t n : {1, 2, 7, 8, 15, 16, 17, 33, 144}) {
    auto x = rnd({3, n, 5}, 100 + n, -4, 4);
    for (int axis : {0, 1, 2}) {
      INFO("n = " << n << ", axis = " << axis);
      FIBER_CHECK_CLOSE(fiber::softmax(x, axis), naive_softmax(x, axis, false), 1e-12, 1e-15);
      FIBER_CHECK_CLOSE(fiber::log_softmax(x, axis), naive_softmax(x, axis, true), 1e-12, 1e-13);
    }
    auto xf = x.to<float>();
    FIBER_CHECK_CLOSE(fiber::softmax(xf, 1), naive_softmax(x, 1, false), 1e-5, 1e-7);
  }
}

TEST_CASE("softmax of non-contiguous input equals that of its contiguous copy") {
  auto x = rnd({6, 9}, 7);
  auto t = x.t();  // [9, 6], strides (1, 9)
  CHECK(!t.is_contiguous());
  CHECK(fiber::test::same_bits(fiber::softmax(t, 1), fiber::softmax(t.contiguous(), 1)));
  CHECK(fiber::test::same_bits(fiber::log_softmax(t, 0), fiber::log_softmax(t.contiguous(), 0)));
  CHECK(fiber::test::same_bits(fiber::logsumexp(t, {1}), fiber::logsumexp(t.contiguous(), {1})));
  auto sliced = x.slice(1, 1, 9, 2);  // every other column
  FIBER_CHECK_CLOSE(fiber::softmax(sliced, 1), naive_softmax(sliced.contiguous(), 1, false), 1e-12, 1e-15);
}

TEST_CASE("softmax is stable for huge logits") {
  auto x = Tensor<float>::from_data({1, 4}, {1000.f, 1000.f, -1000.f, 999.f});
  auto y = fiber::softmax(x, -1);
  const double e = std::exp(-1.0), z = 2 + e;
  CHECK(y.at({0, 0}) == doctest::Approx(1 / z).epsilon(1e-6));
  CHECK(y.at({0, 2}) == 0.f);
  CHECK(y.at({0, 3}) == doctest::Approx(e / z).epsilon(1e-6));
  auto ly = fiber::log_softmax(x, -1);
  CHECK(ly.at({0, 2}) == doctest::Approx(-2000 - std::log(z)).epsilon(1e-6));
  CHECK(fiber::logsumexp(x, {1}).item() == doctest::Approx(1000 + std::log(z)).epsilon(1e-6));
}

TEST_CASE("edge lines match PyTorch: all -inf, some -inf, +inf, NaN") {
  auto x = fixture("special_x");
  check_parity("special softmax", fiber::softmax(x, -1), fixture("special_softmax"), 1e-6, 1e-7);
  check_parity("special log_softmax", fiber::log_softmax(x, -1), fixture("special_log_softmax"), 1e-6, 1e-6);
  check_parity("special logsumexp", fiber::logsumexp(x, {-1}), fixture("special_logsumexp"), 1e-6, 1e-6);
  // Spelled out: an all -inf line is NaN for softmax, -inf for logsumexp.
  CHECK(std::isnan(fiber::softmax(x, -1).at({0, 0})));
  CHECK(fiber::logsumexp(x, {-1}).at({0}) == -std::numeric_limits<float>::infinity());
  CHECK(fiber::logsumexp(x, {-1}).at({2}) == std::numeric_limits<float>::infinity());
  // The same lines along a non-last axis (the strided kernel) give the same results.
  auto xt = x.t().contiguous();  // [5, 5], lines are columns
  CHECK(fiber::test::closeness(fiber::softmax(xt, 0).t(), fixture("special_softmax"), 1e-6, 1e-7) <= 1);
}

TEST_CASE("logsumexp over several axes, keepdim, empty axes") {
  auto x = rnd({3, 4, 5}, 9);
  auto all = fiber::logsumexp(x, fiber::Axes::all());
  CHECK(all.dim() == 0);
  CHECK(all.item() == doctest::Approx(std::log(fiber::sum(fiber::exp(x)).item())).epsilon(1e-13));
  auto k = fiber::logsumexp(x, {0, 2}, true);
  CHECK(k.shape() == fiber::Shape{1, 4, 1});
  FIBER_CHECK_CLOSE(k, Tensor<double>(fiber::log(fiber::sum(fiber::exp(x), {0, 2}, true))), 1e-13, 1e-13);
  CHECK(fiber::logsumexp(Tensor<double>::zeros({2, 4}), {1}).at({1}) == doctest::Approx(std::log(4.0)));
  auto empty = fiber::logsumexp(Tensor<double>::zeros({3, 0}), {1});
  CHECK(empty.shape() == fiber::Shape{3});
  CHECK(empty.at({0}) == -kInf);
}

TEST_CASE("parity with PyTorch (float32): forward and gradients, last axis and a middle axis") {
  // Tolerances: values of softmax in [0, 1]; log_softmax up to ~160 in magnitude for the +-80 rows.
  auto x = fixture("softmax_x"), g = fixture("softmax_g");
  Var<float> v = Var<float>::parameter(x);
  Var<float> y = fiber::softmax(v, -1);
  y.backward(g);
  check_parity("softmax [6,37] y", y.value(), fixture("softmax_y"), 1e-5, 1e-7);
  check_parity("softmax [6,37] gx", v.grad(), fixture("softmax_gx"), 1e-4, 1e-6);
  v.zero_grad();
  Var<float> ly = fiber::log_softmax(v, -1);
  ly.backward(g);
  check_parity("log_softmax [6,37] y", ly.value(), fixture("log_softmax_y"), 1e-5, 1e-5);
  check_parity("log_softmax [6,37] gx", v.grad(), fixture("log_softmax_gx"), 1e-4, 1e-5);
  v.zero_grad();
  Var<float> lse = fiber::logsumexp(v, {-1});
  lse.backward(fixture("logsumexp_g"));
  check_parity("logsumexp [6,37] y", lse.value(), fixture("logsumexp_y"), 1e-6, 1e-5);
  check_parity("logsumexp [6,37] gx", v.grad(), fixture("logsumexp_gx"), 1e-4, 1e-6);

  auto x3 = fixture("softmax3_x"), g3 = fixture("softmax3_g");
  Var<float> v3 = Var<float>::parameter(x3);
  Var<float> y3 = fiber::softmax(v3, 1);
  y3.backward(g3);
  check_parity("softmax [3,17,5] axis 1 y", y3.value(), fixture("softmax3_y"), 1e-5, 1e-7);
  check_parity("softmax [3,17,5] axis 1 gx", v3.grad(), fixture("softmax3_gx"), 1e-4, 1e-6);
  v3.zero_grad();
  Var<float> ly3 = fiber::log_softmax(v3, 1);
  ly3.backward(g3);
  check_parity("log_softmax [3,17,5] axis 1 y", ly3.value(), fixture("log_softmax3_y"), 1e-5, 1e-5);
  check_parity("log_softmax [3,17,5] axis 1 gx", v3.grad(), fixture("log_softmax3_gx"), 1e-4, 1e-5);
  v3.zero_grad();
  Var<float> lse3 = fiber::logsumexp(v3, {0, 2}, true);
  lse3.backward(fixture("logsumexp3_g"));
  check_parity("logsumexp [3,17,5] axes 0,2 y", lse3.value(), fixture("logsumexp3_y"), 1e-6, 1e-5);
  check_parity("logsumexp [3,17,5] axes 0,2 gx", v3.grad(), fixture("logsumexp3_gx"), 1e-4, 1e-6);

  // A non-contiguous view of the same logits gives the same results.
  Var<float> vn = Var<float>::parameter(fiber::test::noncontiguous(x));
  Var<float> yn = fiber::softmax(vn, -1);
  yn.backward(g);
  check_parity("softmax non-contiguous y", yn.value(), fixture("softmax_y"), 1e-5, 1e-7);
  check_parity("softmax non-contiguous gx", vn.grad(), fixture("softmax_gx"), 1e-4, 1e-6);
}

TEST_CASE("gradcheck: softmax and log_softmax on every axis, non-contiguous and fused inputs") {
  auto x = rnd({3, 4, 5}, 21, -2, 2);
  for (int axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    CHECK_GRADCHECK([axis](Vars v) { return fiber::softmax(v[0], axis); }, x);
    CHECK_GRADCHECK([axis](Vars v) { return fiber::log_softmax(v[0], axis); }, x);
  }
  auto m = rnd({5, 19}, 22, -3, 3);  // a row longer than a packet, with a tail
  CHECK_GRADCHECK([](Vars v) { return fiber::softmax(v[0].transpose(0, 1), 1); }, m);
  CHECK_GRADCHECK([](Vars v) { return fiber::log_softmax(v[0].slice(1, 0, 19, 3), 1); }, m);
  CHECK_GRADCHECK([](Vars v) { return fiber::softmax(v[0] * 0.5 + v[1], -1); }, m, rnd({19}, 23));
  CHECK_GRADCHECK([](Vars v) { return fiber::log_softmax(v[0] * v[0], 0); }, m);
}

TEST_CASE("gradcheck: logsumexp") {
  auto x = rnd({3, 4, 5}, 24, -2, 2);
  CHECK_GRADCHECK([](Vars v) { return fiber::logsumexp(v[0], {1}); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::logsumexp(v[0], {0, 2}, true); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::logsumexp(v[0], fiber::Axes::all()); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::logsumexp(v[0].transpose(0, 2), {-1}); }, x);
}

TEST_CASE("softmax family: bad axes name the op and the shape") {
  auto x = Tensor<float>::zeros({2, 3});
  CHECK_THROWS_WITH_AS(fiber::softmax(x, 2), doctest::Contains("softmax: axis 2 is out of range for shape [2, 3]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::log_softmax(x, -3),
                       doctest::Contains("log_softmax: axis -3 is out of range for shape [2, 3]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::logsumexp(x, {0, 5}), doctest::Contains("logsumexp: axis 5 is out of range"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::logsumexp(x, {1, -1}), doctest::Contains("logsumexp: axis -1 repeated"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::softmax(Tensor<float>::scalar(1.f), 1),
                       doctest::Contains("softmax: axis 1 is out of range for a 0-d tensor"), fiber::Error);
  Var<double> v = Var<double>::parameter(Tensor<double>::zeros({4}));
  CHECK_THROWS_WITH_AS(fiber::softmax(v, 1), doctest::Contains("softmax: axis 1 is out of range for shape [4]"),
                       fiber::Error);
}
