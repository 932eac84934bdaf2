// index_select, gather, embedding, one_hot: hand-checked values and gradients.
#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;
using Ids = Tensor<std::int64_t>;

namespace {
Tensor<float> iota(const fiber::Shape& s) {
  Tensor<float> t = Tensor<float>::empty(s);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = float(i);
  return t;
}
}  // namespace

TEST_CASE("index_select picks rows, columns and inner entries; repeats allowed") {
  auto x = iota({3, 4});  // 0..3 / 4..7 / 8..11
  auto ids = Ids::from_data({3}, {2, 0, 2});
  CHECK(fiber::index_select(x, 0, ids).to_vector() == std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  CHECK(fiber::index_select(x, 1, ids).to_vector() == std::vector<float>{2, 0, 2, 6, 4, 6, 10, 8, 10});
  CHECK(fiber::index_select(x, -1, Ids::from_data({0}, {})).shape() == fiber::Shape{3, 0});
  // non-contiguous input, 0-D index, int32 indices
  CHECK(fiber::index_select(x.t(), 0, Ids::scalar(1)).to_vector() == std::vector<float>{1, 5, 9});
  auto ids32 = Tensor<std::int32_t>::from_data({2}, {3, 1});
  CHECK(fiber::index_select(x, 1, ids32).to_vector() == std::vector<float>{3, 1, 7, 5, 11, 9});
}

TEST_CASE("gather follows torch.gather on each axis") {
  auto x = iota({2, 3});  // 0 1 2 / 3 4 5
  auto i1 = Ids::from_data({2, 2}, {2, 2, 0, 1});
  CHECK(fiber::gather(x, 1, i1).to_vector() == std::vector<float>{2, 2, 3, 4});
  auto i0 = Ids::from_data({3, 2}, {1, 0, 0, 1, 1, 1});  // index larger than x along axis 0 only
  CHECK(fiber::gather(x, 0, i0).to_vector() == std::vector<float>{3, 1, 0, 4, 3, 4});
  // non-contiguous x and index
  CHECK(fiber::gather(x.t(), 0, i1.t()).to_vector() == std::vector<float>{2, 3, 2, 4});
}

TEST_CASE("embedding looks up rows for ids of any shape") {
  auto w = iota({4, 2});
  auto ids = Ids::from_data({2, 3}, {3, 0, 3, 1, 1, 2});
  auto e = fiber::embedding(w, ids);
  CHECK(e.shape() == fiber::Shape{2, 3, 2});
  CHECK(e.to_vector() == std::vector<float>{6, 7, 0, 1, 6, 7, 2, 3, 2, 3, 4, 5});
  CHECK(fiber::embedding(w, Ids::scalar(2)).to_vector() == std::vector<float>{4, 5});
  // the padding row is still looked up in the forward pass (as PyTorch)
  CHECK(fiber::embedding(w, ids, 0).to_vector() == e.to_vector());
}

TEST_CASE("embedding gradient: scatter-add of repeated ids; the padding row gets none") {
  Var<double> w(Tensor<double>::zeros({4, 2}), true);
  auto ids = Ids::from_data({5}, {3, 0, 3, 1, 3});
  auto e = fiber::embedding(w, ids, -1);  // padding_idx -1 is row 3
  auto g = Tensor<double>::from_data({5, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  e.backward(g);
  CHECK(w.grad().to_vector() == std::vector<double>{3, 4, 7, 8, 0, 0, 0, 0});

  Var<double> w2(Tensor<double>::zeros({4, 2}), true);
  fiber::embedding(w2, ids).backward(g);
  CHECK(w2.grad().to_vector() == std::vector<double>{3, 4, 7, 8, 0, 0, 15, 18});
}

TEST_CASE("one_hot gives int64 by default, or the requested type") {
  auto ids = Ids::from_data({2, 2}, {0, 2, 1, 2});
  auto oh = fiber::one_hot(ids);  // num_classes inferred: 3
  CHECK(oh.shape() == fiber::Shape{2, 2, 3});
  CHECK(oh.to_vector() == std::vector<std::int64_t>{1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1});
  auto of = fiber::one_hot<float>(ids, 4);
  CHECK(of.shape() == fiber::Shape{2, 2, 4});
  CHECK(fiber::sum(of).item() == 4.0f);
  CHECK(of.at({1, 0, 1}) == 1.0f);
  CHECK(fiber::one_hot(Ids::from_data({0}, {}), 5).shape() == fiber::Shape{0, 5});
}

TEST_CASE("gradcheck: index_select on every axis with repeated indices, non-contiguous input") {
  auto x = rnd({4, 5, 3}, 201);
  auto ids = Ids::from_data({6}, {1, 3, 1, 0, 1, 2});
  for (int axis : {0, 1, 2, -1}) {
    CAPTURE(axis);
    auto safe = axis == 2 || axis == -1 ? Ids::from_data({4}, {2, 0, 2, 2}) : ids;
    CHECK_GRADCHECK(([axis, safe](Vars v) { return fiber::index_select(v[0], axis, safe); }), x);
  }
  CHECK_GRADCHECK([ids](Vars v) { return fiber::index_select(v[0].transpose(0, 1), 1, ids); }, x);
}

TEST_CASE("gradcheck: gather on every axis with repeated indices, non-contiguous input and index") {
  auto x = rnd({3, 4, 5}, 211);
  fiber::Generator gen(212);
  for (int axis : {0, 1, 2}) {
    CAPTURE(axis);
    fiber::Shape s{2, 3, 4};
    s[axis] = 7;  // longer than x along the axis: indices repeat
    Tensor<std::int64_t> idx = Tensor<double>(fiber::rand<double>(s, gen, 0, double(x.size(axis)) - 1e-9)).to<std::int64_t>();
    CHECK_GRADCHECK(([axis, idx](Vars v) { return fiber::gather(v[0], axis, idx); }), x);
  }
  auto idx = Ids::from_data({4, 2, 3}, {0, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 2, 1, 0, 1, 1, 1, 2, 0, 2, 0, 2, 0});
  CHECK_GRADCHECK([idx](Vars v) { return fiber::gather(v[0].permute({1, 2, 0}), 2, idx.transpose(0, 1).transpose(0, 1)); }, x);
  CHECK_GRADCHECK([idx](Vars v) { return fiber::gather(v[0].permute({1, 0, 2}), 1, idx.permute({0, 2, 1}).contiguous().permute({0, 2, 1})); },
                  x);
}

TEST_CASE("gradcheck: embedding with repeated ids; padding_idx removes exactly that row's gradient") {
  auto w = rnd({6, 3}, 221);
  auto ids = Ids::from_data({2, 4}, {5, 0, 5, 2, 2, 2, 1, 5});
  CHECK_GRADCHECK([ids](Vars v) { return fiber::embedding(v[0], ids); }, w);
  CHECK_GRADCHECK([ids](Vars v) { return fiber::embedding(v[0].t().t(), ids.t()); }, w);
  // a padding row that no id uses: the gradient is still the true one
  CHECK_GRADCHECK([ids](Vars v) { return fiber::embedding(v[0], ids, 3); }, w);
  // padding row 2 (and -4 == 2): the gradient without padding, row 2 zeroed
  auto g = rnd({2, 4, 3}, 222);
  Var<double> plain(w.clone(), true), padded(w.clone(), true), negative(w.clone(), true);
  fiber::embedding(plain, ids).backward(g);
  fiber::embedding(padded, ids, 2).backward(g);
  fiber::embedding(negative, ids, -4).backward(g);
  Tensor<double> expected = plain.grad().clone();
  expected.select(0, 2).fill_(0.0);
  CHECK(padded.grad().to_vector() == expected.to_vector());
  CHECK(negative.grad().to_vector() == expected.to_vector());
  CHECK(fiber::sum(fiber::abs(plain.grad().select(0, 2))).item() > 0);
}
