#pragma once
// The SIMD instruction set of our CPU kernels, chosen at compile time from the target flags:
// AVX-512 (-mavx512f), AVX2 + FMA, SSE2 / NEON, or plain scalar code when none is available (or
// when FIBER_SIMD_SCALAR is defined, which tests use to check the scalar path on any machine).
// Kernels are written once against Vec<T> = xsimd::batch<T, SimdArch> (xsimd 8.1 API).
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include <xsimd/xsimd.hpp>

namespace fiber::cpu {

namespace detail {
// One lane: the scalar fallback, with the few members of xsimd::batch that our kernels use.
template <class T>
struct ScalarVec {
  using value_type = T;
  static constexpr std::size_t size = 1;
  T value{};
  ScalarVec() = default;
  ScalarVec(T v) : value(v) {}  // NOLINT: implicit like xsimd::batch's broadcast constructor
  static ScalarVec broadcast(T v) { return ScalarVec(v); }
  static ScalarVec load_aligned(const T* p) { return ScalarVec(*p); }
  static ScalarVec load_unaligned(const T* p) { return ScalarVec(*p); }
  void store_aligned(T* p) const { *p = value; }
  void store_unaligned(T* p) const { *p = value; }
  friend ScalarVec operator+(ScalarVec a, ScalarVec b) { return a.value + b.value; }
  friend ScalarVec operator-(ScalarVec a, ScalarVec b) { return a.value - b.value; }
  friend ScalarVec operator*(ScalarVec a, ScalarVec b) { return a.value * b.value; }
  friend ScalarVec operator/(ScalarVec a, ScalarVec b) { return a.value / b.value; }
  ScalarVec& operator+=(ScalarVec b) { value += b.value; return *this; }
};
template <class T>
ScalarVec<T> fma(ScalarVec<T> a, ScalarVec<T> b, ScalarVec<T> c) { return std::fma(a.value, b.value, c.value); }
}  // namespace detail

#if defined(FIBER_SIMD_SCALAR)
inline constexpr bool simd_enabled = false;
#elif XSIMD_WITH_AVX512F
using SimdArch = xsimd::avx512f;
#elif XSIMD_WITH_FMA3_AVX2
using SimdArch = xsimd::fma3<xsimd::avx2>;
#elif XSIMD_WITH_AVX2
using SimdArch = xsimd::avx2;
#elif XSIMD_WITH_AVX
using SimdArch = xsimd::avx;
#elif XSIMD_WITH_SSE2
using SimdArch = xsimd::sse2;
#elif XSIMD_WITH_NEON64
using SimdArch = xsimd::neon64;
#else
#define FIBER_SIMD_SCALAR 1
inline constexpr bool simd_enabled = false;
#endif

#if !defined(FIBER_SIMD_SCALAR)
inline constexpr bool simd_enabled = true;
template <class T>
using Vec = xsimd::batch<T, SimdArch>;
inline constexpr const char* simd_name() { return SimdArch::name(); }
// Vector registers the instruction set has: decides how large a register tile can be.
inline constexpr int simd_registers = XSIMD_WITH_AVX512F ? 32 : 16;
#else
template <class T>
using Vec = detail::ScalarVec<T>;
inline constexpr const char* simd_name() { return "scalar"; }
inline constexpr int simd_registers = 16;
#endif

// Lanes of one vector of T.
template <class T>
inline constexpr int vec_width = static_cast<int>(Vec<T>::size);

template <class T>
Vec<T> vec_fma(const Vec<T>& a, const Vec<T>& b, const Vec<T>& c) {
  if constexpr (simd_enabled) {
    return xsimd::fma(a, b, c);
  } else {
    return detail::fma(a, b, c);
  }
}

namespace detail {
// Allocations made by ScratchBuffers so far (all threads): tests check steady-state calls add none.
inline std::atomic<std::int64_t>& scratch_allocations() {
  static std::atomic<std::int64_t> count{0};
  return count;
}
}  // namespace detail

// A growable 64-byte-aligned buffer of T. Kernels keep one per thread (thread_local) and reuse it,
// so calls in steady state do not allocate. Contents are not preserved when it grows.
template <class T>
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }

  // At least n elements, 64-byte aligned.
  T* get(std::int64_t n) {
    if (n > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      const std::size_t bytes = (static_cast<std::size_t>(n) * sizeof(T) + 63) / 64 * 64;
      data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (!data_) throw std::bad_alloc();
      capacity_ = n;
      detail::scratch_allocations().fetch_add(1, std::memory_order_relaxed);
    }
    return data_;
  }

 private:
  T* data_ = nullptr;
  std::int64_t capacity_ = 0;
};

}  // namespace fiber::cpu
