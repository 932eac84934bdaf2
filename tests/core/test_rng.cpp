#include <doctest/doctest.h>

#include <cmath>

#include "fiber/core/rng.hpp"

TEST_CASE("Philox4x32-10 matches the published known-answer vectors") {
  // Random123 kat_vectors: philox4x32 10 rounds.
  auto zero = fiber::detail::philox4x32({0, 0, 0, 0}, {0, 0});
  CHECK(zero == std::array<std::uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  auto ones = fiber::detail::philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  CHECK(ones == std::array<std::uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  auto pi = fiber::detail::philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
  CHECK(pi == std::array<std::uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("rand and randn are reproducible from a seed and independent of thread count") {
  fiber::set_num_threads(1);
  fiber::Generator g1(42);
  auto a = fiber::rand<float>({1000, 37}, g1);
  auto an = fiber::randn<double>({5001}, g1);
  fiber::set_num_threads(2);
  fiber::Generator g2(42);
  auto b = fiber::rand<float>({1000, 37}, g2);
  auto bn = fiber::randn<double>({5001}, g2);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(an.to_vector() == bn.to_vector());
  fiber::Generator g3(43);
  CHECK(fiber::rand<float>({1000, 37}, g3).to_vector() != a.to_vector());
}

TEST_CASE("rand lies in [low, high) and randn has the right moments") {
  fiber::Generator g(7);
  auto u = fiber::rand<float>({100000}, g, -2.0f, 3.0f).to_vector();
  double mean = 0;
  for (float x : u) {
    CHECK((x >= -2.0f && x < 3.0f));
    mean += x;
  }
  CHECK(std::abs(mean / u.size() - 0.5) < 0.03);
  auto n = fiber::randn<double>({200000}, g, 1.0, 2.0).to_vector();
  double m = 0, v = 0;
  for (double x : n) m += x;
  m /= n.size();
  for (double x : n) v += (x - m) * (x - m);
  v /= n.size();
  CHECK(std::abs(m - 1.0) < 0.02);
  CHECK(std::abs(v - 4.0) < 0.06);
}
