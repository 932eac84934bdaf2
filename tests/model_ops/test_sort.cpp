// sort and topk: stable ties in both directions, NaN placement, topk's tie rule (lower index
// first), strided views, gradcheck, thread-count independence, errors.
#include <doctest/doctest.h>

#include <limits>

#include "fiber/ops/sort.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;
using I = std::vector<std::int64_t>;

TEST_CASE("sort: stable order of ties, both directions, NaN as PyTorch places it") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto x = Tensor<float>::from_data({6}, {2, 1, nan, 2, 1, 3});
  auto [v, i] = fiber::sort(x);
  CHECK(i.to_vector() == I{1, 4, 0, 3, 5, 2});
  CHECK(v.to_vector()[4] == 3.f);
  auto [vd, id] = fiber::sort(x, 0, true);
  CHECK(id.to_vector() == I{2, 5, 0, 3, 1, 4});
  CHECK(std::isnan(vd.to_vector()[0]));
  // Along axis 0 of a 2-D tensor, and on a transposed view.
  const auto m = Tensor<float>::from_data({3, 2}, {3, 0, 1, 0, 2, -1});
  CHECK(fiber::sort(m, 0).indices.to_vector() == I{1, 2, 2, 0, 0, 1});
  CHECK(fiber::sort(m.t(), 1).values.to_vector() == std::vector<float>{1, 2, 3, -1, 0, 0});
  // Integers too.
  CHECK(fiber::sort(Tensor<std::int64_t>::from_data({4}, {5, -1, 5, 0}), 0, true).indices.to_vector() == I{0, 2, 3, 1});
}

TEST_CASE("sort: stable on long lines full of ties (beyond any insertion-sort cutoff)") {
  // 3 rows of 500 values in {0, 1, 2, 3}: equal values must keep increasing indices.
  fiber::Generator gen(4);
  auto u = fiber::rand<float>({3, 500}, gen).to_vector();
  for (float& v : u) v = std::floor(v * 4);
  const auto x = Tensor<float>::from_data({3, 500}, u);
  for (bool desc : {false, true}) {
    auto [v, i] = fiber::sort(x, 1, desc);
    const auto vv = v.to_vector();
    const auto iv = i.to_vector();
    bool ok = true;
    for (std::size_t k = 1; k < vv.size(); ++k)
      if (k % 500 != 0) ok = ok && (desc ? vv[k - 1] >= vv[k] : vv[k - 1] <= vv[k]) && (vv[k - 1] != vv[k] || iv[k - 1] < iv[k]);
    CHECK(ok);
  }
}

TEST_CASE("topk: largest and smallest, ties to the lower index, k = 0 and k = n") {
  const auto x = Tensor<float>::from_data({2, 5}, {1, 4, 4, 0, 4, 2, 2, 7, 2, -1});
  auto [v, i] = fiber::topk(x, 2);
  CHECK(v.to_vector() == std::vector<float>{4, 4, 7, 2});
  CHECK(i.to_vector() == I{1, 2, 2, 0});
  CHECK(fiber::topk(x, 2, -1, false).indices.to_vector() == I{3, 0, 4, 0});
  CHECK(fiber::topk(x, 1, 0).indices.to_vector() == I{1, 0, 1, 1, 0});
  CHECK(fiber::topk(x, 0).values.shape() == fiber::Shape{2, 0});
  CHECK(fiber::topk(x, 5).indices.to_vector() == fiber::sort(x, -1, true).indices.to_vector());
}

TEST_CASE("sort / topk: the same for any thread count") {
  fiber::test::RestoreThreads restore;
  fiber::Generator gen(5);
  const auto x = fiber::rand<float>({300, 70}, gen);
  fiber::set_num_threads(1);
  const auto one = fiber::sort(x, 0, true), top1 = fiber::topk(x, 9, 1);
  fiber::set_num_threads(3);
  const auto three = fiber::sort(x, 0, true), top3 = fiber::topk(x, 9, 1);
  CHECK(one.indices.to_vector() == three.indices.to_vector());
  CHECK(top1.indices.to_vector() == top3.indices.to_vector());
  CHECK(top1.values.to_vector() == top3.values.to_vector());
}

TEST_CASE("gradcheck: sort and topk") {
  const auto x = rnd({3, 5, 4}, 9);  // distinct values: the order is locally constant
  CHECK_GRADCHECK([](Vars v) { return fiber::sort(v[0], 1).values; }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::sort(v[0], -1, true).values; }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::topk(v[0], 2, 1).values; }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::topk(v[0].transpose(0, 2), 3, 0, false).values; }, x);
}

TEST_CASE("sort / topk: bad arguments name the op") {
  const auto x = Tensor<float>::zeros({2, 3});
  CHECK_THROWS_WITH_AS(fiber::topk(x, 4), doctest::Contains("topk: k = 4 is out of range for dimension 1 of size 3"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::topk(x, -1), doctest::Contains("topk: k = -1"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::sort(x, 2), doctest::Contains("sort: axis 2 is out of range"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::sort(Tensor<float>::scalar(1.f)), doctest::Contains("sort: input must have at least one dimension"),
                       fiber::Error);
}
