#pragma once
// sort and topk along one axis, returning values and int64 indices (torch.sort, torch.topk).
//   auto [v, i] = sort(x, -1, /*descending=*/true);        // v: x's shape, i: int64 indices
//   auto [top, idx] = topk(scores, 5, -1);                   // the 5 largest, best first
// Order: NaN counts as larger than every number (last ascending, first descending), as in
// PyTorch. sort is stable: equal values keep their original order in both directions
// (torch.sort(stable=True)). topk returns its k values sorted (largest first, or smallest first
// when !largest); among equal values the lower index comes first, so topk(x, k) equals the first
// k of the stable sort. (PyTorch leaves topk's order among ties unspecified.)
//
// Lines along the axis are independent and split over the pool: results do not depend on the
// thread count. Backward (Var): the output gradient scattered to the indices (each index appears
// once per line), zeros elsewhere.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/ops/index.hpp"  // detail::scatter_add_into

namespace fiber {

// Values and their int64 indices along the axis; V is Tensor<T> or Var<T>.
template <class V>
struct ValuesIndices {
  V values;
  Tensor<std::int64_t> indices;
};

namespace detail {
template <class T>
bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}
// a before b in ascending order (NaN last) or descending order (NaN first).
template <class T>
bool sorts_before(T a, T b, bool descending) {
  const bool na = is_nan_value(a), nb = is_nan_value(b);
  if (descending) return (na && !nb) || a > b;
  return (!na && nb) || a < b;
}

// The first k entries of each line of x along `axis` in sorted order. full: all n, stable.
template <class T>
ValuesIndices<Tensor<T>> sort_lines(const Tensor<T>& x, int axis, std::int64_t k, bool descending, bool full) {
  const Shape& s = x.shape();
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= s[d];
  for (int d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const std::int64_t n = s[axis];
  Shape out_shape = s;
  out_shape[axis] = k;
  ValuesIndices<Tensor<T>> r{Tensor<T>::empty(out_shape), Tensor<std::int64_t>::empty(out_shape)};
  const Tensor<T> xc = x.contiguous();
  const T* xp = xc.data();
  T* vp = r.values.data();
  std::int64_t* ip = r.indices.data();
  if (r.values.numel() == 0) return r;
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(n, 1));
  parallel_for(0, outer * inner, grain, [&](std::int64_t b, std::int64_t e) {
    std::vector<T> line(n);
    std::vector<std::int64_t> order(n);
    for (std::int64_t l = b; l < e; ++l) {
      const std::int64_t o = l / inner, i = l % inner;
      const T* src = xp + o * n * inner + i;
      for (std::int64_t j = 0; j < n; ++j) line[j] = src[j * inner];
      std::iota(order.begin(), order.end(), std::int64_t(0));
      if (full) {
        std::stable_sort(order.begin(), order.end(),
                         [&](std::int64_t a, std::int64_t c) { return sorts_before(line[a], line[c], descending); });
      } else {
        // Ties broken by index: the same as the first k of the stable sort.
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::int64_t a, std::int64_t c) {
          if (sorts_before(line[a], line[c], descending)) return true;
          if (sorts_before(line[c], line[a], descending)) return false;
          return a < c;
        });
      }
      const std::int64_t base = o * k * inner + i;
      for (std::int64_t j = 0; j < k; ++j) {
        vp[base + j * inner] = line[order[j]];
        ip[base + j * inner] = order[j];
      }
    }
  });
  return r;
}

template <class T>
int sort_axis(const Tensor<T>& x, int axis, const char* op) {
  FIBER_CHECK(x.defined(), op, ": undefined input");
  FIBER_CHECK(x.dim() >= 1, op, ": input must have at least one dimension, got shape ", x.shape());
  return x.shape().axis(axis, op);
}

// The gradient of x: g scattered along `axis` at idx (g and idx of the output's shape).
template <class T>
Tensor<T> scatter_to_indices(const Shape& in, const Tensor<T>& g, const Tensor<std::int64_t>& idx, int axis) {
  Tensor<T> gx = Tensor<T>::zeros(in);
  scatter_add_into(gx, g, idx, axis);
  return gx;
}
}  // namespace detail

// x sorted along `axis` (stable), ascending unless `descending`; indices into x along the axis.
template <class T>
ValuesIndices<Tensor<T>> sort(const Tensor<T>& x, int axis = -1, bool descending = false) {
  axis = detail::sort_axis(x, axis, "sort");
  return detail::sort_lines(x, axis, x.size(axis), descending, true);
}

// The k largest (or smallest) entries along `axis`, sorted, with their indices.
template <class T>
ValuesIndices<Tensor<T>> topk(const Tensor<T>& x, std::int64_t k, int axis = -1, bool largest = true) {
  axis = detail::sort_axis(x, axis, "topk");
  FIBER_CHECK(k >= 0 && k <= x.size(axis), "topk: k = ", k, " is out of range for dimension ", axis, " of size ", x.size(axis),
              " (shape ", x.shape(), ")");
  return detail::sort_lines(x, axis, k, largest, false);
}

template <class T>
ValuesIndices<Var<T>> sort(const Var<T>& x, int axis = -1, bool descending = false) {
  auto r = sort(x.value(), axis, descending);
  axis = x.shape().axis(axis, "sort");
  if (!needs_graph(x)) return {Var<T>(std::move(r.values)), r.indices};
  // The indices are the caller's too: saved with their version.
  Var<T> v = record("sort", r.values, {&x}, [in = x.shape(), idx = save_for_backward(r.indices), axis](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{detail::scatter_to_indices(in, g, idx.get(), axis)};
  });
  return {v, r.indices};
}

template <class T>
ValuesIndices<Var<T>> topk(const Var<T>& x, std::int64_t k, int axis = -1, bool largest = true) {
  auto r = topk(x.value(), k, axis, largest);
  axis = x.shape().axis(axis, "topk");
  if (!needs_graph(x)) return {Var<T>(std::move(r.values)), r.indices};
  // The indices are the caller's too: saved with their version.
  Var<T> v = record("topk", r.values, {&x}, [in = x.shape(), idx = save_for_backward(r.indices), axis](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{detail::scatter_to_indices(in, g, idx.get(), axis)};
  });
  return {v, r.indices};
}

}  // namespace fiber
