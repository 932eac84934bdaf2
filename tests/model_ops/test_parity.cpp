// Parity with PyTorch (float32): forward values and input gradients of every fixture written by
// tests/reference/make_model_ops.py. The upstream gradient of an output is the first numel values
// of gpool.npy, as in the script. Tolerances:
//   roll, pad, sort, topk: they move values: forward and gradients exact, indices equal.
//   attention_softmax  |ours - torch| <= 1e-6 + 1e-5 |torch| forward, 1e-6 + 1e-5 |torch| gradient
//                      (exp and the sums in another order; the bias gradient sums 8 terms).
//   linear_gelu        forward 1e-6 + 1e-5 |torch|, gradients 1e-5 + 1e-5 |torch| (GEMM order).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fiber/ops/attention_softmax.hpp"
#include "fiber/ops/linear_gelu.hpp"
#include "fiber/ops/pad.hpp"
#include "fiber/ops/roll.hpp"
#include "fiber/ops/sort.hpp"
#include "npy.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::load_npy;

namespace {
Tensor<float> fixture(const std::string& name) { return load_npy<float>("model_ops/" + name + ".npy"); }

Tensor<float> upstream(const fiber::Shape& shape) {
  static const Tensor<float> pool = fixture("gpool");
  REQUIRE(shape.numel() <= pool.numel());
  return pool.narrow(0, 0, shape.numel()).reshape(shape).contiguous();
}

struct Tolerance {
  double rtol, atol;
};
constexpr Tolerance kExact{0, 0}, kSoftmax{1e-5, 1e-6}, kGemmForward{1e-5, 1e-6}, kGemmGradient{1e-5, 1e-5};

// Runs f on Vars of `inputs`, compares the output with <name>_out and the gradient of input i
// under the upstream gradient with <name>_grad<i>.
void parity(const std::string& name, const std::vector<Tensor<float>>& inputs,
            const std::function<Var<float>(const std::vector<Var<float>>&)>& f, Tolerance fwd, Tolerance bwd) {
  CAPTURE(name);
  std::vector<Var<float>> vars;
  for (const auto& t : inputs) vars.emplace_back(t.clone(), true);
  Var<float> y = f(vars);
  const Tensor<float> want = fixture(name + "_out");
  REQUIRE(y.shape() == want.shape());
  if (fwd.rtol == 0 && fwd.atol == 0) CHECK(y.value().to_vector() == want.to_vector());
  else FIBER_CHECK_CLOSE(y.value(), want, fwd.rtol, fwd.atol);
  y.backward(upstream(y.shape()));
  for (std::size_t i = 0; i < vars.size(); ++i) {
    CAPTURE(i);
    const Tensor<float> want_grad = fixture(name + "_grad" + std::to_string(i));
    REQUIRE(vars[i].grad().shape() == want_grad.shape());
    if (bwd.rtol == 0 && bwd.atol == 0) CHECK(vars[i].grad().to_vector() == want_grad.to_vector());
    else FIBER_CHECK_CLOSE(vars[i].grad(), want_grad, bwd.rtol, bwd.atol);
  }
}
}  // namespace

TEST_CASE("parity with torch.roll (float32, forward and gradient, exact)") {
  const Tensor<float> x = fixture("xr");
  using V = std::vector<Var<float>>;
  parity("roll_swin", {x}, [](const V& v) { return fiber::roll(v[0], {-2, -2}, {1, 2}); }, kExact, kExact);
  parity("roll_swin_back", {x}, [](const V& v) { return fiber::roll(v[0], {2, 2}, {1, 2}); }, kExact, kExact);
  parity("roll_big", {x}, [](const V& v) { return fiber::roll(v[0], {7, -4}, {1, 3}); }, kExact, kExact);
  parity("roll_outer", {x}, [](const V& v) { return fiber::roll(v[0], 1, 0); }, kExact, kExact);
  parity("roll_repeat", {x}, [](const V& v) { return fiber::roll(v[0], {1, 2}, {1, 1}); }, kExact, kExact);
  parity("roll_flat", {x}, [](const V& v) { return fiber::roll(v[0], {5}, {}); }, kExact, kExact);
}

TEST_CASE("parity with F.pad (constant; float32, forward and gradient, exact)") {
  const Tensor<float> x = fixture("xp");
  using V = std::vector<Var<float>>;
  parity("pad_swin", {x}, [](const V& v) { return fiber::pad(v[0], {0, 0, 0, 1, 0, 2}); }, kExact, kExact);
  parity("pad_last", {x}, [](const V& v) { return fiber::pad(v[0], {1, 2}, 1.5f); }, kExact, kExact);
  parity("pad_crop", {x}, [](const V& v) { return fiber::pad(v[0], {2, -1, -1, 3}, -0.5f); }, kExact, kExact);
  parity("pad_three", {x}, [](const V& v) { return fiber::pad(v[0], {1, 1, 2, 0, 0, 1}); }, kExact, kExact);
}

TEST_CASE("parity of attention_softmax with softmax(scale * s + bias + mask) (float32)") {
  using V = std::vector<Var<float>>;
  // Swin: the scores viewed as [B, nW, h, N, N], the mask [nW, N, N] as [nW, 1, N, N].
  const Tensor<float> mask = fixture("att_swin_mask");
  parity("att_swin", {fixture("att_swin_scores"), fixture("att_swin_bias")}, [&](const V& v) {
    const std::int64_t nW = mask.size(0), B = v[0].size(0) / nW, h = v[0].size(1), N = v[0].size(2);
    return fiber::attention_softmax(v[0].view({B, nW, h, N, N}), 0.3f, v[1], mask.view({nW, 1, N, N})).view(v[0].shape());
  }, kSoftmax, kSoftmax);
  // Text: additive mask [B, 1, 1, L] (-10000 in one row, -inf in the other), no bias.
  const Tensor<float> text_mask = fixture("att_text_mask");
  parity("att_text", {fixture("att_text_scores")},
         [&](const V& v) { return fiber::attention_softmax(v[0], 0.125f, Var<float>(), text_mask); }, kSoftmax, kSoftmax);
}

TEST_CASE("parity of linear_gelu with F.gelu(F.linear(x, W, b)) (float32)") {
  using V = std::vector<Var<float>>;
  const Tensor<float> x = fixture("lg_x"), w = fixture("lg_w"), b = fixture("lg_b");
  parity("lg_bias", {x, w, b}, [](const V& v) { return fiber::linear_gelu(v[0], v[1], v[2]); }, kGemmForward, kGemmGradient);
  parity("lg_nobias", {x, w}, [](const V& v) { return fiber::linear_gelu(v[0], v[1]); }, kGemmForward, kGemmGradient);
}

TEST_CASE("parity with torch.sort(stable=True) and torch.topk (float32; values, indices, gradient)") {
  using V = std::vector<Var<float>>;
  const Tensor<float> xs = fixture("xs");
  for (int axis : {0, 1})
    for (bool desc : {false, true}) {
      const std::string name = "sort_" + std::to_string(axis) + (desc ? "_desc" : "_asc");
      CAPTURE(name);
      CHECK(fiber::sort(xs, axis, desc).indices.to_vector() == load_npy<std::int64_t>("model_ops/" + name + "_indices.npy").to_vector());
      parity(name, {xs}, [&](const V& v) { return fiber::sort(v[0], axis, desc).values; }, kExact, kExact);
    }
  const Tensor<float> xt = fixture("xt");
  struct Case {
    std::int64_t k;
    int axis;
    bool largest;
  };
  for (const Case c : {Case{3, 1, true}, Case{3, 1, false}, Case{2, 0, true}, Case{8, 1, true}}) {
    const std::string name =
        "topk_" + std::to_string(c.k) + "_" + std::to_string(c.axis) + (c.largest ? "_max" : "_min");
    CAPTURE(name);
    CHECK(fiber::topk(xt, c.k, c.axis, c.largest).indices.to_vector() ==
          load_npy<std::int64_t>("model_ops/" + name + "_indices.npy").to_vector());
    parity(name, {xt}, [&](const V& v) { return fiber::topk(v[0], c.k, c.axis, c.largest).values; }, kExact, kExact);
  }
}
