#pragma once
// The library GEMMs behind the "blas" and "eigen" paths: cblas_sgemm/dgemm (OpenBLAS, when CMake
// found a CBLAS: FIBER_HAVE_CBLAS) and Eigen's GEMM (always available, the fallback). Epilogues
// run as one pass over C afterwards.
//
// Threads: OpenBLAS keeps its own threads. We call it from the calling thread only (never from a
// pool task: there the caller runs our kernel instead) and set its thread count to
// fiber::num_threads() before each call, so its threads and our pool never run at the same time
// on more threads than the pool has.
#include <algorithm>
#include <climits>
#include <cstdint>

#include <Eigen/Core>

#if defined(FIBER_HAVE_CBLAS)
#include <cblas.h>
#endif

#include "fiber/backend/cpu/gemm_args.hpp"
#include "fiber/backend/cpu/gemm_epilogue.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber::cpu {

#if defined(FIBER_HAVE_CBLAS)
inline constexpr bool have_cblas = true;
#else
inline constexpr bool have_cblas = false;
#endif

// OpenBLAS's name for the kernels it chose for this CPU (e.g. "Haswell", "Cooperlake"), or ""
// when the BLAS is not OpenBLAS.
inline const char* blas_core_name() {
#if defined(FIBER_HAVE_OPENBLAS_THREADS)
  const char* name = openblas_get_corename();
  return name ? name : "";
#else
  return "";
#endif
}

namespace detail {

// Sets OpenBLAS's thread count to ours when it differs from what we last set.
inline void sync_blas_threads() {
#if defined(FIBER_HAVE_OPENBLAS_THREADS)
  static std::atomic<int> current{0};
  const int wanted = num_threads();
  if (current.load(std::memory_order_relaxed) != wanted) {
    openblas_set_num_threads(wanted);
    current.store(wanted, std::memory_order_relaxed);
  }
#endif
}

// The epilogue as a separate pass over C (rows in parallel).
template <class T, class Ep>
inline void apply_epilogue(std::int64_t M, std::int64_t N, T* C, std::int64_t ldc, const Ep& ep) {
  if constexpr (!is_no_epilogue<Ep>) {
    parallel_for(0, M, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(N, 1)),
                 [&](std::int64_t r0, std::int64_t r1) {
                   for (std::int64_t i = r0; i < r1; ++i) ep(i, std::int64_t{0}, C + i * ldc, N);
                 });
  }
}

// True when every size and leading dimension fits the 32-bit integers of cblas.
inline bool fits_cblas(std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t lda, std::int64_t ldb,
                       std::int64_t ldc) {
  return std::max({M, N, K, lda, ldb, ldc}) <= INT_MAX;
}

#if defined(FIBER_HAVE_CBLAS)
template <class T>
inline void cblas_gemm(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                       std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  sync_blas_threads();
  const auto op_a = ta == Trans::yes ? CblasTrans : CblasNoTrans;
  const auto op_b = tb == Trans::yes ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, op_a, op_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, op_a, op_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
  }
}
#endif

// Eigen's GEMM on row-major maps. Rows are cut into fixed chunks of 256 (the cut depends on M
// only, since Eigen's blocking depends on the sub-problem's size), computed in parallel.
template <class T>
inline void eigen_gemm(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                       std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc,
                       bool threaded) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ConstMap = Eigen::Map<const Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  using MutMap = Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  constexpr std::int64_t chunk = 256;
  auto rows = [&](std::int64_t r0, std::int64_t r1) {
    const std::int64_t m = r1 - r0;
    MutMap c(C + r0 * ldc, m, N, Eigen::OuterStride<>(ldc));
    if (beta == T(0)) {
      c.setZero();
    } else if (beta != T(1)) {
      c *= beta;
    }
    if (K == 0 || alpha == T(0)) return;
    const ConstMap b_stored(B, tb == Trans::no ? K : N, tb == Trans::no ? N : K, Eigen::OuterStride<>(ldb));
    auto product = [&](const auto& a_op) {
      if (tb == Trans::no) {
        c.noalias() += alpha * a_op * b_stored;
      } else {
        c.noalias() += alpha * a_op * b_stored.transpose();
      }
    };
    if (ta == Trans::no) {
      product(ConstMap(A + r0 * lda, m, K, Eigen::OuterStride<>(lda)));
    } else {
      product(ConstMap(A + r0, K, m, Eigen::OuterStride<>(lda)).transpose());
    }
  };
  const std::int64_t chunks = (M + chunk - 1) / chunk;
  auto run_chunk = [&](std::int64_t t) { rows(t * chunk, std::min(M, (t + 1) * chunk)); };
  if (threaded && chunks > 1) {
    thread_pool().run(chunks, run_chunk);
  } else {
    for (std::int64_t t = 0; t < chunks; ++t) run_chunk(t);
  }
}

}  // namespace detail
}  // namespace fiber::cpu
