#include <doctest/doctest.h>

#include "fiber/core/shape.hpp"

using fiber::Shape;

TEST_CASE("Shape basics, numel and axis normalisation") {
  Shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 24);
  CHECK(Shape{}.numel() == 1);
  CHECK(Shape{3, 0, 2}.numel() == 0);
  CHECK(s.axis(-1) == 2);
  CHECK_THROWS_WITH_AS(s.axis(3, "sum"), "sum: axis 3 is out of range for shape [2, 3, 4]", fiber::Error);
  CHECK(s.str() == "[2, 3, 4]");
}

TEST_CASE("Shape rejects more than six dimensions and overflowing element counts") {
  CHECK_THROWS_AS((Shape{1, 2, 3, 4, 5, 6, 7}), fiber::Error);
  Shape huge{1ll << 40, 1ll << 40};
  CHECK_THROWS_WITH_AS(huge.numel(), doctest::Contains("element count overflows"), fiber::Error);
}

TEST_CASE("contiguous strides and broadcasting follow NumPy") {
  CHECK(fiber::contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
  CHECK(fiber::broadcast_shapes({3, 1, 5}, {4, 1}) == Shape{3, 4, 5});
  CHECK(fiber::broadcast_shapes({}, {2, 2}) == Shape{2, 2});
  CHECK_THROWS_WITH_AS(fiber::broadcast_shapes({3, 2}, {4, 2}, "add"),
                       "add: shapes [3, 2] and [4, 2] cannot be broadcast (dimension 0: 3 vs 4)", fiber::Error);
}
