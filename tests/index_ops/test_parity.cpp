// Parity with PyTorch (float32): forward values and input gradients of every fixture written by
// tests/reference/make_index_ops.py. The upstream gradient of an output is the first numel values
// of gpool.npy, as in the script. Tolerances:
//   forward  |ours - torch| <= 1e-6 + 1e-5 |torch|   (weights computed in float, as PyTorch)
//            interpolation: the absolute part is 32 float ulps of max|x| instead (see below)
//   gradient |ours - torch| <= 1e-5 + 1e-5 |torch|   (sums of a few terms in another order)
// Index and join ops copy or add the same float values: exact forward, gradients to 1e-6.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "fiber/fiber.hpp"
#include "npy.hpp"
#include "test_util.hpp"

using fiber::InterpolateMode;
using fiber::InterpolateOptions;
using fiber::Tensor;
using fiber::Var;
using fiber::test::load_npy;
using Ids = Tensor<std::int64_t>;

namespace {
Tensor<float> fixture(const std::string& name) { return load_npy<float>("index_ops/" + name + ".npy"); }

Tensor<float> upstream(const fiber::Shape& shape) {
  static const Tensor<float> pool = fixture("gpool");
  REQUIRE(shape.numel() <= pool.numel());
  return pool.narrow(0, 0, shape.numel()).reshape(shape).contiguous();
}

double max_abs_diff(const Tensor<float>& a, const Tensor<float>& b) {
  auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(double(va[i]) - double(vb[i])));
  return m;
}

struct Tolerance {
  double rtol, atol;
};
constexpr Tolerance kForward{1e-5, 1e-6}, kGradient{1e-5, 1e-5}, kExactForward{0, 1e-30}, kIndexGradient{1e-6, 1e-6};

// Runs f on a Var of x, compares the output with <name>_out and (when `grad`) the gradient of x
// under the upstream gradient with <name>_grad. Returns the largest absolute differences.
std::pair<double, double> parity(const std::string& name, const Tensor<float>& x, const std::function<Var<float>(const Var<float>&)>& f,
                                 Tolerance fwd, Tolerance bwd, bool grad = true) {
  CAPTURE(name);
  Var<float> xv(x.clone(), true);
  Var<float> y = f(xv);
  const Tensor<float> want = fixture(name + "_out");
  REQUIRE(y.shape() == want.shape());
  FIBER_CHECK_CLOSE(y.value(), want, fwd.rtol, fwd.atol);
  const double f_err = max_abs_diff(y.value(), want);
  double g_err = 0;
  if (grad) {
    y.backward(upstream(y.shape()));
    const Tensor<float> want_grad = fixture(name + "_grad");
    REQUIRE(xv.grad().shape() == want_grad.shape());
    FIBER_CHECK_CLOSE(xv.grad(), want_grad, bwd.rtol, bwd.atol);
    g_err = max_abs_diff(xv.grad(), want_grad);
  }
  return {f_err, g_err};
}

// An interpolated value is a weighted sum of up to 16 inputs (bicubic: 4 x 4 taps), so its float32
// rounding follows the inputs' size, not the output's: a bicubic value near 0 made of inputs near 3
// can be off by a few ulps of 3. Whether it is depends on how the compiler orders the sums (at -O1,
// unvectorised, interp_bicubic_ac0_up differed by 2.4e-6, 1.5 times the output-relative bound).
// Bound: 16 roundings, each within an ulp of a partial sum no larger than sum|w| max|x|, and sum|w|
// is at most 1.375^2 < 2 (bicubic, A = -0.75, at t = 0.5): 32 ulps of max|x|. That still catches a
// wrong tap or weight (differences of order 0.1).
Tolerance interpolation_forward(const Tensor<float>& x) {
  double largest = 0;
  for (float v : x.to_vector()) largest = std::max(largest, double(std::abs(v)));
  return {kForward.rtol, std::max(kForward.atol, 32.0 * double(std::numeric_limits<float>::epsilon()) * largest)};
}

struct InterpCase {
  const char* name;
  bool three_d;
  InterpolateOptions opt;
};
}  // namespace

TEST_CASE("parity with F.interpolate (float32, forward and gradient)") {
  const Tensor<float> x4 = fixture("x4"), x3 = fixture("x3");
  using M = InterpolateMode;
  const std::vector<InterpCase> cases = {
      {"nearest_up", false, {.size = {11, 13}, .mode = M::nearest}},
      {"nearest_down", false, {.size = {3, 4}, .mode = M::nearest}},
      {"nearest_scale", false, {.scale_factor = {1.7, 0.6}, .mode = M::nearest}},
      {"nearest_x2", false, {.scale_factor = {2.0}, .mode = M::nearest}},
      {"nearest_same", false, {.scale_factor = {1.1}, .mode = M::nearest}},
      {"nearest_exact_up", false, {.size = {11, 13}, .mode = M::nearest_exact}},
      {"nearest_exact_down", false, {.size = {3, 4}, .mode = M::nearest_exact}},
      {"bilinear_ac0_up", false, {.size = {11, 13}, .mode = M::bilinear, .align_corners = false}},
      {"bilinear_ac0_down", false, {.size = {3, 4}, .mode = M::bilinear, .align_corners = false}},
      {"bilinear_ac1_up", false, {.size = {11, 13}, .mode = M::bilinear, .align_corners = true}},
      {"bilinear_ac1_down", false, {.size = {3, 4}, .mode = M::bilinear, .align_corners = true}},
      {"bilinear_ac1_one", false, {.size = {1, 4}, .mode = M::bilinear, .align_corners = true}},
      {"bilinear_ac0_scale", false, {.scale_factor = {1.5, 2.3}, .mode = M::bilinear, .align_corners = false}},
      {"bilinear_ac0_recompute", false,
       {.scale_factor = {1.5, 2.3}, .mode = M::bilinear, .align_corners = false, .recompute_scale_factor = true}},
      {"bilinear_ac0_same", false, {.scale_factor = {1.1}, .mode = M::bilinear, .align_corners = false}},
      {"bicubic_ac0_up", false, {.size = {11, 13}, .mode = M::bicubic, .align_corners = false}},
      {"bicubic_ac0_down", false, {.size = {3, 4}, .mode = M::bicubic, .align_corners = false}},
      {"bicubic_ac1_up", false, {.size = {11, 13}, .mode = M::bicubic, .align_corners = true}},
      {"bicubic_ac1_down", false, {.size = {3, 4}, .mode = M::bicubic, .align_corners = true}},
      {"bicubic_ac0_scale", false, {.scale_factor = {1.5, 0.7}, .mode = M::bicubic, .align_corners = false}},
      {"linear_ac0_up", true, {.size = {14}, .mode = M::linear, .align_corners = false}},
      {"linear_ac1_down", true, {.size = {5}, .mode = M::linear, .align_corners = true}},
      {"linear_ac0_scale", true, {.scale_factor = {1.6}, .mode = M::linear, .align_corners = false}},
      {"nearest1d_down", true, {.size = {4}, .mode = M::nearest}},
      {"area_2d", false, {.size = {3, 4}, .mode = M::area}},
      {"area_1d", true, {.size = {4}, .mode = M::area}},
  };
  const Tolerance forward4 = interpolation_forward(x4), forward3 = interpolation_forward(x3);
  MESSAGE("interpolate forward atol: ", forward4.atol, " (x4), ", forward3.atol, " (x3)");
  double worst_f = 0, worst_g = 0;
  for (const auto& c : cases) {
    auto [f, g] = parity(std::string("interp_") + c.name, c.three_d ? x3 : x4,
                         [&](const Var<float>& x) { return fiber::interpolate(x, c.opt); }, c.three_d ? forward3 : forward4,
                         kGradient);
    worst_f = std::max(worst_f, f);
    worst_g = std::max(worst_g, g);
  }
  auto [f, g] = parity("interp_upsample_bilinear_t", x4,
                       [](const Var<float>& x) { return fiber::upsample_bilinear(x.transpose(2, 3), {8, 6}); }, forward4, kGradient);
  worst_f = std::max(worst_f, f);
  worst_g = std::max(worst_g, g);
  // PyTorch's bicubic backward is not the adjoint of its forward in this case: forward only.
  auto [fb, gb] = parity("interp_bicubic_ac0_same", x4, [](const Var<float>& x) {
    return fiber::interpolate(x, {.scale_factor = {1.1}, .mode = M::bicubic, .align_corners = false});
  }, forward4, kGradient, false);
  worst_f = std::max(worst_f, fb);
  MESSAGE("interpolate parity (float32): max |forward diff| ", worst_f, ", max |gradient diff| ", worst_g);
}

TEST_CASE("parity with F.adaptive_avg_pool2d / 1d (float32, forward and gradient)") {
  const Tensor<float> x4 = fixture("x4"), x3 = fixture("x3");
  double worst_f = 0, worst_g = 0;
  for (auto [oh, ow] : std::vector<std::pair<int, int>>{{3, 4}, {5, 7}, {2, 3}, {7, 9}, {1, 1}}) {
    const std::string name = "aap2d_" + std::to_string(oh) + "x" + std::to_string(ow);
    auto [f, g] = parity(name, x4, [oh, ow](const Var<float>& x) { return fiber::adaptive_avg_pool2d(x, {oh, ow}); }, kForward,
                         kGradient);
    worst_f = std::max(worst_f, f);
    worst_g = std::max(worst_g, g);
  }
  for (int ol : {4, 13}) {
    auto [f, g] = parity("aap1d_" + std::to_string(ol), x3, [ol](const Var<float>& x) { return fiber::adaptive_avg_pool1d(x, ol); },
                         kForward, kGradient);
    worst_f = std::max(worst_f, f);
    worst_g = std::max(worst_g, g);
  }
  MESSAGE("adaptive_avg_pool parity (float32): max |forward diff| ", worst_f, ", max |gradient diff| ", worst_g);
}

TEST_CASE("parity with index_select, gather, embedding, one_hot (float32)") {
  const Tensor<float> xi = fixture("xi");
  const Ids sel = load_npy<std::int64_t>("index_ops/sel.npy");
  double worst_g = 0;
  for (int axis : {0, 1, 2}) {
    auto [f, g] = parity("index_select_" + std::to_string(axis), xi,
                         [&](const Var<float>& x) { return fiber::index_select(x, axis, sel); }, kExactForward, kIndexGradient);
    worst_g = std::max(worst_g, g);
  }
  for (int axis : {0, 1, 2}) {
    const Ids idx = load_npy<std::int64_t>("index_ops/gather_" + std::to_string(axis) + "_index.npy");
    auto [f, g] = parity("gather_" + std::to_string(axis), xi, [&](const Var<float>& x) { return fiber::gather(x, axis, idx); },
                         kExactForward, kIndexGradient);
    worst_g = std::max(worst_g, g);
  }
  const Tensor<float> w = fixture("emb_w");
  const Ids ids = load_npy<std::int64_t>("index_ops/emb_ids.npy");
  for (auto [tag, pad] : std::vector<std::pair<std::string, std::optional<std::int64_t>>>{{"nopad", {}}, {"pad0", 0}, {"padm1", -1}}) {
    auto [f, g] = parity("embedding_" + tag, w, [&](const Var<float>& x) { return fiber::embedding(x, ids, pad); }, kExactForward,
                         kIndexGradient);
    worst_g = std::max(worst_g, g);
  }
  CHECK(fiber::one_hot(ids, 10).to_vector() == load_npy<std::int64_t>("index_ops/one_hot_10.npy").to_vector());
  CHECK(fiber::one_hot(ids).to_vector() == load_npy<std::int64_t>("index_ops/one_hot_infer.npy").to_vector());
  CHECK(fiber::one_hot(ids).shape() == load_npy<std::int64_t>("index_ops/one_hot_infer.npy").shape());
  MESSAGE("index ops parity (float32): forward exact, max |gradient diff| ", worst_g);
}

TEST_CASE("parity with torch.cat, torch.stack, torch.chunk (float32)") {
  const Tensor<float> a = fixture("ja"), b = fixture("jb");
  CHECK(fiber::concat({a, b}, 1).to_vector() == fixture("concat_1").to_vector());
  const Tensor<float> a2 = a * 2.0f;
  const Tensor<float> s = fiber::stack({a, a2}, 2);
  CHECK(s.shape() == fixture("stack_2").shape());
  CHECK(s.to_vector() == fixture("stack_2").to_vector());
  Var<float> x(fixture("xi"), true);
  auto p = fiber::chunk(x, 3, 1);
  REQUIRE(p.size() == 3);
  Var<float> loss = fiber::sum(Var<float>(p[0] * upstream(p[0].shape()))) + fiber::sum(Var<float>(p[2] * upstream(p[2].shape())));
  loss.backward();
  FIBER_CHECK_CLOSE(x.grad(), fixture("chunk_grad"), 1e-6, 1e-6);
}
