// attention_softmax against the unfused softmax(scale * s + bias + mask) in double, at Swin and
// text shapes (rows longer than a packet, with tails); broadcasting of bias and mask; gradcheck
// of the scores and the bias; no gradient for the mask; thread-count independence; errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "fiber/ops/attention_softmax.hpp"
#include "fiber/ops/softmax.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

namespace {
Tensor<double> reference(const Tensor<double>& s, double scale, const Tensor<double>& bias, const Tensor<double>& mask) {
  Tensor<double> z = s * scale;
  if (bias.defined()) z = z + bias;
  if (mask.defined()) z = z + mask;
  return fiber::softmax(z, -1);
}
}  // namespace

TEST_CASE("attention_softmax: equals softmax(scale * s + bias + mask) at Swin and text shapes") {
  // Swin: B = 2, nW = 4, heads 3, N = 49 (7x7 windows): scores viewed as [B, nW, h, N, N].
  const std::int64_t B = 2, nW = 4, h = 3, N = 49;
  const auto s = rnd({B, nW, h, N, N}, 1, -4, 4), bias = rnd({h, N, N}, 2);
  Tensor<double> mask = rnd({nW, 1, N, N}, 3);
  mask.assign(where(mask > 0.3, -100.0, 0.0));
  FIBER_CHECK_CLOSE(fiber::attention_softmax(s, 0.125, bias, mask), reference(s, 0.125, bias, mask), 1e-13, 1e-15);
  FIBER_CHECK_CLOSE(fiber::attention_softmax(s, 0.125, bias), reference(s, 0.125, bias, {}), 1e-13, 1e-15);
  FIBER_CHECK_CLOSE(fiber::attention_softmax(s, 1.0), fiber::softmax(s, -1), 1e-13, 1e-15);
  // Text: [B, h, L, L] with an additive mask [B, 1, 1, L] holding -inf; float, L = 21 (a tail).
  const Tensor<float> t = rnd({2, 4, 21, 21}, 4).to<float>();
  Tensor<float> tm = Tensor<float>::zeros({2, 1, 1, 21});
  tm.narrow(3, 17, 4).fill_(-std::numeric_limits<float>::infinity());
  const Tensor<float> want = fiber::softmax(Tensor<float>(t * 0.5f + tm), -1);
  FIBER_CHECK_CLOSE(fiber::attention_softmax(t, 0.5f, Tensor<float>(), tm), want, 1e-6, 1e-7);
  // A bias broadcast along the row (last dim 1) and a non-contiguous scores view.
  const auto col = rnd({h, N, 1}, 5);
  FIBER_CHECK_CLOSE(fiber::attention_softmax(s.transpose(3, 4), 2.0, col), reference(s.transpose(3, 4), 2.0, col, {}), 1e-13,
                    1e-15);
}

TEST_CASE("softmax and attention_softmax (float) produce no denormals; the other values are those of the exact softmax") {
  // Swin's shifted-window mask: -100 on some entries, whose exact probability e^-100 / sum is a
  // denormal float; a row where e^-86.9 (normal) over a sum of ~60 is denormal; a column softmax
  // (strided lines). Denormals cost a microcode assist per instruction on Intel CPUs, so the
  // kernels give exactly 0 there (the exact value is below 2^-125) and every other value as the
  // double-precision softmax, within float rounding.
  const std::int64_t rows = 6, n = 61;
  Tensor<float> s = rnd({rows, n}, 8, -3, 3).to<float>();
  Tensor<float> mask = Tensor<float>::zeros({rows, n});
  mask.narrow(1, 40, 21).fill_(-100.f);
  s.select(0, 5).fill_(0.f);
  s.select(0, 5).narrow(0, 0, 1).fill_(-86.9f);
  const Tensor<float> z = s + mask;
  // The exact softmax of each row of z, in double with std::exp (independent of our kernels).
  std::vector<double> exact(std::size_t(rows * n));
  for (std::int64_t r = 0; r < rows; ++r) {
    double mx = -1e300, sum = 0;
    for (std::int64_t j = 0; j < n; ++j) mx = std::max(mx, double(z.at({r, j})));
    for (std::int64_t j = 0; j < n; ++j) sum += std::exp(double(z.at({r, j})) - mx);
    for (std::int64_t j = 0; j < n; ++j) exact[std::size_t(r * n + j)] = std::exp(double(z.at({r, j})) - mx) / sum;
  }
  // y: the rows of z (transposed: y[j, r]), compared with exact[r, j].
  auto check = [&](const Tensor<float>& y, bool transposed) {
    const auto got = (transposed ? Tensor<float>(y.t().contiguous()) : y).to_vector();
    const auto& ref = exact;
    int flushed = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(std::fpclassify(got[i]) != FP_SUBNORMAL);
      // (No value of these rows lies between the smallest normal float and 4 times it.)
      if (ref[i] < std::numeric_limits<float>::min()) {
        CHECK(got[i] == 0.f);
        flushed += 1;
      } else if (ref[i] >= 4 * std::numeric_limits<float>::min()) {
        CHECK(std::abs(got[i] - ref[i]) <= 1e-6 * ref[i]);
      }
    }
    return flushed;
  };
  const int tiny = rows * 21 + 1;  // the masked entries and row 5's first
  CHECK(check(fiber::attention_softmax(s, 1.f, Tensor<float>(), mask), false) == tiny);
  CHECK(check(fiber::softmax(z, -1), false) == tiny);
  // Along the first axis: [n, rows] lines vectorised across their neighbours.
  CHECK(check(fiber::softmax(Tensor<float>(z.t().contiguous()), 0), true) == tiny);
  // NaN still propagates through the cut-off.
  s.at({2, 3}) = std::numeric_limits<float>::quiet_NaN();
  const auto y = fiber::attention_softmax(s, 1.f, Tensor<float>(), mask).to_vector();
  CHECK(std::isnan(y[2 * n]));
  CHECK(!std::isnan(y[n]));
}

TEST_CASE("attention_softmax: a fully masked row is NaN, as softmax") {
  Tensor<float> mask = Tensor<float>::zeros({2, 3});
  mask.select(0, 1).fill_(-std::numeric_limits<float>::infinity());
  const auto y = fiber::attention_softmax(Tensor<float>::ones({2, 3}), 1.f, Tensor<float>(), mask).to_vector();
  CHECK(y[0] == doctest::Approx(1.0 / 3));
  CHECK(std::isnan(y[3]));
}

TEST_CASE("attention_softmax: the same for any thread count") {
  fiber::test::RestoreThreads restore;
  const Tensor<float> s = rnd({8, 3, 49, 49}, 6).to<float>(), b = rnd({3, 49, 49}, 7).to<float>();
  fiber::set_num_threads(1);
  const auto one = fiber::attention_softmax(s, 0.2f, b).to_vector();
  fiber::set_num_threads(3);
  CHECK(fiber::attention_softmax(s, 0.2f, b).to_vector() == one);
}

TEST_CASE("gradcheck: attention_softmax (scores and bias; none for the mask)") {
  const auto s = rnd({2, 2, 3, 5, 5}, 8, -2, 2), bias = rnd({3, 5, 5}, 9);
  const auto mask = rnd({2, 1, 5, 5}, 10, -3, 0);
  CHECK_GRADCHECK([&](Vars v) { return fiber::attention_softmax(v[0], 0.7, v[1], mask); }, s, bias);
  CHECK_GRADCHECK([&](Vars v) { return fiber::attention_softmax(v[0], 1.3); }, s);
  CHECK_GRADCHECK([&](Vars v) { return fiber::attention_softmax(v[0], 0.5, v[1]); }, rnd({3, 17}, 11), rnd({17}, 12));
  CHECK_GRADCHECK([&](Vars v) { return fiber::attention_softmax(v[0], 0.5, v[1]); }, rnd({3, 4, 6}, 13), rnd({3, 1, 1}, 14));
  // The bias as a Var that does not require grad: the scores still get theirs.
  Var<double> sv(s.clone(), true);
  fiber::attention_softmax(sv, 0.7, Var<double>(bias), mask).backward(Tensor<double>::ones(s.shape()));
  CHECK(sv.grad().defined());
}

TEST_CASE("attention_softmax: shapes that do not broadcast name the op and both shapes") {
  const auto s = Tensor<float>::zeros({8, 3, 5, 5});
  CHECK_THROWS_WITH_AS(fiber::attention_softmax(s, 1.f, Tensor<float>(), Tensor<float>::zeros({4, 5, 5})),
                       doctest::Contains("attention_softmax: mask of shape [4, 5, 5] does not broadcast to the scores of shape [8, 3, 5, 5]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::attention_softmax(s, 1.f, Tensor<float>::zeros({2, 8, 3, 5, 5})),
                       doctest::Contains("bias of shape [2, 8, 3, 5, 5] has more dimensions"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::attention_softmax(Tensor<float>::scalar(1.f), 1.f), doctest::Contains("at least one dimension"),
                       fiber::Error);
}
