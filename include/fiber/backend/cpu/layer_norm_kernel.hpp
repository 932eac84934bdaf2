#pragma once
// CPU kernels of layer normalisation over the rows of a contiguous [rows, n] matrix. Per row,
// three passes in cache: the mean; the biased variance as the mean of (x - mean)^2 (two passes
// are more accurate than one pass of sums of squares, and the row is in L1 anyway); then
// y = (x - mean) * rstd * w + b. Means are taken relative to the row's first element (see
// RowCentre), which keeps float32 accurate for rows with a large mean and a small spread. Rows
// are independent and split over the thread pool, so results are the same for any thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "fiber/backend/cpu/line_packets.hpp"
#include "fiber/backend/cpu/softmax_kernel.hpp"  // kLineGrainElements
#include "fiber/core/thread_pool.hpp"

namespace fiber::cpu {

namespace detail {

// Sum of (x - shift): with shift = the row's first element, the partial sums stay small when the
// row has a large mean and a small spread.
template <class T>
T row_shifted_sum(const T* x, std::int64_t n, T shift) {
  using P = LinePacket<T>;
  const P k(shift);
  const auto [s0, s1] = fold_row<T>(n, P(T(0)), [&](const P& s, std::int64_t j, std::int64_t count) {
    return s + (load_lanes(x + j, count, shift) - k);  // padding lanes give 0
  });
  return horizontal_sum(s0 + s1);
}

// x - mean of one row, computed as (x - x[0]) - (mean - x[0]): both differences are small and
// exact or nearly so, where x - mean itself would lose the digits that mean (rounded to T) lacks.
template <class T>
struct RowCentre {
  LinePacket<T> first, centre;  // x[0] and mean - x[0], broadcast
  LinePacket<T> deviation(const LinePacket<T>& x) const { return (x - first) - centre; }
};

template <class T>
T row_squared_deviation(const T* x, std::int64_t n, const RowCentre<T>& c) {
  using P = LinePacket<T>;
  const auto [s0, s1] = fold_row<T>(n, P(T(0)), [&](const P& s, std::int64_t j, std::int64_t count) {
    P d = c.deviation(load_lanes(x + j, count, T(0)));
    if (count < line_width<T>) d = keep_first(d, count, T(0));
    return xsimd::fma(d, d, s);
  });
  return horizontal_sum(s0 + s1);
}

template <class T, bool HasWeight, bool HasBias>
void layer_norm_row(const T* x, const T* w, const T* b, T* y, std::int64_t n, T eps, T& centre, T& rstd) {
  using P = LinePacket<T>;
  const T first = x[0];
  centre = row_shifted_sum(x, n, first) / T(n);
  const RowCentre<T> c{P(first), P(centre)};
  rstd = T(1) / std::sqrt(row_squared_deviation(x, n, c) / T(n) + eps);
  const P pr(rstd);
  auto out = [&](const P& xj, std::int64_t j, std::int64_t count) {
    P v = c.deviation(xj) * pr;
    if constexpr (HasWeight) v = v * load_lanes(w + j, count, T(0));
    if constexpr (HasBias) v = v + load_lanes(b + j, count, T(0));
    return v;
  };
  // Full packets and the partial one in separate loops: written as one for_each_packet loop, GCC
  // compiles (x - mean) * rstd * w + b with different roundings and some outputs' last bits
  // change; the results of a refactor should not.
  constexpr std::int64_t W = line_width<T>;
  std::int64_t j = 0;
  for (; j + W <= n; j += W) out(P::load_unaligned(x + j), j, W).store_unaligned(y + j);
  if (j < n) store_partial(y + j, out(cpu::load_partial(x + j, n - j, T(0)), j, n - j), n - j);
}

// gx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w, xhat = (x - mean) * rstd.
template <class T, bool HasWeight>
void layer_norm_backward_row(const T* x, const T* g, const T* w, T* gx, std::int64_t n, T centre, T r) {
  using P = LinePacket<T>;
  const RowCentre<T> c{P(x[0]), P(centre)};
  const P pr(r);
  auto gw_at = [&](std::int64_t j, std::int64_t count) {
    P gj = load_lanes(g + j, count, T(0));  // zero in the padding lanes
    if constexpr (HasWeight) gj = gj * load_lanes(w + j, count, T(0));
    return gj;
  };
  struct Sums {
    P gw, gwx;  // sums of gw and of gw * xhat
  };
  const auto [s0, s1] = fold_row<T>(n, Sums{P(T(0)), P(T(0))}, [&](const Sums& s, std::int64_t j, std::int64_t count) {
    const P gj = gw_at(j, count);
    return Sums{s.gw + gj, xsimd::fma(gj, c.deviation(load_lanes(x + j, count, T(0))) * pr, s.gwx)};
  });
  const P mean_gw(horizontal_sum(s0.gw + s1.gw) / T(n)), mean_gwx(horizontal_sum(s0.gwx + s1.gwx) / T(n));
  for_each_packet<T>(n, [&](std::int64_t j, std::int64_t count) {
    const P xhat = c.deviation(load_lanes(x + j, count, T(0))) * pr;
    store_lanes(gx + j, pr * (gw_at(j, count) - mean_gw - xhat * mean_gwx), count);
  });
}

// Adds this row's share of the parameter gradients: dw += g * xhat, db += g (either may be null).
template <class T>
void layer_norm_param_row(const T* x, const T* g, std::int64_t n, T centre, T r, T* dw, T* db) {
  using P = LinePacket<T>;
  constexpr std::int64_t W = line_width<T>;
  const RowCentre<T> c{P(x[0]), P(centre)};
  const P pr(r);
  std::int64_t j = 0;
  for (; j + W <= n; j += W) {
    const P gj = P::load_unaligned(g + j);
    if (dw) xsimd::fma(gj, c.deviation(P::load_unaligned(x + j)) * pr, P::load_unaligned(dw + j)).store_unaligned(dw + j);
    if (db) (P::load_unaligned(db + j) + gj).store_unaligned(db + j);
  }
  for (; j < n; ++j) {
    if (dw) dw[j] += g[j] * (((x[j] - x[0]) - centre) * r);
    if (db) db[j] += g[j];
  }
}

template <class F>
void for_each_row(std::int64_t rows, std::int64_t n, F&& row) {
  parallel_for(0, rows, std::max<std::int64_t>(1, kLineGrainElements / std::max<std::int64_t>(n, 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t r = b; r < e; ++r) row(r);
               });
}

}  // namespace detail

// y[r] = (x[r] - mean[r]) * rstd[r] * w + b for each row r of x: [rows, n]; w, b: [n] or null.
// Written for the backward: centre[r] = mean[r] - x[r][0] and rstd[r] = 1 / sqrt(var[r] + eps).
template <class T>
void layer_norm_forward(const T* x, const std::type_identity_t<T>* w, const std::type_identity_t<T>* b, T* y, T* centre,
                        T* rstd, std::int64_t rows, std::int64_t n, std::type_identity_t<T> eps) {
  if (rows == 0 || n == 0) return;
  auto run = [&](auto has_weight, auto has_bias) {
    detail::for_each_row(rows, n, [&](std::int64_t r) {
      detail::layer_norm_row<T, decltype(has_weight)::value, decltype(has_bias)::value>(x + r * n, w, b, y + r * n, n,
                                                                                        eps, centre[r], rstd[r]);
    });
  };
  if (w && b) run(std::true_type{}, std::true_type{});
  else if (w) run(std::true_type{}, std::false_type{});
  else if (b) run(std::false_type{}, std::true_type{});
  else run(std::false_type{}, std::false_type{});
}

// The gradients from x and the output gradient g (both [rows, n]), w ([n] or null) and the
// forward's centre and rstd: gx ([rows, n]) and the parameter gradients dw = sum over rows of
// g * xhat and db = sum over rows of g ([n] each). Any output may be null (not wanted). Rows go in
// chunks of a size set by n alone; the chunks' partial sums are added in chunk order, so dw and db
// are the same for any thread count.
template <class T>
void layer_norm_backward(const T* x, const T* g, const std::type_identity_t<T>* w, const T* centre, const T* rstd,
                         std::type_identity_t<T>* gx, std::type_identity_t<T>* dw, std::type_identity_t<T>* db,
                         std::int64_t rows, std::int64_t n) {
  if (n == 0) return;
  if (rows == 0) {
    if (dw) std::fill_n(dw, n, T(0));
    if (db) std::fill_n(db, n, T(0));
    return;
  }
  const std::int64_t chunk = std::max<std::int64_t>(1, kLineGrainElements / n);
  const std::int64_t chunks = (rows + chunk - 1) / chunk;
  std::vector<T> partial_w(dw ? chunks * n : 0), partial_b(db ? chunks * n : 0);
  parallel_for(0, chunks, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t c = b; c < e; ++c) {
      T* cw = dw ? partial_w.data() + c * n : nullptr;
      T* cb = db ? partial_b.data() + c * n : nullptr;
      for (std::int64_t r = c * chunk; r < std::min(rows, (c + 1) * chunk); ++r) {
        const T* xr = x + r * n;
        const T* gr = g + r * n;
        if (gx) {
          if (w) detail::layer_norm_backward_row<T, true>(xr, gr, w, gx + r * n, n, centre[r], rstd[r]);
          else detail::layer_norm_backward_row<T, false>(xr, gr, nullptr, gx + r * n, n, centre[r], rstd[r]);
        }
        if (cw || cb) detail::layer_norm_param_row(xr, gr, n, centre[r], rstd[r], cw, cb);
      }
    }
  });
  for (auto [out, partial] : {std::pair{dw, &partial_w}, std::pair{db, &partial_b}}) {
    if (!out) continue;
    std::copy_n(partial->data(), n, out);
    for (std::int64_t c = 1; c < chunks; ++c)
      for (std::int64_t j = 0; j < n; ++j) out[j] += (*partial)[c * n + j];
  }
}

}  // namespace fiber::cpu
