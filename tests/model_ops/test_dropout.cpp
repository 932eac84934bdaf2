// dropout and drop_path: keep rates, scaling, determinism (seed, thread count), identity when
// off, gradients (gradcheck with a fixed mask: a fresh generator of the same seed per call).
#include <doctest/doctest.h>

#include "fiber/ops/dropout.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Generator;
using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("dropout: keep rate, scaling, p = 0 / 1, eval mode") {
  const auto x = Tensor<float>::ones({400, 250});
  for (double p : {0.1, 0.5, 0.9}) {
    CAPTURE(p);
    Generator gen(42);
    const auto y = fiber::dropout(x, p, true, gen).to_vector();
    std::int64_t kept = 0;
    bool values_ok = true;
    for (float v : y) {
      kept += v != 0;
      values_ok = values_ok && (v == 0 || v == static_cast<float>(1.0 / (1.0 - p)));
    }
    CHECK(values_ok);
    // 100000 draws: the keep rate's standard deviation is <= 0.0016; allow 5 of them.
    CHECK(double(kept) / y.size() == doctest::Approx(1 - p).epsilon(0).scale(0).epsilon(0.008 / (1 - p)));
    CHECK(gen.offset() == (100000 + 63) / 64 * 16);
  }
  Generator gen(1);
  CHECK(fiber::dropout(x, 0.0, true, gen).shares_storage_with(x));
  CHECK(fiber::dropout(x, 0.7, false, gen).shares_storage_with(x));
  CHECK(gen.offset() == 0);
  const auto zeros = fiber::dropout(x, 1.0, true, gen).to_vector();
  CHECK(std::all_of(zeros.begin(), zeros.end(), [](float v) { return v == 0; }));
  CHECK_THROWS_WITH_AS(fiber::dropout(x, 1.5, true, gen), doctest::Contains("dropout: drop probability must lie in [0, 1], got 1.5"),
                       fiber::Error);
}

TEST_CASE("dropout: deterministic in the seed, independent of the thread count, fresh per draw") {
  fiber::test::RestoreThreads restore;
  const Tensor<float> x = rnd({300, 301}, 2).to<float>();
  fiber::set_num_threads(1);
  Generator a(7);
  const auto one = fiber::dropout(x, 0.3, true, a).to_vector();
  const auto second = fiber::dropout(x, 0.3, true, a).to_vector();
  fiber::set_num_threads(3);
  Generator b(7);
  CHECK(fiber::dropout(x, 0.3, true, b).to_vector() == one);
  CHECK(one != second);
  Generator c(8);
  CHECK(fiber::dropout(x, 0.3, true, c).to_vector() != one);
  // A strided view drops the same logical elements as its contiguous copy.
  Generator d(7), e(7);
  CHECK(fiber::dropout(x.t(), 0.3, true, d).to_vector() == fiber::dropout(x.t().contiguous(), 0.3, true, e).to_vector());
}

TEST_CASE("dropout: the backward regenerates the forward's mask") {
  Generator gen(3);
  Var<double> x(rnd({50, 40}, 4), true);
  Var<double> y = fiber::dropout(x, 0.4, true, gen);
  fiber::dropout(Var<double>(x.value()), 0.2, true, gen);  // the generator moves on meanwhile
  y.backward(Tensor<double>::ones(y.shape()));
  const auto yv = y.value().to_vector(), g = x.grad().to_vector();
  bool ok = true;
  for (std::size_t i = 0; i < g.size(); ++i) ok = ok && g[i] == (yv[i] == 0 ? 0.0 : 1 / 0.6);
  CHECK(ok);
  CHECK_GRADCHECK([](Vars v) {
    Generator fixed(11);
    return fiber::dropout(v[0], 0.5, true, fixed);
  }, rnd({6, 7}, 5));
}

TEST_CASE("drop_path: whole samples kept or dropped, rate, gradient") {
  const auto x = Tensor<float>::ones({4000, 3, 2});
  Generator gen(9);
  const auto y = fiber::drop_path(x, 0.25, true, gen);
  std::int64_t kept = 0;
  bool whole = true;
  for (std::int64_t b = 0; b < 4000; ++b) {
    const auto s = y.select(0, b).to_vector();
    whole = whole && std::all_of(s.begin(), s.end(), [&](float v) { return v == s[0]; });
    kept += s[0] != 0;
    whole = whole && (s[0] == 0 || s[0] == static_cast<float>(1 / 0.75));
  }
  CHECK(whole);
  CHECK(double(kept) / 4000 == doctest::Approx(0.75).epsilon(0.04));  // sd 0.007: 4 of them
  CHECK(fiber::drop_path(x, 0.25, false, gen).shares_storage_with(x));
  CHECK_GRADCHECK([](Vars v) {
    Generator fixed(12);
    return fiber::drop_path(v[0], 0.5, true, fixed);
  }, rnd({8, 3}, 6));
}

TEST_CASE("dropout: element 64k + 16w + j follows word w of Philox counter offset + 16k + j (the documented stream)") {
  Generator gen(99);
  gen.advance(5);  // a generator that has drawn before
  Generator ref = gen;
  const Tensor<double> x = Tensor<double>::ones({1000});
  const auto y = fiber::dropout(x, 0.5, true, gen).to_vector();
  bool ok = true;
  for (std::int64_t i = 0; i < 1000; ++i) {
    const bool keep = fiber::detail::unit_float(ref.block(static_cast<std::uint64_t>(i / 64 * 16 + i % 16))[i % 64 / 16]) >= 0.5f;
    ok = ok && y[i] == (keep ? 2.0 : 0.0);
  }
  CHECK(ok);
  CHECK(gen.offset() == 5 + 16 * 16);  // ceil(1000 / 64) pieces of 16 counters
}
