#pragma once
// The GEMM microkernel: an MR x (NV vectors) tile of C held in registers while it sums over kc,
// one broadcast of A and NV loads of B per k feeding MR * NV fused multiply-adds. Written once
// with xsimd batches; the tile shape follows the register count of the target (kernel_shape).
#include <cstdint>

#include "fiber/backend/cpu/simd.hpp"

namespace fiber::cpu::detail {

// A register tile: mr rows of C by nv vectors.
struct KernelShape {
  int mr;
  int nv;
};

// Measured on Zen 4 (AVX-512, 32 registers): 6 x 4 vectors (6 x 64 floats) reaches ~97% of the
// FMA peak in cache; 12 x 2 serves narrow products (N <= 2 vectors, e.g. attention's P.V with a
// head dim of 32). With 16 registers (AVX2, SSE2): 6 x 2 and 12 x 1.
template <class T>
inline constexpr KernelShape wide_shape = simd_enabled ? KernelShape{6, simd_registers >= 32 ? 4 : 2} : KernelShape{4, 4};
template <class T>
inline constexpr KernelShape narrow_shape = simd_enabled ? KernelShape{12, simd_registers >= 32 ? 2 : 1} : KernelShape{8, 2};

// c[MR, NV * W] = alpha * sum_k a(i, k) b[k, j] + beta * c (c is not read when beta == 0).
//   a(i, k): a[k * MR + i] when APacked (a packed panel), else a[i * lda + k] (rows of A as stored).
//   b: a packed panel [kc, NV * W], 64-byte aligned.
template <class T, int MR, int NV, bool APacked>
inline void microkernel(std::int64_t kc, const T* __restrict a, std::int64_t lda, const T* __restrict b, T* c,
                        std::int64_t ldc, T alpha, T beta) {
  using V = Vec<T>;
  constexpr int W = vec_width<T>;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V(T(0));

  for (std::int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::load_aligned(b + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V av(APacked ? a[i] : a[i * lda]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = vec_fma<T>(av, bv[j], acc[i][j]);
    }
    a += APacked ? MR : 1;
    b += NV * W;
  }

  const V va(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) (acc[i][j] * va).store_unaligned(c + i * ldc + j * W);
  } else {
    const V vb(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        T* p = c + i * ldc + j * W;
        vec_fma<T>(acc[i][j], va, vb * V::load_unaligned(p)).store_unaligned(p);
      }
  }
}

// Signature shared by all kernel instantiations, so drivers can pick one at run time.
template <class T>
using MicrokernelFn = void (*)(std::int64_t, const T*, std::int64_t, const T*, T*, std::int64_t, T, T);

// The kernel for MR rows and nv vectors (1 <= nv <= NVMax).
template <class T, int MR, int NVMax, bool APacked>
inline MicrokernelFn<T> microkernel_for(int nv) {
  if constexpr (NVMax >= 4) {
    if (nv == 4) return &microkernel<T, MR, 4, APacked>;
  }
  if constexpr (NVMax >= 3) {
    if (nv == 3) return &microkernel<T, MR, 3, APacked>;
  }
  if constexpr (NVMax >= 2) {
    if (nv == 2) return &microkernel<T, MR, 2, APacked>;
  }
  return &microkernel<T, MR, 1, APacked>;
}

// Copies a finished tile computed into scratch (alpha = 1, beta = 0) to C with the same rounding
// as the kernel's own store: c = alpha * t, or fma(t, alpha, beta * c).
template <class T>
inline void store_tile(const T* tile, std::int64_t tile_ld, std::int64_t rows, std::int64_t cols, T* c,
                       std::int64_t ldc, T alpha, T beta) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* t = tile + i * tile_ld;
    T* row = c + i * ldc;
    if (beta == T(0)) {
      for (std::int64_t j = 0; j < cols; ++j) row[j] = t[j] * alpha;
    } else {
      for (std::int64_t j = 0; j < cols; ++j) row[j] = std::fma(t[j], alpha, beta * row[j]);
    }
  }
}

}  // namespace fiber::cpu::detail
