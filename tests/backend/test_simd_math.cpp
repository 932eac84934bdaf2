// simd_exp, simd_tanh and the float GELU against double-precision std::exp / std::tanh / std::erf,
// over a sweep of float bit patterns that visits every exponent (about 8 million values each), and
// at the special values. The bounds are the ones backend/cpu/simd_math.hpp documents.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "fiber/backend/cpu/gelu.hpp"
#include "fiber/backend/cpu/simd.hpp"
#include "fiber/backend/cpu/simd_math.hpp"

namespace {

using fiber::cpu::Vec;
constexpr float flt_min = std::numeric_limits<float>::min();

// f over every value, a vector at a time (one lane in the scalar build).
template <class F>
std::vector<float> map_lanes(const std::vector<float>& in, F f) {
  constexpr int W = fiber::cpu::vec_width<float>;
  std::vector<float> out(in.size());
  for (std::size_t i = 0; i + W <= in.size(); i += W) {
    if constexpr (fiber::cpu::simd_enabled) {
      f(Vec<float>::load_unaligned(in.data() + i)).store_unaligned(out.data() + i);
    } else {
      out[i] = f(in[i]);
    }
  }
  return out;
}

// Float bit patterns from lo to hi (as unsigned integers) with a stride that is not a power of
// two, so every exponent and many mantissas are visited; a multiple of any vector width.
std::vector<float> sweep(std::uint32_t lo, std::uint32_t hi, std::uint32_t stride) {
  std::vector<float> v;
  for (std::uint64_t b = lo; b <= hi; b += stride) v.push_back(std::bit_cast<float>(std::uint32_t(b)));
  while (v.size() % 64 != 0) v.push_back(0.0f);
  return v;
}

// The float spacing at |want| (2^-149 among the denormals).
double spacing(double want) {
  const float w = std::fabs(static_cast<float>(want));
  return double(std::nextafter(w, std::numeric_limits<float>::infinity())) - double(w);
}

// |got - want| in units of that spacing.
double ulps(float got, double want) { return std::fabs(double(got) - want) / spacing(want); }

// Every sign and exponent of the finite floats, from -FLT_MAX to FLT_MAX (NaN and inf skipped).
std::vector<float> finite_sweep() {
  std::vector<float> in = sweep(0x00000000u, 0x7f7fffffu, 509);
  const std::vector<float> neg = sweep(0x80000000u, 0xff7fffffu, 509);
  in.insert(in.end(), neg.begin(), neg.end());
  return in;
}

// The largest error seen, and where.
struct Worst {
  double error = 0;
  float at = 0;
  void note(double e, float x) {
    if (e > error) {
      error = e;
      at = x;
    }
  }
};

// simd over finite_sweep() against exact, in ulp where the exact result is a normal float: the
// worst error at most `bound`. Outside that range a result must overflow to inf (with the sign)
// or, below FLT_MIN, be within FLT_MIN of the exact value: simd_exp gives the denormal on every
// instruction set, xsimd::exp (the scalar build) may give 0.
template <class Simd, class Exact>
void check_ulps_over_finite_floats(Simd simd, Exact exact, double bound) {
  const std::vector<float> in = finite_sweep();
  const std::vector<float> out = map_lanes(in, simd);
  Worst worst;
  std::int64_t outside_normal_wrong = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const double want = exact(double(in[i]));
    if (std::fabs(want) > double(std::numeric_limits<float>::max())) {
      if (!(std::isinf(out[i]) && std::signbit(out[i]) == std::signbit(want))) ++outside_normal_wrong;
    } else if (std::fabs(want) < double(flt_min)) {
      if (!(std::fabs(double(out[i]) - want) <= double(flt_min))) ++outside_normal_wrong;
    } else {
      worst.note(ulps(out[i], want), in[i]);
    }
  }
  MESSAGE("worst ", worst.error, " ulp at x = ", worst.at, " over ", in.size(), " values");
  CHECK(worst.error <= bound);
  CHECK(outside_normal_wrong == 0);
}

}  // namespace

TEST_CASE("simd_exp is within 1.02 ulp of exp wherever the result is a normal float") {
  check_ulps_over_finite_floats([](auto x) { return fiber::cpu::simd_exp(x); }, [](double x) { return std::exp(x); },
                                1.02);
}

TEST_CASE("simd_tanh is within 5 ulp of tanh") {
  check_ulps_over_finite_floats([](auto x) { return fiber::cpu::simd_tanh(x); }, [](double x) { return std::tanh(x); },
                                5.0);
}

TEST_CASE("simd_exp and simd_tanh at the special values") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> in = {nan, inf, -inf, 0.0f, -0.0f, 88.72f, 88.73f, -87.0f, -104.0f, 1e30f, -1e30f, 1e-30f};
  while (in.size() % 64 != 0) in.push_back(1.0f);
  const auto e = map_lanes(in, [](auto x) { return fiber::cpu::simd_exp(x); });
  CHECK(std::isnan(e[0]));
  CHECK(e[1] == inf);
  CHECK(e[2] == 0.0f);
  CHECK(e[3] == 1.0f);
  CHECK(e[4] == 1.0f);
  CHECK(ulps(e[5], std::exp(double(88.72f))) <= 1.02);  // just below FLT_MAX
  CHECK(e[6] == inf);
  CHECK(ulps(e[7], std::exp(-87.0)) <= 1.02);
  CHECK(e[8] == 0.0f);
  CHECK(e[9] == inf);
  CHECK(e[10] == 0.0f);
  CHECK(e[11] == 1.0f);
  const auto t = map_lanes(in, [](auto x) { return fiber::cpu::simd_tanh(x); });
  CHECK(std::isnan(t[0]));
  CHECK(t[1] == 1.0f);
  CHECK(t[2] == -1.0f);
  CHECK(t[3] == 0.0f);
  CHECK(std::signbit(t[4]));  // tanh(-0) = -0
  CHECK(t[9] == 1.0f);
  CHECK(t[10] == -1.0f);
  CHECK(t[11] == doctest::Approx(1e-30f).epsilon(1e-7));
}

TEST_CASE("float GELU is within 2.5e-7 |x| + 2 ulp of the exact erf form") {
  // The erf approximation (PyTorch's) is within 1.5e-7, so GELU within 0.75e-7 |x|; rounding in
  // float adds a few ulp of 1 + erf, times |x| / 2.
  std::vector<float> in;
  for (float x = -12.0f; x <= 12.0f; x += 1.0f / 1024) in.push_back(x);
  const std::vector<float> tiny = sweep(0x00000000u, 0x3f800000u, 40009);  // 0 .. 1, every exponent
  for (float x : tiny) {
    in.push_back(x);
    in.push_back(-x);
  }
  while (in.size() % 64 != 0) in.push_back(0.0f);
  const auto out = map_lanes(in, [](auto x) { return fiber::cpu::gelu(x); });
  Worst worst;  // in units of the allowed error
  for (std::size_t i = 0; i < in.size(); ++i) {
    const double x = in[i];
    const double want = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    const double allowed = 2.5e-7 * std::fabs(x) + 2.0 * spacing(want);
    worst.note(std::fabs(double(out[i]) - want) / allowed, in[i]);
  }
  MESSAGE("worst error ", worst.error, " of the allowed at x = ", worst.at);
  CHECK(worst.error <= 1.0);
}
