#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "fiber/ops/linalg.hpp"
#include "gradcheck_util.hpp"
#include "npy.hpp"
#include "test_util.hpp"

using fiber::Shape;
using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

namespace {
// Naive [M, K] x [K, N] in double, for reference.
Tensor<double> naive_mm(const Tensor<double>& a, const Tensor<double>& b) {
  const auto M = a.size(0), K = a.size(1), N = b.size(1);
  auto out = Tensor<double>::zeros({M, N});
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < K; ++k) s += a.at({i, k}) * b.at({k, j});
      out.at({i, j}) = s;
    }
  return out;
}
}  // namespace

TEST_CASE("matmul of 2-D operands, transposed views included, matches a naive product") {
  auto a = rnd({13, 17}, 1), b = rnd({17, 9}, 2);
  FIBER_CHECK_CLOSE(fiber::matmul(a, b), naive_mm(a, b), 1e-12, 1e-12);
  auto at = rnd({17, 13}, 3).t();  // a transposed view: passed to the GEMM with a flag
  FIBER_CHECK_CLOSE(fiber::matmul(at, b), naive_mm(at.contiguous(), b), 1e-12, 1e-12);
  auto strided = rnd({13, 34}, 4).slice(1, 0, 34, 2);  // not readable in place: copied
  FIBER_CHECK_CLOSE(fiber::matmul(strided, b), naive_mm(strided.contiguous(), b), 1e-12, 1e-12);
}

TEST_CASE("matmul promotes 1-D operands and broadcasts batch dimensions as PyTorch") {
  auto v = rnd({5}, 5), m = rnd({5, 3}, 6);
  CHECK(fiber::matmul(v, m).shape() == Shape{3});
  CHECK(fiber::matmul(m.t(), v).shape() == Shape{3});
  CHECK(fiber::matmul(v, v).dim() == 0);
  CHECK(fiber::matmul(rnd({4, 2, 3, 5}, 7), m).shape() == Shape{4, 2, 3, 3});
  CHECK(fiber::matmul(rnd({2, 1, 3, 5}, 8), rnd({4, 5, 2}, 9)).shape() == Shape{2, 4, 3, 2});
  CHECK_THROWS_WITH_AS(fiber::matmul(rnd({3, 4}, 1), rnd({5, 2}, 1)), doctest::Contains("inner dimensions differ"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::matmul(rnd({2, 3, 4}, 1), rnd({3, 4, 2}, 1)), doctest::Contains("cannot be broadcast"),
                       fiber::Error);
  CHECK_THROWS_AS(fiber::bmm(rnd({2, 3, 4}, 1), rnd({3, 4, 2}, 1)), fiber::Error);
}

TEST_CASE("zero-sized dimensions give PyTorch's results, not a division by zero") {
  // K = 0: an empty sum is 0 (torch.matmul(zeros(2, 3, 0), zeros(0, 4)) is zeros(2, 3, 4)).
  const Tensor<double> y = fiber::matmul(Tensor<double>::zeros({2, 3, 0}), Tensor<double>::zeros({0, 4}));
  REQUIRE(y.shape() == Shape{2, 3, 4});
  for (std::int64_t i = 0; i < y.numel(); ++i) CHECK(y.data()[i] == 0.0);
  // in = 0: F.linear gives the bias on every row.
  const Tensor<double> bias = Tensor<double>::from_data({2}, {1.5, -2.0});
  const Tensor<double> z = fiber::linear(Tensor<double>::zeros({3, 0}), Tensor<double>::zeros({2, 0}), bias);
  REQUIRE(z.shape() == Shape{3, 2});
  for (std::int64_t r = 0; r < 3; ++r) {
    CHECK(z.at({r, 0}) == 1.5);
    CHECK(z.at({r, 1}) == -2.0);
  }
  // N = 0 in the backward of a shared right operand.
  Var<double> a(Tensor<double>::zeros({2, 3, 4}), true), b(Tensor<double>::zeros({4, 0}), true);
  fiber::sum(fiber::matmul(a, b)).backward();
  CHECK(b.grad().shape() == Shape{4, 0});
}

TEST_CASE("broadcast batched matmul and its gradients match PyTorch (float32)") {
  using fiber::test::load_npy;
  Var<float> a(load_npy<float>("linalg/mm_a.npy"), true), b(load_npy<float>("linalg/mm_b.npy"), true);
  Var<float> y = fiber::matmul(a, b);
  FIBER_CHECK_CLOSE(y.value(), load_npy<float>("linalg/mm_y.npy"), 1e-5, 1e-5);
  Var<float> weighted = y * load_npy<float>("linalg/mm_w.npy");
  fiber::sum(weighted).backward();
  FIBER_CHECK_CLOSE(a.grad(), load_npy<float>("linalg/mm_ga.npy"), 1e-5, 1e-5);
  FIBER_CHECK_CLOSE(b.grad(), load_npy<float>("linalg/mm_gb.npy"), 1e-5, 1e-5);
}

TEST_CASE("gradcheck: matmul in every form, bmm, linear") {
  CHECK_GRADCHECK([](Vars v) { return fiber::matmul(v[0], v[1]); }, rnd({3, 4}, 10), rnd({4, 2}, 11));
  CHECK_GRADCHECK([](Vars v) { return fiber::matmul(v[0], v[1]); }, rnd({4}, 12), rnd({4, 3}, 13));
  CHECK_GRADCHECK([](Vars v) { return fiber::matmul(v[0], v[1]); }, rnd({2, 3, 4}, 14), rnd({4}, 15));
  CHECK_GRADCHECK([](Vars v) { return fiber::matmul(v[0], v[1]); }, rnd({2, 1, 3, 4}, 16), rnd({3, 4, 2}, 17));
  CHECK_GRADCHECK([](Vars v) { return fiber::matmul(v[0], v[1]); }, rnd({2, 3, 4}, 18), rnd({4, 5}, 19));
  CHECK_GRADCHECK([](Vars v) { return fiber::matmul(v[0].transpose(-1, -2), v[1]); }, rnd({2, 4, 3}, 20), rnd({2, 4, 5}, 21));
  CHECK_GRADCHECK([](Vars v) { return fiber::bmm(v[0], v[1]); }, rnd({3, 2, 4}, 22), rnd({3, 4, 2}, 23));
  CHECK_GRADCHECK([](Vars v) { return fiber::linear(v[0], v[1], v[2]); }, rnd({2, 3, 5}, 24), rnd({4, 5}, 25), rnd({4}, 26));
  CHECK_GRADCHECK([](Vars v) { return fiber::linear(v[0], v[1]); }, rnd({3, 5}, 27), rnd({2, 5}, 28));
}

TEST_CASE("linear equals matmul with the transposed weight plus the bias; results are thread-count independent") {
  fiber::Generator gen(3);
  auto x = fiber::randn<float>({40, 768}, gen), w = fiber::randn<float>({300, 768}, gen), b = fiber::randn<float>({300}, gen);
  const fiber::test::RestoreThreads restore_threads;
  fiber::set_num_threads(1);
  Tensor<float> one = fiber::linear(x, w, b);
  Tensor<float> ref = fiber::matmul(x, w.t()) + b;
  fiber::set_num_threads(3);
  CHECK(fiber::linear(x, w, b).to_vector() == one.to_vector());
  fiber::set_num_threads(2);
  CHECK(fiber::linear(x, w, b).to_vector() == one.to_vector());
  FIBER_CHECK_CLOSE(one, ref, 1e-5, 1e-4);
  CHECK_THROWS_WITH_AS(fiber::linear(x, w.t()), doctest::Contains("linear: input [40, 768] and weight [768, 300]"),
                       fiber::Error);
}

TEST_CASE("matmul over several batch dims read in place steps by the innermost batch stride") {
  // Swin's window attention: q, k, v are selected from a permuted qkv projection, so their batch
  // dims [B, nW, heads] are strided views that one batched GEMM call covers. A call that stepped
  // by the outermost dim's stride read past the operands (found by the model's first forward).
  const std::int64_t B = 2, nW = 6, h = 1, N = 5, d = 4;
  const Tensor<double> qkv = rnd({B, nW, N, 3, h, d}, 11).permute({3, 0, 1, 4, 2, 5});
  const Tensor<double> q = qkv.select(0, 0), k = qkv.select(0, 1);
  const Tensor<double> s = fiber::matmul(q, k.transpose(-1, -2));
  REQUIRE(s.shape() == Shape{B, nW, h, N, N});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t w = 0; w < nW; ++w)
      FIBER_CHECK_CLOSE(s.select(0, b).select(0, w).select(0, 0),
                        naive_mm(q.select(0, b).select(0, w).select(0, 0).contiguous(),
                                 k.select(0, b).select(0, w).select(0, 0).t().contiguous()),
                        1e-12, 1e-12);
}
