#pragma once
// CPU kernels of softmax and log_softmax, forward and backward, over one axis of a contiguous
// tensor viewed as [outer, n, inner]: the axis has n elements, `inner` apart. Each of the
// outer * inner lines is independent, so lines are split over the thread pool and every result
// is the same for any thread count.
//
// Forward, per line, three passes that stay in cache: the max; exp(x - max) and its sum, fused
// (softmax stores the exponentials); then the scaling (softmax: * 1/sum; log_softmax:
// (x - max) - log(sum)); no denormal is produced (see "no denormals" below). With inner == 1 a
// line is a contiguous row, vectorised along it; with inner > 1 a packet holds `width`
// neighbouring lines, vectorised across them.
//
// A line that is all -inf gives NaN (max - max is NaN), and so does a line with a NaN or +inf,
// as in PyTorch.
#include <cmath>
#include <cstdint>
#include <limits>

#include "fiber/backend/cpu/line_packets.hpp"
#include "fiber/backend/cpu/simd_math.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber::cpu {

// Elements handled per parallel piece: below this, threads cost more than they save.
inline constexpr std::int64_t kLineGrainElements = 16384;

namespace detail {

// ---- contiguous rows (inner == 1) -------------------------------------------------------------
template <class T>
T row_max(const T* x, std::int64_t n) {
  using P = LinePacket<T>;
  const T lowest = -std::numeric_limits<T>::infinity();
  const auto [m0, m1] = fold_row<T>(n, P(lowest), [&](const P& m, std::int64_t j, std::int64_t count) {
    return xsimd::max(m, load_lanes(x + j, count, lowest));
  });
  return horizontal_max(xsimd::max(m0, m1));
}

// ---- no denormals ---------------------------------------------------------------------------
// exp(x - max) below e^-87 (float; e^-708 for double), about the smallest normal number, is taken
// as 0, and so is a probability whose quotient by the sum would fall below the smallest normal.
// Such values are under the sum's rounding (the sum is at least 1, the max's own term), so the
// sum and every other probability keep their value; a flushed one differs from the exact value by
// less than 2^-125 (float). Why: a denormal result or operand costs a microcode assist on Intel
// CPUs. The -100 mask of Swin's shifted windows puts e^-100 (a denormal) in most rows; on a Xeon
// (family 6, model 207) it made the softmax step 5 times and the P·v product reading it 25 times
// slower than in the unshifted blocks (bench_coarse's breakdown). NaN still propagates.
template <class T>
inline constexpr T exp_cutoff = sizeof(T) == 4 ? T(-87) : T(-708);

// exp(z), 0 where z < exp_cutoff (never a denormal). max(cut, z) returns z when z is NaN.
template <class T>
LinePacket<T> exp_or_zero(const LinePacket<T>& z) {
  using P = LinePacket<T>;
  const P cut(exp_cutoff<T>);
  return xsimd::select(z < cut, P(T(0)), cpu::simd_exp(xsimd::max(cut, z)));
}

// e / sum as e * (1 / sum), 0 where the quotient would fall below the smallest normal number.
template <class T>
struct Normalizer {
  LinePacket<T> reciprocal, floor;
  explicit Normalizer(const LinePacket<T>& sum)
      : reciprocal(LinePacket<T>(T(1)) / sum), floor(sum * LinePacket<T>(2 * std::numeric_limits<T>::min())) {}
  LinePacket<T> operator()(const LinePacket<T>& e) const {
    return xsimd::select(e < floor, LinePacket<T>(T(0)), e) * reciprocal;
  }
};

// A row of exponentials divided by their sum, in place (Normalizer: no denormals).
template <class T>
void normalize_row(T* y, std::int64_t n, T sum) {
  const Normalizer<T> normalize{LinePacket<T>(sum)};
  for_each_packet<T>(n, [&](std::int64_t j, std::int64_t count) {
    store_lanes(y + j, normalize(load_lanes(y + j, count, T(0))), count);
  });
}

// Sum of exp(x - mx) (exp_or_zero); with Store, also writes the exponentials to y.
template <class T, bool Store>
T row_exp_sum(const T* x, T* y, std::int64_t n, T mx) {
  using P = LinePacket<T>;
  const P pm(mx);
  const auto [s0, s1] = fold_row<T>(n, P(T(0)), [&](const P& s, std::int64_t j, std::int64_t count) {
    P e = exp_or_zero<T>(load_lanes(x + j, count, mx) - pm);
    if (count < line_width<T>) e = keep_first(e, count, T(0));
    if constexpr (Store) store_lanes(y + j, e, count);
    return s + e;
  });
  return horizontal_sum(s0 + s1);
}

template <class T, bool Log>
void softmax_row(const T* x, T* y, std::int64_t n) {
  using P = LinePacket<T>;
  const T mx = row_max(x, n);
  const T sum = row_exp_sum<T, !Log>(x, y, n, mx);
  if constexpr (Log) {
    const P pm(mx), ls(std::log(sum));
    for_each_packet<T>(n, [&](std::int64_t j, std::int64_t count) {
      store_lanes(y + j, (load_lanes(x + j, count, T(0)) - pm) - ls, count);
    });
  } else {
    normalize_row(y, n, sum);
  }
}

// The per-line sum the backward needs: sum(g * y) for softmax, sum(g) for log_softmax.
template <class T, bool Log>
LinePacket<T> backward_term(const LinePacket<T>& y, const LinePacket<T>& g) {
  if constexpr (Log) return g;
  else return g * y;
}
// softmax: gx = y * (g - s); log_softmax: gx = g - exp(y) * s.
template <class T, bool Log>
LinePacket<T> backward_value(const LinePacket<T>& y, const LinePacket<T>& g, const LinePacket<T>& s) {
  if constexpr (Log) return g - cpu::simd_exp(y) * s;
  else return y * (g - s);
}

template <class T, bool Log>
void softmax_backward_row(const T* y, const T* g, T* gx, std::int64_t n) {
  using P = LinePacket<T>;
  const auto [s0, s1] = fold_row<T>(n, P(T(0)), [&](const P& s, std::int64_t j, std::int64_t count) {
    return s + backward_term<T, Log>(load_lanes(y + j, count, T(0)), load_lanes(g + j, count, T(0)));
  });
  const P s(horizontal_sum(s0 + s1));
  for_each_packet<T>(n, [&](std::int64_t j, std::int64_t count) {
    store_lanes(gx + j, backward_value<T, Log>(load_lanes(y + j, count, T(0)), load_lanes(g + j, count, T(0)), s), count);
  });
}

// ---- strided lines (inner > 1): `count` <= width neighbouring lines per packet -----------------
// x points at element 0 of the first line; element k of line i is x[k * inner + i].

template <class T, bool Log>
void softmax_lines(const T* x, T* y, std::int64_t n, std::int64_t inner, std::int64_t count) {
  using P = LinePacket<T>;
  const T lowest = -std::numeric_limits<T>::infinity();
  P mx(lowest);
  for (std::int64_t k = 0; k < n; ++k) mx = xsimd::max(mx, load_lanes(x + k * inner, count, lowest));
  P sum(T(0));
  for (std::int64_t k = 0; k < n; ++k) {
    const P e = exp_or_zero<T>(load_lanes(x + k * inner, count, T(0)) - mx);
    if constexpr (!Log) store_lanes(y + k * inner, e, count);
    sum += e;
  }
  if constexpr (Log) {
    const P ls = xsimd::log(sum);
    for (std::int64_t k = 0; k < n; ++k) store_lanes(y + k * inner, (load_lanes(x + k * inner, count, T(0)) - mx) - ls, count);
  } else {
    const Normalizer<T> normalize{sum};
    for (std::int64_t k = 0; k < n; ++k) store_lanes(y + k * inner, normalize(load_lanes(y + k * inner, count, T(0))), count);
  }
}

template <class T, bool Log>
void softmax_backward_lines(const T* y, const T* g, T* gx, std::int64_t n, std::int64_t inner, std::int64_t count) {
  using P = LinePacket<T>;
  P s(T(0));
  for (std::int64_t k = 0; k < n; ++k)
    s += backward_term<T, Log>(load_lanes(y + k * inner, count, T(0)), load_lanes(g + k * inner, count, T(0)));
  for (std::int64_t k = 0; k < n; ++k)
    store_lanes(gx + k * inner,
                backward_value<T, Log>(load_lanes(y + k * inner, count, T(0)), load_lanes(g + k * inner, count, T(0)), s),
                count);
}

// Calls line_block(offset, count) for every block of up to `width` neighbouring lines of
// [outer, n, inner], offset being the block's first element, split over the pool.
template <class T, class F>
void for_each_line_block(std::int64_t outer, std::int64_t n, std::int64_t inner, F&& line_block) {
  constexpr std::int64_t W = line_width<T>;
  if (inner == 1) {
    parallel_for(0, outer, std::max<std::int64_t>(1, kLineGrainElements / std::max<std::int64_t>(n, 1)),
                 [&](std::int64_t b, std::int64_t e) {
                   for (std::int64_t r = b; r < e; ++r) line_block(r * n, 1);
                 });
    return;
  }
  const std::int64_t blocks = (inner + W - 1) / W;
  parallel_for(0, outer * blocks, std::max<std::int64_t>(1, kLineGrainElements / std::max<std::int64_t>(n * W, 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t t = b; t < e; ++t) {
                   const std::int64_t o = t / blocks, i0 = (t % blocks) * W;
                   line_block(o * n * inner + i0, std::min(W, inner - i0));
                 }
               });
}

}  // namespace detail

namespace detail {
template <class T, bool Log>
void softmax_forward(const T* x, T* y, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  for_each_line_block<T>(outer, n, inner, [&](std::int64_t off, std::int64_t count) {
    if (inner == 1) softmax_row<T, Log>(x + off, y + off, n);
    else softmax_lines<T, Log>(x + off, y + off, n, inner, count);
  });
}
template <class T, bool Log>
void softmax_backward(const T* y, const T* g, T* gx, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  for_each_line_block<T>(outer, n, inner, [&](std::int64_t off, std::int64_t count) {
    if (inner == 1) softmax_backward_row<T, Log>(y + off, g + off, gx + off, n);
    else softmax_backward_lines<T, Log>(y + off, g + off, gx + off, n, inner, count);
  });
}
}  // namespace detail

// y = softmax (or log_softmax) of x along n; x, y: contiguous [outer, n, inner], y may not alias x.
template <class T>
void softmax_forward(const T* x, T* y, std::int64_t outer, std::int64_t n, std::int64_t inner, bool log) {
  if (outer == 0 || n == 0 || inner == 0) return;
  if (log) detail::softmax_forward<T, true>(x, y, outer, n, inner);
  else detail::softmax_forward<T, false>(x, y, outer, n, inner);
}

// gx from the forward's output y and the output gradient g; all contiguous [outer, n, inner].
template <class T>
void softmax_backward(const T* y, const T* g, T* gx, std::int64_t outer, std::int64_t n, std::int64_t inner, bool log) {
  if (outer == 0 || n == 0 || inner == 0) return;
  if (log) detail::softmax_backward<T, true>(y, g, gx, outer, n, inner);
  else detail::softmax_backward<T, false>(y, g, gx, outer, n, inner);
}

}  // namespace fiber::cpu
