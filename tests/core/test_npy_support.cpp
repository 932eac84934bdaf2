#include <doctest/doctest.h>

#include "npy.hpp"

TEST_CASE("the test-support .npy reader reads what numpy.save wrote") {
  auto a = fiber::test::load_npy<float>("support/arange_f4.npy");
  CHECK(a.shape() == fiber::Shape{2, 3, 4});
  CHECK(a.at({1, 2, 3}) == 23.0f);
  auto ids = fiber::test::load_npy<std::int64_t>("support/ids_i8.npy");
  CHECK(ids.to_vector() == std::vector<std::int64_t>{5, -1, 7, 1ll << 40});
  auto s = fiber::test::load_npy<double>("support/scalar_f8.npy");
  CHECK(s.dim() == 0);
  CHECK(s.item() == 2.5);
  CHECK_THROWS_WITH_AS(fiber::test::load_npy<double>("support/arange_f4.npy"), doctest::Contains("holds <f4"), fiber::Error);
}
