#include <doctest/doctest.h>

#include "fiber/core/tensor.hpp"

using fiber::Shape;
using fiber::Tensor;

TEST_CASE("zeros, ones, full, arange, from_data") {
  CHECK(fiber::zeros<float>({2, 3}).to_vector() == std::vector<float>(6, 0.0f));
  CHECK(fiber::ones<double>({2}).to_vector() == std::vector<double>{1, 1});
  CHECK(fiber::full<std::int64_t>({1, 2}, 7).to_vector() == std::vector<std::int64_t>{7, 7});
  CHECK(fiber::arange<float>(0, 5).to_vector() == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(fiber::arange<double>(1, 2, 0.25).numel() == 4);
  CHECK(fiber::arange<std::int64_t>(5, 0, -2).to_vector() == std::vector<std::int64_t>{5, 3, 1});
  CHECK_THROWS_AS(fiber::arange<float>(0, 1, 0), fiber::Error);
  CHECK_THROWS_WITH_AS(Tensor<float>::from_data({2, 2}, {1, 2, 3}), doctest::Contains("3 values for shape [2, 2]"),
                       fiber::Error);
  auto s = Tensor<float>::scalar(3.5f);
  CHECK(s.dim() == 0);
  CHECK(s.item() == 3.5f);
}

TEST_CASE("storage is 64-byte aligned and allocations are counted") {
  auto before = fiber::allocation_stats().allocations.load();
  auto t = fiber::empty<float>({3, 5});
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  CHECK(fiber::allocation_stats().allocations.load() == before + 1);
  CHECK_THROWS_AS(fiber::empty<float>({1ll << 62, 4}), fiber::Error);
}

TEST_CASE("borrowed memory is viewed without a copy") {
  auto buffer = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
  auto t = Tensor<float>::borrow(buffer->data(), {2, 3}, buffer);
  CHECK(t.at({1, 0}) == 4.0f);
  (*buffer)[3] = 40;
  CHECK(t.at({1, 0}) == 40.0f);
}
