#include <doctest/doctest.h>

#include "fiber/core/tensor.hpp"

using fiber::Shape;
using fiber::Tensor;

namespace {
Tensor<float> iota(const Shape& s) {
  auto t = Tensor<float>::empty(s);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = float(i);
  return t;
}
}  // namespace

TEST_CASE("reshape of a contiguous tensor is a view; of a transposed one, a copy") {
  auto t = iota({2, 3, 4});
  auto r = t.reshape({6, -1});
  CHECK(r.shape() == Shape{6, 4});
  CHECK(r.shares_storage_with(t));
  auto tt = t.transpose(0, 2);  // [4, 3, 2]
  CHECK_FALSE(tt.is_contiguous());
  auto flat = tt.reshape({-1});
  CHECK_FALSE(flat.shares_storage_with(t));
  CHECK(flat.at({1}) == 12.0f);  // tt[0,0,1] = t[1,0,0]
  CHECK_THROWS_WITH_AS(tt.view({24}), doctest::Contains("without a copy"), fiber::Error);
  CHECK_THROWS_WITH_AS(t.reshape({5, -1}), doctest::Contains("cannot infer -1"), fiber::Error);
  CHECK_THROWS_WITH_AS(t.reshape({5, 5}), doctest::Contains("has 25 elements"), fiber::Error);
}

TEST_CASE("view splits and merges dimensions that stay contiguous together") {
  auto t = iota({4, 6}).narrow(1, 0, 4);  // [4, 4] with row stride 6
  auto v = t.view({4, 2, 2});
  CHECK(v.strides() == Shape{6, 2, 1});
  CHECK(v.at({3, 1, 1}) == 21.0f);
  CHECK_THROWS_AS(t.view({16}), fiber::Error);
  auto u = iota({2, 1, 3}).view({2, 3});
  CHECK(u.at({1, 2}) == 5.0f);
}

TEST_CASE("permute, transpose, narrow, slice, select") {
  auto t = iota({2, 3, 4});
  auto p = t.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.at({3, 1, 2}) == t.at({1, 2, 3}));
  CHECK_THROWS_WITH_AS(t.permute({0, 0, 1}), doctest::Contains("repeated"), fiber::Error);
  auto n = t.narrow(2, 1, 2);
  CHECK(n.shape() == Shape{2, 3, 2});
  CHECK(n.at({1, 2, 0}) == t.at({1, 2, 1}));
  CHECK_THROWS_WITH_AS(t.narrow(1, 2, 2), doctest::Contains("outside dimension 1"), fiber::Error);
  auto s = t.slice(2, -3, 100, 2);  // indices 1, 3
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.at({0, 0, 1}) == 3.0f);
  auto sel = t.select(1, -1);
  CHECK(sel.shape() == Shape{2, 4});
  CHECK(sel.at({1, 0}) == t.at({1, 2, 0}));
  CHECK_THROWS_AS(t.select(0, 2), fiber::Error);
}

TEST_CASE("expand broadcasts with zero strides; squeeze and unsqueeze") {
  auto t = iota({3, 1});
  auto e = t.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(e.at({1, 2, 3}) == 2.0f);
  CHECK_THROWS_WITH_AS(t.expand({2, 4}), doctest::Contains("cannot be expanded"), fiber::Error);
  auto u = t.unsqueeze(0);
  CHECK(u.shape() == Shape{1, 3, 1});
  CHECK(u.squeeze().shape() == Shape{3});
  CHECK(u.squeeze(0).shape() == Shape{3, 1});
  CHECK(u.unsqueeze(-1).shape() == Shape{1, 3, 1, 1});
  CHECK_THROWS_AS(t.unsqueeze(3), fiber::Error);
}

TEST_CASE("contiguous, clone, copy_, fill_ and conversion") {
  auto t = iota({3, 4});
  auto tt = t.t();
  auto c = tt.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.at({3, 2}) == 11.0f);
  auto cl = t.clone();
  cl.fill_(7);
  CHECK(t.at({0, 0}) == 0.0f);
  t.narrow(1, 0, 2).fill_(-1);
  CHECK(t.at({2, 1}) == -1.0f);
  CHECK(t.at({2, 2}) == 10.0f);
  auto d = t.to<double>();
  CHECK(d.at({2, 3}) == 11.0);
  auto row = Tensor<float>::from_data({4}, {1, 2, 3, 4});
  t.copy_(row);  // broadcast over rows
  CHECK(t.at({2, 3}) == 4.0f);
  CHECK_THROWS_AS(t.copy_(Tensor<float>::zeros({3})), fiber::Error);
}

TEST_CASE("element access is checked") {
  auto t = iota({2, 2});
  CHECK_THROWS_WITH_AS(t.at({0, 2}), doctest::Contains("index 2 is out of range"), fiber::Error);
  CHECK_THROWS_AS(t.at({0}), fiber::Error);
  CHECK_THROWS_WITH_AS(t.item(), doctest::Contains("has 4 elements"), fiber::Error);
  CHECK(t.at({-1, -1}) == 3.0f);
}

TEST_CASE("view_of refuses views outside the storage") {
  auto t = iota({4});
  CHECK_NOTHROW(Tensor<float>::view_of(t.storage(), 1, {3}, {1}));
  CHECK_THROWS_WITH_AS(Tensor<float>::view_of(t.storage(), 2, {3}, {1}), doctest::Contains("outside its storage"),
                       fiber::Error);
}
