#pragma once
// Strided batched GEMM: for b in [0, batch):
//   C_b = ep(alpha * op(A_b) op(B_b) + beta * C_b),  X_b = X + b * stride_x.
// A batch stride of 0 broadcasts that operand over the batch (bmm with broadcast batch
// dimensions); C's stride must keep the outputs apart. The epilogue sees the rows of the batch
// stacked: row b * M + i for row i of item b (so a ResidualAdd over a [batch * M, N] tensor or a
// per-column bias works unchanged).
//
// Many small products (attention's per-window QK^T and P.V: 144 x 144 x 32, hundreds per call)
// run one item per pool task, each with our kernel on one thread: no fork-join per product and
// no shared packing. Few large items run one after the other, each threaded inside.
#include <cstdint>
#include <type_traits>

#include "fiber/backend/cpu/gemm.hpp"

namespace fiber::cpu {

namespace detail {

// An epilogue seen through a row offset: item b's row i is row b * M + i of the batch.
template <class Ep>
struct RowOffsetEpilogue {
  const Ep& inner;
  std::int64_t offset;
  template <class T>
  void operator()(std::int64_t row, std::int64_t col, T* c, std::int64_t n) const {
    inner(offset + row, col, c, n);
  }
};

inline void check_batch_stride(const char* op, const char* name, std::int64_t batch, std::int64_t stride,
                               std::int64_t extent) {
  FIBER_CHECK(stride >= 0, op, ": ", name, " = ", stride, " must be >= 0 (0 broadcasts the operand)");
  FIBER_CHECK(batch <= 1 || stride <= (gemm_max_extent - extent) / (batch - 1), op, ": ", name, " = ", stride,
              " over a batch of ", batch, " is too large");
}

// Elements one row-major [rows, cols] operand spans.
inline std::int64_t operand_extent(std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

// Per-item products below this many flops go one item per task rather than threading each item.
inline constexpr double batched_item_thread_flops = 3.2e7;

}  // namespace detail

template <class T, class Epilogue = NoEpilogue>
void gemm_batched(Trans ta, Trans tb, std::int64_t batch, std::int64_t M, std::int64_t N, std::int64_t K, T alpha,
                  const T* A, std::int64_t lda, std::int64_t stride_a, const T* B, std::int64_t ldb,
                  std::int64_t stride_b, T beta, T* C, std::int64_t ldc, std::int64_t stride_c,
                  const Epilogue& ep = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm_batched: T must be float or double");
  const char* op = "gemm_batched";
  FIBER_CHECK(batch >= 0, op, ": batch = ", batch, " must be >= 0");
  detail::check_gemm_args(op, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, batch > 0);
  const std::int64_t extent_a = ta == Trans::no ? detail::operand_extent(M, K, lda) : detail::operand_extent(K, M, lda);
  const std::int64_t extent_b = tb == Trans::no ? detail::operand_extent(K, N, ldb) : detail::operand_extent(N, K, ldb);
  const std::int64_t extent_c = detail::operand_extent(M, N, ldc);
  detail::check_batch_stride(op, "stride_a", batch, stride_a, extent_a);
  detail::check_batch_stride(op, "stride_b", batch, stride_b, extent_b);
  detail::check_batch_stride(op, "stride_c", batch, stride_c, extent_c);
  FIBER_CHECK(batch <= 1 || extent_c == 0 || stride_c >= extent_c, op, ": stride_c = ", stride_c,
              " is smaller than one C matrix (", extent_c, " elements): outputs would overlap");
  if (batch == 0 || M == 0 || N == 0) return;

  const GemmPath path = gemm_path();
  auto item = [&](std::int64_t b, bool threaded) {
    auto run = [&](const auto& item_ep) {
      detail::gemm_unchecked(path, ta, tb, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                             C + b * stride_c, ldc, item_ep, threaded);
    };
    if constexpr (is_no_epilogue<Epilogue>) {
      run(ep);
    } else {
      run(detail::RowOffsetEpilogue<Epilogue>{ep, b * M});
    }
  };
  const double item_flops = 2.0 * double(M) * double(N) * double(K);
  const bool library_path = detail::resolve_path(path) == GemmPath::blas;
  const bool pool_free = !in_parallel_region() && num_threads() > 1;
  const bool per_item_tasks = pool_free && !library_path && batch > 1 &&
                              double(batch) * item_flops >= gemm_thread_min_flops &&
                              (item_flops < detail::batched_item_thread_flops || batch >= 4 * num_threads());
  if (per_item_tasks) {
    thread_pool().run(batch, [&](std::int64_t b) { item(b, false); });
  } else {
    const bool threaded = detail::want_threads(M, N, K);
    for (std::int64_t b = 0; b < batch; ++b) item(b, threaded);
  }
}

}  // namespace fiber::cpu
