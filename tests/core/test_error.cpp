#include <doctest/doctest.h>

#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"

TEST_CASE("fiber::Error carries the streamed message and is a std::exception") {
  try {
    fiber::fail("matmul: shapes ", 3, "x", 4, " and ", 5, "x", 6, " do not match");
    FAIL("fail() returned");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()) == "matmul: shapes 3x4 and 5x6 do not match");
  }
}

TEST_CASE("FIBER_CHECK throws only when the condition is false") {
  int evaluated = 0;
  auto part = [&] { ++evaluated; return "x"; };
  CHECK_NOTHROW(FIBER_CHECK(1 + 1 == 2, part()));
  CHECK(evaluated == 0);
  CHECK_THROWS_AS(FIBER_CHECK(1 + 1 == 3, part()), fiber::Error);
  CHECK(evaluated == 1);
}

TEST_CASE("dtype names round-trip and unknown names are rejected") {
  using fiber::DType;
  for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i64, DType::i32,
                  DType::i16, DType::i8, DType::u8, DType::boolean})
    CHECK(fiber::parse_dtype(fiber::dtype_name(t)) == t);
  CHECK(fiber::dtype_size(DType::bf16) == 2);
  CHECK(fiber::dtype_size(DType::i64) == 8);
  CHECK_THROWS_WITH_AS(fiber::parse_dtype("F8"), doctest::Contains("unknown dtype 'F8'"), fiber::Error);
}
