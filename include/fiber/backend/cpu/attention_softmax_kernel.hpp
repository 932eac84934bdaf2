#pragma once
// CPU kernel of the attention softmax: per row of n scores,
//   y = softmax(scale * x + bias + mask)
// with bias and mask rows read through their own (broadcast) offsets, so neither is ever
// expanded in memory. A row stays in cache for its three passes: (1) z = scale * x + bias + mask,
// stored into y, with its running max; (2) y = exp(y - max) and the sum, the softmax kernel's
// fused pass; (3) y *= 1 / sum. Rows are independent and split over the pool, so results are the
// same for any thread count. The backward is the softmax kernel's row backward.
#include <cstdint>
#include <limits>

#include "fiber/backend/cpu/line_packets.hpp"
#include "fiber/backend/cpu/softmax_kernel.hpp"

namespace fiber::cpu {

// A row of an additive term: absent (p == nullptr), contiguous (inc 1) or one value broadcast
// along the row (inc 0).
template <class T>
struct AddendRow {
  const T* p = nullptr;
  std::int64_t inc = 1;
  LinePacket<T> load(std::int64_t j, std::int64_t count) const {
    return inc == 0 ? LinePacket<T>(p[0]) : load_lanes(p + j, count, T(0));
  }
};

template <class T>
void attention_softmax_row(const T* x, AddendRow<T> bias, AddendRow<T> mask, T* y, std::int64_t n, T scale) {
  using P = LinePacket<T>;
  const T lowest = -std::numeric_limits<T>::infinity();
  const P ps(scale);
  const auto [m0, m1] = fold_row<T>(n, P(lowest), [&](const P& m, std::int64_t j, std::int64_t count) {
    P z = load_lanes(x + j, count, T(0)) * ps;
    if (bias.p) z = z + bias.load(j, count);
    if (mask.p) z = z + mask.load(j, count);
    store_lanes(y + j, z, count);
    return xsimd::max(m, count < line_width<T> ? keep_first(z, count, lowest) : z);
  });
  const T mx = horizontal_max(xsimd::max(m0, m1));
  const T sum = detail::row_exp_sum<T, true>(y, y, n, mx);
  detail::normalize_row(y, n, sum);  // no denormals (softmax_kernel.hpp)
}

// Calls row(first, end) over ranges of the `rows` rows of n elements, split over the pool.
template <class F>
void for_row_ranges(std::int64_t rows, std::int64_t n, F&& row) {
  if (rows == 0 || n == 0) return;
  parallel_for(0, rows, std::max<std::int64_t>(1, kLineGrainElements / n), row);
}

}  // namespace fiber::cpu
