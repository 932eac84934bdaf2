#pragma once
// fiber::cpu::gemm: C = alpha * op(A) op(B) + beta * C on row-major float or double matrices given
// by pointer and leading dimension, followed by an optional fused epilogue (bias, GELU, residual,
// see gemm_epilogue.hpp) applied to each finished row segment of C.
//
//   op(A): [M, K] (A stored [M, K], lda >= K; or Trans::yes: A stored [K, M], lda >= M)
//   op(B): [K, N] (B stored [K, N], ldb >= N; or Trans::yes: B stored [N, K], ldb >= K)
//   C:     [M, N], ldc >= N. With beta == 0, C is not read (NaN there is overwritten), as in BLAS.
//
// Dispatch (GemmPath::automatic), from the measurements in docs/gemm.md: our packed xsimd kernel,
// threaded over tiles of C on fiber::thread_pool() when the product has at least
// gemm_thread_min_flops and the caller is not inside a pool task. cblas (OpenBLAS) is never chosen
// automatically: our kernel matched or beat it on every measured shape, fuses epilogues, and
// OpenBLAS's results change with its thread count. GemmPath::blas forces cblas (Eigen when
// FIBER_HAVE_CBLAS is undefined); GemmPath::eigen forces Eigen. A forced path applies to every
// call; cblas is still never called from inside a pool task (our kernel runs there instead).
//
// Results of our kernel (and of the Eigen path) are identical for any thread count: K is never
// split, and every element is summed in an order fixed by K alone.
#include <cstdint>
#include <type_traits>

#include "fiber/backend/cpu/gemm_args.hpp"
#include "fiber/backend/cpu/gemm_blas.hpp"
#include "fiber/backend/cpu/gemm_epilogue.hpp"
#include "fiber/backend/cpu/gemm_packed.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber::cpu {

// Products smaller than this (2 M N K) run on the calling thread: a fork-join of the pool costs
// more than it saves below it.
inline constexpr double gemm_thread_min_flops = 4.0e6;

namespace detail {

inline bool want_threads(std::int64_t M, std::int64_t N, std::int64_t K) {
  return !in_parallel_region() && num_threads() > 1 && 2.0 * double(M) * double(N) * double(K) >= gemm_thread_min_flops;
}

// The path a call takes: the forced one, or the rule above.
inline GemmPath resolve_path(GemmPath requested) {
  GemmPath path = requested == GemmPath::automatic ? GemmPath::packed : requested;
  if (path == GemmPath::blas && !have_cblas) path = GemmPath::eigen;
  return path;
}

// The unchecked core of gemm(): arguments already validated.
template <class T, class Ep>
void gemm_unchecked(GemmPath path, Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha,
                    const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc,
                    const Ep& ep, bool threaded) {
  if (M == 0 || N == 0) return;
  switch (resolve_path(path)) {
    case GemmPath::blas:
#if defined(FIBER_HAVE_CBLAS)
      if (!in_parallel_region() && fits_cblas(M, N, K, lda, ldb, ldc)) {
        cblas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        apply_epilogue(M, N, C, ldc, ep);
        return;
      }
#endif
      break;
    case GemmPath::eigen:
      eigen_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded);
      if (threaded) {
        apply_epilogue(M, N, C, ldc, ep);
      } else if constexpr (!is_no_epilogue<Ep>) {
        for (std::int64_t i = 0; i < M; ++i) ep(i, std::int64_t{0}, C + i * ldc, N);
      }
      return;
    case GemmPath::small:
      threaded = false;
      break;
    default:
      break;
  }
  gemm_packed(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, threaded);
}

}  // namespace detail

// C = ep(alpha * op(A) op(B) + beta * C), row-major. Throws fiber::Error on negative sizes, leading
// dimensions smaller than the row width, or null pointers to non-empty operands.
template <class T, class Epilogue = NoEpilogue>
void gemm(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A, std::int64_t lda,
          const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc, const Epilogue& ep = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm: T must be float or double");
  detail::check_gemm_args("gemm", ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  detail::gemm_unchecked(gemm_path(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep,
                         detail::want_threads(M, N, K));
}

}  // namespace fiber::cpu
