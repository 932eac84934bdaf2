#pragma once
// Packet helpers shared by the line kernels (softmax, layer norm): loads and stores of a line's
// last, partial packet, with the lanes past the end filled with a chosen value, and horizontal
// folds. xsimd 8.1 has no masked loads: with AVX-512 we use its masked instructions directly,
// elsewhere partial packets go through an aligned buffer.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fiber::cpu {

template <class T>
using LinePacket = xsimd::batch<T>;
template <class T>
inline constexpr std::int64_t line_width = static_cast<std::int64_t>(LinePacket<T>::size);

// Whether partial packets can use AVX-512 masked loads and stores (one instruction instead of a
// round trip through a buffer): when the packets are the 512-bit registers themselves.
template <class T>
inline constexpr bool masked_partials =
#if defined(__AVX512F__)
    sizeof(LinePacket<T>) == 64 && (std::is_same_v<T, float> || std::is_same_v<T, double>);
#else
    false;
#endif

// The `count` (< width) elements at p, the other lanes set to `fill`.
template <class T>
LinePacket<T> load_partial(const T* p, std::int64_t count, T fill) {
#if defined(__AVX512F__)
  if constexpr (masked_partials<T>) {
    if constexpr (std::is_same_v<T, float>)
      return LinePacket<T>(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), __mmask16((1u << count) - 1), p));
    else
      return LinePacket<T>(_mm512_mask_loadu_pd(_mm512_set1_pd(fill), __mmask8((1u << count) - 1), p));
  }
#endif
  alignas(64) T tmp[line_width<T>];
  for (std::int64_t i = 0; i < line_width<T>; ++i) tmp[i] = i < count ? p[i] : fill;
  return LinePacket<T>::load_aligned(tmp);
}

template <class T>
void store_partial(T* p, const LinePacket<T>& v, std::int64_t count) {
#if defined(__AVX512F__)
  if constexpr (masked_partials<T>) {
    if constexpr (std::is_same_v<T, float>) _mm512_mask_storeu_ps(p, __mmask16((1u << count) - 1), v);
    else _mm512_mask_storeu_pd(p, __mmask8((1u << count) - 1), v);
    return;
  }
#endif
  alignas(64) T tmp[line_width<T>];
  v.store_aligned(tmp);
  std::copy_n(tmp, count, p);
}

// The `count` (<= width) elements at p, the other lanes set to `fill`; and the store that writes
// only those lanes.
template <class T>
LinePacket<T> load_lanes(const T* p, std::int64_t count, T fill) {
  return count == line_width<T> ? LinePacket<T>::load_unaligned(p) : load_partial(p, count, fill);
}
template <class T>
void store_lanes(T* p, const LinePacket<T>& v, std::int64_t count) {
  if (count == line_width<T>) v.store_unaligned(p);
  else store_partial(p, v, count);
}

// Calls f(j, count) for each packet of a row of n elements: count is the width, or less for the
// last one. The elementwise passes of the row kernels, with load_lanes / store_lanes.
template <class T, class F>
void for_each_packet(std::int64_t n, F&& f) {
  for (std::int64_t j = 0; j < n; j += line_width<T>) f(j, std::min(line_width<T>, n - j));
}

// Folds a row of n elements into two accumulators of type Acc: step(acc, j, count) returns acc
// with elements j .. j + count folded in (count is the width, or less for the last, partial
// packet). Two independent chains keep the adder busy: full packets alternate between them, a
// last single full packet goes to the first and the partial one to the second. The caller merges
// the pair. One loop for every row reduction (max, sums, sums of squares), in one order.
template <class T, class Acc, class Step>
std::pair<Acc, Acc> fold_row(std::int64_t n, const Acc& init, Step&& step) {
  constexpr std::int64_t W = line_width<T>;
  Acc a0 = init, a1 = init;
  std::int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    a0 = step(a0, j, W);
    a1 = step(a1, j + W, W);
  }
  for (; j + W <= n; j += W) a0 = step(a0, j, W);
  if (j < n) a1 = step(a1, j, n - j);
  return {a0, a1};
}

// Lanes at or past `count` replaced by `fill`.
template <class T>
LinePacket<T> keep_first(const LinePacket<T>& v, std::int64_t count, T fill) {
#if defined(__AVX512F__)
  if constexpr (masked_partials<T>) {
    if constexpr (std::is_same_v<T, float>)
      return LinePacket<T>(_mm512_mask_blend_ps(__mmask16((1u << count) - 1), _mm512_set1_ps(fill), v));
    else
      return LinePacket<T>(_mm512_mask_blend_pd(__mmask8((1u << count) - 1), _mm512_set1_pd(fill), v));
  }
#endif
  alignas(64) T tmp[line_width<T>];
  v.store_aligned(tmp);
  for (std::int64_t i = count; i < line_width<T>; ++i) tmp[i] = fill;
  return LinePacket<T>::load_aligned(tmp);
}

// Horizontal folds in a fixed order: with AVX-512 a tree of lane swaps (GCC vector extensions;
// the _mm512_reduce_* intrinsics trip GCC 12's -Wuninitialized), elsewhere lanes in order.
namespace detail {
template <class T, class Fold>
T fold_lanes(const LinePacket<T>& v, Fold fold) {
#if defined(__AVX512F__) && defined(__GNUC__)
  if constexpr (masked_partials<T> && std::is_same_v<T, float>) {
    using V = float __attribute__((vector_size(64)));
    V a = (V)(__m512)v;
    a = fold(a, __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    a = fold(a, __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
    a = fold(a, __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
    a = fold(a, __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
    return a[0];
  } else if constexpr (masked_partials<T>) {
    using V = double __attribute__((vector_size(64)));
    V a = (V)(__m512d)v;
    a = fold(a, __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3));
    a = fold(a, __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5));
    a = fold(a, __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6));
    return a[0];
  }
#endif
  alignas(64) T tmp[line_width<T>];
  v.store_aligned(tmp);
  T acc = tmp[0];
  for (std::int64_t i = 1; i < line_width<T>; ++i) acc = fold(acc, tmp[i]);
  return acc;
}
}  // namespace detail

// The largest lane (NaN lanes may be skipped: the kernels' later sums turn NaN rows into NaN).
template <class T>
T horizontal_max(const LinePacket<T>& v) {
  return detail::fold_lanes(v, [](const auto& a, const auto& b) { return a > b ? a : b; });
}

template <class T>
T horizontal_sum(const LinePacket<T>& v) {
  return detail::fold_lanes(v, [](const auto& a, const auto& b) { return a + b; });
}

}  // namespace fiber::cpu
