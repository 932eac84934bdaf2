// concat, stack, split, chunk: values on hand-checked cases, views, gradients.
#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

namespace {
Tensor<float> iota_from(const fiber::Shape& s, float start = 0) {
  Tensor<float> t = Tensor<float>::empty(s);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = start + float(i);
  return t;
}
}  // namespace

TEST_CASE("concat along each axis, negative axis, non-contiguous inputs") {
  auto a = iota_from({2, 2});          // 0 1 / 2 3
  auto b = iota_from({2, 1}, 10);      // 10 / 11
  CHECK(fiber::concat({a, b}, 1).to_vector() == std::vector<float>{0, 1, 10, 2, 3, 11});
  CHECK(fiber::concat({a, b}, -1).shape() == fiber::Shape{2, 3});
  CHECK(fiber::concat({a, a}, 0).to_vector() == std::vector<float>{0, 1, 2, 3, 0, 1, 2, 3});
  // a.t() is not contiguous: goes through the strided copy.
  CHECK(fiber::concat({a.t(), b}, 1).to_vector() == std::vector<float>{0, 2, 10, 1, 3, 11});
  // one input, and empty pieces
  CHECK(fiber::concat({a}, 0).to_vector() == a.to_vector());
  auto empty = Tensor<float>::empty({2, 0});
  CHECK(fiber::concat({empty, b, empty}, 1).to_vector() == b.to_vector());
  // integer and bool tensors too
  auto i = Tensor<std::int64_t>::from_data({2}, {4, 5});
  CHECK(fiber::concat({i, i}).to_vector() == std::vector<std::int64_t>{4, 5, 4, 5});
}

TEST_CASE("stack inserts a new axis") {
  auto a = iota_from({2, 3});
  auto b = iota_from({2, 3}, 100);
  auto s0 = fiber::stack({a, b}, 0);
  CHECK(s0.shape() == fiber::Shape{2, 2, 3});
  CHECK(s0.select(0, 1).to_vector() == b.to_vector());
  auto s2 = fiber::stack({a, b}, -1);
  CHECK(s2.shape() == fiber::Shape{2, 3, 2});
  CHECK(s2.at({1, 2, 0}) == 5.0f);
  CHECK(s2.at({1, 2, 1}) == 105.0f);
  auto s1 = fiber::stack(std::vector<Tensor<float>>{a.t(), b.t()}, 1);
  CHECK(s1.shape() == fiber::Shape{3, 2, 2});
  CHECK(s1.at({2, 0, 1}) == 5.0f);
  CHECK(s1.at({2, 1, 0}) == 102.0f);
}

TEST_CASE("split and chunk give views with PyTorch's piece sizes") {
  auto x = iota_from({2, 7});
  auto pieces = fiber::split(x, 3, 1);
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[0].shape() == fiber::Shape{2, 3});
  CHECK(pieces[2].shape() == fiber::Shape{2, 1});
  CHECK(pieces[2].to_vector() == std::vector<float>{6, 13});
  CHECK(pieces[1].shares_storage_with(x));
  auto sized = fiber::split(x, std::vector<std::int64_t>{1, 0, 6}, -1);
  REQUIRE(sized.size() == 3);
  CHECK(sized[1].numel() == 0);
  CHECK(sized[2].to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13});
  // torch.chunk(arange(5), 3) -> sizes 2, 2, 1; chunk(arange(6), 4) -> 2, 2, 2 (only 3 pieces)
  auto c5 = fiber::chunk(iota_from({5}), 3);
  REQUIRE(c5.size() == 3);
  CHECK(c5[2].numel() == 1);
  CHECK(fiber::chunk(iota_from({6}), 4).size() == 3);
  // empty dimension: `chunks` empty pieces; split of an empty dimension: one piece
  CHECK(fiber::chunk(Tensor<float>::empty({0, 2}), 3).size() == 3);
  CHECK(fiber::split(Tensor<float>::empty({0}), 0).size() == 1);
}

TEST_CASE("gradcheck: concat and stack, every input, non-contiguous inputs") {
  auto a = rnd({2, 3, 4}, 101), b = rnd({2, 2, 4}, 102), c = rnd({2, 1, 4}, 103);
  CHECK_GRADCHECK([](Vars v) { return fiber::concat(v, 1); }, a, b, c);
  CHECK_GRADCHECK([](Vars v) { return fiber::concat({v[0].transpose(0, 2), v[1].transpose(0, 2)}, 1); }, a, b);
  CHECK_GRADCHECK([](Vars v) { return fiber::concat({v[0], Var<double>(v[0] * 2.0)}, -1); }, a);
  auto d = rnd({2, 3, 4}, 104);
  CHECK_GRADCHECK([](Vars v) { return fiber::stack(v, 0); }, a, d);
  CHECK_GRADCHECK([](Vars v) { return fiber::stack({v[0], v[1].permute({0, 1, 2})}, 3); }, a, d);
  CHECK_GRADCHECK([](Vars v) { return fiber::stack({v[0].transpose(1, 2), v[1].transpose(1, 2)}, -2); }, a, d);
}

TEST_CASE("gradcheck: split and chunk pieces flow back; unused pieces give zeros") {
  auto x = rnd({3, 7, 2}, 111);
  CHECK_GRADCHECK([](Vars v) { auto p = fiber::split(v[0], 3, 1); return fiber::concat({p[2], p[0]}, 1); }, x);
  CHECK_GRADCHECK([](Vars v) {
    auto p = fiber::split(v[0], std::vector<std::int64_t>{2, 4, 1}, 1);
    return Var<double>(p[1] * p[1] + fiber::sum(p[2], {1}, true));
  }, x);
  CHECK_GRADCHECK([](Vars v) { auto p = fiber::chunk(v[0].transpose(0, 1), 4, 0); return p[3]; }, x);
  // the same piece used twice accumulates
  CHECK_GRADCHECK([](Vars v) { auto p = fiber::chunk(v[0], 2, 2); return Var<double>(p[0] * 3.0 + p[0] * p[1]); }, x);

  Var<double> y(x.clone(), true);
  auto p = fiber::chunk(y, 3, 0);
  fiber::sum(p[1]).backward();
  auto g = y.grad();
  CHECK(fiber::sum(g.select(0, 0)).item() == 0.0);
  CHECK(fiber::sum(g.select(0, 1)).item() == 14.0);
  CHECK(fiber::sum(g.select(0, 2)).item() == 0.0);
}

TEST_CASE("split of a Var that needs no gradient records nothing") {
  Var<double> x(rnd({4, 2}, 121));
  auto p = fiber::split(x, 2, 0);
  CHECK(p.size() == 2);
  CHECK(!p[0].requires_grad());
  fiber::NoGrad guard;
  Var<double> w(rnd({4, 2}, 122), true);
  CHECK(!fiber::chunk(w, 2, 0)[1].requires_grad());
}
