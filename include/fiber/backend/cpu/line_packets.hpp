#pragma once
// Packet helpers shared by the line kernels (softmax, layer norm): loads and stores of a line's
// last, partial packet, with the lanes past the end filled with a chosen value, and horizontal
// folds. xsimd 8.1 has no masked loads, so partial packets go through an aligned buffer.
#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

namespace fiber::cpu {

template <class T>
using LinePacket = xsimd::batch<T>;
template <class T>
inline constexpr std::int64_t line_width = static_cast<std::int64_t>(LinePacket<T>::size);

// The `count` (< width) elements at p, the other lanes set to `fill`.
template <class T>
LinePacket<T> load_partial(const T* p, std::int64_t count, T fill) {
  alignas(64) T tmp[line_width<T>];
  for (std::int64_t i = 0; i < line_width<T>; ++i) tmp[i] = i < count ? p[i] : fill;
  return LinePacket<T>::load_aligned(tmp);
}

// The `count` (< width) elements at p, `stride` apart, the other lanes set to `fill`.
template <class T>
LinePacket<T> load_strided(const T* p, std::int64_t stride, std::int64_t count, T fill) {
  alignas(64) T tmp[line_width<T>];
  for (std::int64_t i = 0; i < line_width<T>; ++i) tmp[i] = i < count ? p[i * stride] : fill;
  return LinePacket<T>::load_aligned(tmp);
}

template <class T>
void store_partial(T* p, const LinePacket<T>& v, std::int64_t count) {
  alignas(64) T tmp[line_width<T>];
  v.store_aligned(tmp);
  std::copy_n(tmp, count, p);
}

// Lanes at or past `count` replaced by `fill`.
template <class T>
LinePacket<T> keep_first(const LinePacket<T>& v, std::int64_t count, T fill) {
  alignas(64) T tmp[line_width<T>];
  v.store_aligned(tmp);
  for (std::int64_t i = count; i < line_width<T>; ++i) tmp[i] = fill;
  return LinePacket<T>::load_aligned(tmp);
}

template <class T>
T horizontal_max(const LinePacket<T>& v) {
  alignas(64) T tmp[line_width<T>];
  v.store_aligned(tmp);
  T m = tmp[0];
  for (std::int64_t i = 1; i < line_width<T>; ++i) m = std::max(m, tmp[i]);
  return m;
}

// Lanes added in order (xsimd::hadd of double packets trips GCC 12's -Wuninitialized).
template <class T>
T horizontal_sum(const LinePacket<T>& v) {
  alignas(64) T tmp[line_width<T>];
  v.store_aligned(tmp);
  T s = tmp[0];
  for (std::int64_t i = 1; i < line_width<T>; ++i) s += tmp[i];
  return s;
}

}  // namespace fiber::cpu
