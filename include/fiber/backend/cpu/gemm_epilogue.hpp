#pragma once
// GEMM epilogues: work applied to each finished row segment of C (after the full K sum, alpha and
// beta) while it is still in cache, so a linear layer's bias, GELU or residual add costs no extra
// pass over memory. An epilogue is a callable
//     void operator()(int64 row, int64 col, T* c, int64 n) const
// that updates c[0, n) = C[row, col .. col + n) in place. Element values must not depend on how a
// row is cut into segments: every element goes through the same vector code (tails are padded into
// a full vector), so a fused epilogue gives the same bits as applying it after the GEMM.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "fiber/backend/cpu/simd.hpp"
#include "fiber/backend/cpu/gelu.hpp"

namespace fiber::cpu {

namespace detail {
// Applies f(Vec v, int64 j) -> Vec to c[0, n) vector by vector; j is the offset of the vector's
// first lane. The tail goes through a zero-padded vector, so every element sees the same code.
template <class T, class F>
inline void for_each_vector(T* c, std::int64_t n, F&& f) {
  using V = Vec<T>;
  constexpr int W = vec_width<T>;
  std::int64_t j = 0;
  for (; j + W <= n; j += W) f(V::load_unaligned(c + j), j).store_unaligned(c + j);
  if (j < n) {
    alignas(64) T tail[W] = {};
    for (std::int64_t t = 0; t < n - j; ++t) tail[t] = c[j + t];
    f(V::load_aligned(tail), j).store_aligned(tail);
    for (std::int64_t t = 0; t < n - j; ++t) c[j + t] = tail[t];
  }
}

// Loads p[0, count) into a vector, zero beyond count (count <= W).
template <class T>
inline Vec<T> load_partial(const T* p, std::int64_t count) {
  constexpr int W = vec_width<T>;
  if (count >= W) return Vec<T>::load_unaligned(p);
  alignas(64) T tmp[W] = {};
  for (std::int64_t t = 0; t < count; ++t) tmp[t] = p[t];
  return Vec<T>::load_aligned(tmp);
}

// GELU exactly as the elementwise gelu computes it (backend/cpu/gelu.hpp).
template <class T>
inline Vec<T> gelu(const Vec<T>& x) {
  if constexpr (simd_enabled) {
    return cpu::gelu(x);
  } else {
    return Vec<T>(cpu::gelu(x.value));
  }
}
}  // namespace detail

// Nothing: the plain GEMM. The driver skips the epilogue step for this type.
struct NoEpilogue {
  template <class T>
  void operator()(std::int64_t, std::int64_t, T*, std::int64_t) const {}
};

// C[row, col] += bias[col]: the linear layer's bias. bias: [N].
template <class T>
struct BiasEpilogue {
  const T* bias;
  void operator()(std::int64_t, std::int64_t col, T* c, std::int64_t n) const {
    const T* b = bias + col;
    detail::for_each_vector(c, n, [&](Vec<T> v, std::int64_t j) { return v + detail::load_partial(b + j, n - j); });
  }
};

// C[row, col] += bias[row]: a convolution's bias, one per output channel (the rows of its GEMM).
// bias: [M].
template <class T>
struct RowBiasEpilogue {
  const T* bias;
  void operator()(std::int64_t row, std::int64_t, T* c, std::int64_t n) const {
    const Vec<T> b(bias[row]);
    detail::for_each_vector(c, n, [&](Vec<T> v, std::int64_t) { return v + b; });
  }
};

// C = gelu(C), erf form.
template <class T>
struct GeluEpilogue {
  void operator()(std::int64_t, std::int64_t, T* c, std::int64_t n) const {
    detail::for_each_vector(c, n, [](Vec<T> v, std::int64_t) { return detail::gelu<T>(v); });
  }
};

// C = gelu(C + bias): a transformer MLP's first linear layer. bias: [N].
template <class T>
struct BiasGelu {
  const T* bias;
  void operator()(std::int64_t, std::int64_t col, T* c, std::int64_t n) const {
    const T* b = bias + col;
    detail::for_each_vector(c, n, [&](Vec<T> v, std::int64_t j) {
      return detail::gelu<T>(v + detail::load_partial(b + j, n - j));
    });
  }
};

// C[row, col] += residual[row * ld + col]: a residual connection. residual: [M, N], row stride ld.
template <class T>
struct ResidualAdd {
  const T* residual;
  std::int64_t ld;
  void operator()(std::int64_t row, std::int64_t col, T* c, std::int64_t n) const {
    const T* r = residual + row * ld + col;
    detail::for_each_vector(c, n, [&](Vec<T> v, std::int64_t j) { return v + detail::load_partial(r + j, n - j); });
  }
};

// First, then Second, on the same segment (e.g. bias, then residual).
template <class First, class Second>
struct Compose {
  First first;
  Second second;
  template <class T>
  void operator()(std::int64_t row, std::int64_t col, T* c, std::int64_t n) const {
    first(row, col, c, n);
    second(row, col, c, n);
  }
};

template <class First, class Second>
Compose<First, Second> compose(First first, Second second) {
  return {first, second};
}
template <class First, class Second, class Third, class... Rest>
auto compose(First first, Second second, Third third, Rest... rest) {
  return compose(Compose<First, Second>{first, second}, third, rest...);
}

template <class Ep>
inline constexpr bool is_no_epilogue = std::is_same_v<std::remove_cvref_t<Ep>, NoEpilogue>;

}  // namespace fiber::cpu
