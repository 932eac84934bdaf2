#pragma once
// What every GEMM entry point shares: the transpose flag, the path selector, and the argument
// checks that turn bad sizes or leading dimensions into a fiber::Error naming the argument.
#include <atomic>
#include <cstdint>

#include "fiber/core/error.hpp"

namespace fiber::cpu {

// Whether an operand is used as stored (row-major) or transposed.
enum class Trans : bool { no = false, yes = true };

// Which implementation computes a GEMM. `automatic` follows the dispatch rule in gemm.hpp (see
// docs/gemm.md); the others force one path, for tests and benchmarks:
//   packed: our blocked xsimd kernel (packing, cache blocking, threads over M x N tiles);
//   small:  our kernel without B-block sharing or threads inside one product (the batched path);
//   blas:   cblas_?gemm (OpenBLAS) when FIBER_HAVE_CBLAS, else Eigen;
//   eigen:  Eigen's GEMM.
enum class GemmPath { automatic, packed, small, blas, eigen };

inline const char* gemm_path_name(GemmPath path) {
  switch (path) {
    case GemmPath::automatic: return "automatic";
    case GemmPath::packed: return "packed";
    case GemmPath::small: return "small";
    case GemmPath::blas: return "blas";
    case GemmPath::eigen: return "eigen";
  }
  return "?";
}

namespace detail {
inline std::atomic<GemmPath>& gemm_path_setting() {
  static std::atomic<GemmPath> path{GemmPath::automatic};
  return path;
}
}  // namespace detail

// The process-wide path setting (automatic unless a test or benchmark forces one).
inline GemmPath gemm_path() { return detail::gemm_path_setting().load(std::memory_order_relaxed); }
inline void set_gemm_path(GemmPath path) { detail::gemm_path_setting().store(path, std::memory_order_relaxed); }

// Forces a path for its lifetime and restores the previous one.
class ScopedGemmPath {
 public:
  explicit ScopedGemmPath(GemmPath path) : previous_(gemm_path()) { set_gemm_path(path); }
  ~ScopedGemmPath() { set_gemm_path(previous_); }
  ScopedGemmPath(const ScopedGemmPath&) = delete;
  ScopedGemmPath& operator=(const ScopedGemmPath&) = delete;

 private:
  GemmPath previous_;
};

namespace detail {

inline constexpr std::int64_t gemm_max_extent = std::int64_t{1} << 40;

// A [rows, cols] row-major operand with leading dimension ld: ld >= max(1, cols), as BLAS asks,
// and its extent (rows - 1) * ld + cols must fit in int64.
inline void check_operand(const char* op, const char* name, const char* ld_name, std::int64_t rows,
                          std::int64_t cols, std::int64_t ld, const void* data, const char* shape_note,
                          bool read = true) {
  const std::int64_t min_ld = cols > 1 ? cols : 1;
  FIBER_CHECK(ld >= min_ld, op, ": ", ld_name, " = ", ld, " is smaller than the row width ", min_ld,
              " of ", name, " (", shape_note, ")");
  FIBER_CHECK(rows <= 1 || ld <= gemm_max_extent / rows, op, ": ", name, " extent ", rows, " rows x ", ld_name,
              " ", ld, " is too large");
  FIBER_CHECK(!read || data != nullptr || rows == 0 || cols == 0, op, ": ", name, " is null but holds ", rows, " x ",
              cols, " elements");
}

inline void check_sizes(const char* op, std::int64_t M, std::int64_t N, std::int64_t K) {
  FIBER_CHECK(M >= 0, op, ": M = ", M, " must be >= 0");
  FIBER_CHECK(N >= 0, op, ": N = ", N, " must be >= 0");
  FIBER_CHECK(K >= 0, op, ": K = ", K, " must be >= 0");
  FIBER_CHECK(M <= gemm_max_extent && N <= gemm_max_extent && K <= gemm_max_extent, op, ": sizes M = ", M,
              ", N = ", N, ", K = ", K, " are too large");
}

// C[M, N] = op(A)[M, K] * op(B)[K, N]: op(A) is A [M, K] (lda >= K) or A^T with A [K, M] (lda >= M).
// Null operands are rejected unless nothing is read (`read` false: an empty batch).
inline void check_gemm_args(const char* op, Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K,
                            const void* A, std::int64_t lda, const void* B, std::int64_t ldb, const void* C,
                            std::int64_t ldc, bool read = true) {
  check_sizes(op, M, N, K);
  if (ta == Trans::no) {
    check_operand(op, "A", "lda", M, K, lda, A, "[M, K], not transposed", read);
  } else {
    check_operand(op, "A", "lda", K, M, lda, A, "[K, M], transposed", read);
  }
  if (tb == Trans::no) {
    check_operand(op, "B", "ldb", K, N, ldb, B, "[K, N], not transposed", read);
  } else {
    check_operand(op, "B", "ldb", N, K, ldb, B, "[N, K], transposed", read);
  }
  check_operand(op, "C", "ldc", M, N, ldc, C, "[M, N]", read);
}

}  // namespace detail
}  // namespace fiber::cpu
