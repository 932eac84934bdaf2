#pragma once
// The loop every elementwise kernel shares: K operands with their own strides over one iteration
// shape. Dimensions are first coalesced (merged where every operand is contiguous across them,
// dropped where their size is 1), then the flat index space is split over the thread pool and
// each piece is handed out as runs of the innermost dimension.
#include <array>
#include <cstdint>

#include "fiber/core/shape.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber {

template <int K>
struct StridedLayout {
  Shape sizes;                   // coalesced iteration shape (rank >= 1)
  std::array<Shape, K> strides;  // per operand, in elements; 0 where broadcast
  std::int64_t numel = 0;

  std::int64_t inner() const { return sizes.back(); }
};

// Coalesces `sizes` with the operands' `strides` (each of the same rank as sizes).
template <int K>
StridedLayout<K> coalesce(const Shape& sizes, const std::array<Shape, K>& strides) {
  StridedLayout<K> out;
  out.numel = sizes.numel();
  for (int k = 0; k < K; ++k) out.strides[k] = Shape{};
  for (int d = 0; d < sizes.rank(); ++d) {
    if (sizes[d] == 1) continue;
    const int r = out.sizes.rank();
    bool merge = r > 0;
    for (int k = 0; k < K && merge; ++k)
      merge = out.strides[k][r - 1] == strides[k][d] * sizes[d];
    if (merge) {
      out.sizes[r - 1] *= sizes[d];
      for (int k = 0; k < K; ++k) out.strides[k][r - 1] = strides[k][d];
    } else {
      out.sizes.push_back(sizes[d]);
      for (int k = 0; k < K; ++k) out.strides[k].push_back(strides[k][d]);
    }
  }
  if (out.sizes.rank() == 0) {
    out.sizes.push_back(1);
    for (int k = 0; k < K; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// Each operand's element offset at the multi-index that flat index `index` has over the first
// `dims` dimensions of L (row-major); the multi-index itself goes to *idx when asked for.
template <int K>
std::array<std::int64_t, K> offsets_at(const StridedLayout<K>& L, std::int64_t index, int dims,
                                       std::array<std::int64_t, kMaxDims>* idx = nullptr) {
  std::array<std::int64_t, K> off{};
  for (int d = dims - 1; d >= 0; --d) {
    const std::int64_t i = index % L.sizes[d];
    index /= L.sizes[d];
    if (idx) (*idx)[d] = i;
    for (int k = 0; k < K; ++k) off[k] += i * L.strides[k][d];
  }
  return off;
}

// Calls row(offsets, n, inner_strides) for the runs of the innermost dimension that make up
// flat indices [begin, end); offsets are each operand's element offset of the run's start.
template <int K, class Row>
void for_each_run(const StridedLayout<K>& L, std::int64_t begin, std::int64_t end, Row&& row) {
  if (begin >= end) return;
  const int rank = L.sizes.rank();
  const std::int64_t inner = L.inner();
  std::array<std::int64_t, K> inner_strides;
  for (int k = 0; k < K; ++k) inner_strides[k] = L.strides[k][rank - 1];
  // Multi-index of `begin` over the outer dimensions, and the operands' offsets there.
  std::array<std::int64_t, kMaxDims> idx{};
  std::array<std::int64_t, K> base = offsets_at<K>(L, begin / inner, rank - 1, &idx);
  std::int64_t col = begin % inner;
  std::int64_t pos = begin;
  while (pos < end) {
    const std::int64_t n = std::min(inner - col, end - pos);
    std::array<std::int64_t, K> off;
    for (int k = 0; k < K; ++k) off[k] = base[k] + col * inner_strides[k];
    row(off, n, inner_strides);
    pos += n;
    col = 0;
    // Advance the outer multi-index by one, carrying.
    for (int d = rank - 2; d >= 0; --d) {
      for (int k = 0; k < K; ++k) base[k] += L.strides[k][d];
      if (++idx[d] < L.sizes[d]) break;
      for (int k = 0; k < K; ++k) base[k] -= L.strides[k][d] * L.sizes[d];
      idx[d] = 0;
    }
  }
}

// for_each_run over the whole layout, split over the pool in pieces of at least `grain` elements.
template <int K, class Row>
void parallel_runs(const StridedLayout<K>& L, std::int64_t grain, Row&& row) {
  parallel_for(0, L.numel, grain, [&](std::int64_t b, std::int64_t e) { for_each_run<K>(L, b, e, row); });
}

// Elements per parallel piece for cheap elementwise work: below this, threads cost more than
// they save.
inline constexpr std::int64_t kElementwiseGrain = 32768;

}  // namespace fiber
