// transformers get_polynomial_decay_schedule_with_warmup (power 1, lr_end 0), by hand.
#include <doctest/doctest.h>

#include "fiber/train/lr_schedule.hpp"

namespace train = fiber::train;

TEST_CASE("linear warmup then linear decay to 0, as transformers' polynomial schedule") {
  const train::PolynomialDecaySchedule s = train::linear_warmup_decay(100, 0.1, 1e-4);
  CHECK(s.warmup_steps == 10);
  CHECK(s.factor(0) == 0.0);
  CHECK(s.factor(5) == 0.5);
  CHECK(s.factor(10) == 1.0);
  CHECK(s.factor(55) == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(s.factor(100) == 0.0);
  CHECK(s.factor(150) == 0.0);  // past the end: lr_end / lr_init
  CHECK(train::warmup_from_fraction(25, 0.1) == 2);  // int(2.5), truncated as Python's int()
}

TEST_CASE("power and lr_end follow the transformers formula") {
  train::PolynomialDecaySchedule s;
  s.warmup_steps = 0;
  s.total_steps = 10;
  s.lr_init = 1.0;
  s.lr_end = 0.1;
  s.power = 2.0;
  CHECK(s.factor(5) == doctest::Approx(0.9 * 0.25 + 0.1));
  CHECK(s.factor(10) == doctest::Approx(0.1));
  CHECK(s.factor(11) == doctest::Approx(0.1));
}

TEST_CASE("bad schedules are refused") {
  CHECK_THROWS_AS(train::linear_warmup_decay(0, 0.1), fiber::Error);
  CHECK_THROWS_AS(train::linear_warmup_decay(10, 1.0), fiber::Error);
  CHECK_THROWS_AS(train::linear_warmup_decay(10, -0.5), fiber::Error);
}
