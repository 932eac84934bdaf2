#pragma once
// Shared by the nn_ops tests: fixture loading, parity checks that report the measured error, and
// a non-contiguous copy of a tensor.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"
#include "npy.hpp"
#include "test_util.hpp"

namespace fiber::test {

inline Tensor<float> fixture(const std::string& name) { return load_npy<float>("nn_ops/" + name + ".npy"); }
inline Tensor<std::int64_t> fixture_i64(const std::string& name) {
  return load_npy<std::int64_t>("nn_ops/" + name + ".npy");
}

// Largest |a - b| over the elements (NaN pairs and equal infinities count as equal).
template <class T, class U>
double max_abs_error(const Tensor<T>& a, const Tensor<U>& b) {
  REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector();
  const auto vb = b.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double x = double(va[i]), y = double(vb[i]);
    if ((std::isnan(x) && std::isnan(y)) || (std::isinf(y) && x == y)) continue;
    worst = std::max(worst, std::isnan(x - y) ? 1e300 : std::abs(x - y));
  }
  return worst;
}

// Checks |actual - expected| <= atol + rtol * |expected| everywhere; with FIBER_PRINT_PARITY set
// in the environment, prints the largest absolute error (the figures the docs report).
template <class T, class U>
void check_parity(const char* what, const Tensor<T>& actual, const Tensor<U>& expected, double rtol, double atol) {
  INFO(std::string(what));
  REQUIRE(actual.shape() == expected.shape());
  const double ratio = closeness(actual, expected, rtol, atol);
  CHECK(ratio <= 1.0);
  if (std::getenv("FIBER_PRINT_PARITY"))
    std::printf("parity %-34s max abs err %.3g (%.2f of tolerance)\n", what, max_abs_error(actual, expected), ratio);
}

// The same values in a tensor whose last two axes are stored transposed (not contiguous).
template <class T>
Tensor<T> noncontiguous(const Tensor<T>& t) {
  REQUIRE(t.dim() >= 2);
  Tensor<T> v = t.transpose(-1, -2).contiguous().transpose(-1, -2);
  REQUIRE(!v.is_contiguous());
  return v;
}

// Bitwise equality of two tensors' elements.
template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape())) return false;
  const auto va = a.to_vector(), vb = b.to_vector();
  return std::memcmp(va.data(), vb.data(), va.size() * sizeof(T)) == 0;
}

}  // namespace fiber::test
