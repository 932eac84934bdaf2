#pragma once
// Indexing by integer tensors: index_select, gather, embedding, one_hot (as torch.index_select,
// torch.gather, F.embedding, F.one_hot), for tensors and for Vars.
//
//   Tensor<float> rows = index_select(table, 0, ids);         // table: [V, D], ids: [K] -> [K, D]
//   Var<float> e = embedding(weight, token_ids, pad_id);       // ids: [B, L] -> [B, L, D]
//
// Indices are int64 (or any other integer type) and must lie in [0, size): negative indices are
// rejected, as PyTorch does for these ops. A bad index is reported with its value and position.
// The backward of index_select, gather and embedding is a scatter-add that adds the gradients of
// each destination element in index order, whatever the thread count: threads own disjoint
// destination rows or positions and never race.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/strided_loop.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/ops/join.hpp"  // detail::product

namespace fiber {

template <class I>
concept IndexType = std::is_integral_v<I> && !std::is_same_v<I, bool>;

namespace detail {
// The multi-index of flat position `flat` in `shape`, for error messages.
inline Shape position_of(std::int64_t flat, const Shape& shape) {
  Shape at = Shape::filled(shape.rank(), 0);
  for (int d = shape.rank() - 1; d >= 0; --d) {
    if (shape[d] > 0) {
      at[d] = flat % shape[d];
      flat /= shape[d];
    }
  }
  return at;
}

// Checks every index of a contiguous index tensor against [0, limit); `what` says which
// dimension they address.
template <class I>
void check_indices(const Tensor<I>& idx, std::int64_t limit, const char* op, const char* what) {
  const I* p = idx.data();
  const std::int64_t n = idx.numel();
  for (std::int64_t k = 0; k < n; ++k) {
    const auto v = static_cast<std::int64_t>(p[k]);
    if (v < 0 || v >= limit) [[unlikely]] {
      fail(op, ": index ", v, " at position ", position_of(k, idx.shape()), " of the index tensor (shape ", idx.shape(),
           ") is out of range for ", what, " of size ", limit, " (indices must be in [0, ", limit,
           "); negative indices are not accepted)");
    }
  }
}

// Rows of elements: the bytes a task should at least copy or add before it is worth a thread.
inline std::int64_t rows_grain(std::int64_t row_elems, std::int64_t elem_bytes) {
  return std::max<std::int64_t>(1, (std::int64_t(1) << 16) / std::max<std::int64_t>(row_elems * elem_bytes, 1));
}

// src: [outer, N, inner] contiguous, idx: [J] valid -> dst: [outer, J, inner] contiguous.
template <class T, class I>
void select_rows(T* dst, const T* src, const I* idx, std::int64_t outer, std::int64_t n, std::int64_t j_count,
                 std::int64_t inner) {
  if (inner == 0) return;
  parallel_for(0, outer * j_count, rows_grain(inner, sizeof(T)), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      const std::int64_t o = r / j_count, j = r - o * j_count;
      std::memcpy(dst + r * inner, src + (o * n + static_cast<std::int64_t>(idx[j])) * inner, inner * sizeof(T));
    }
  });
}

// The adjoint of select_rows: dst[o, idx[j], :] += src[o, j, :] for all o, j (dst already holds
// its starting values), skipping j where idx[j] == skip. Each task owns a range of destination
// rows and scans j in order, so every destination row adds its contributions in index order.
template <class T, class I>
void add_rows(T* dst, const T* src, const I* idx, std::int64_t outer, std::int64_t n, std::int64_t j_count,
              std::int64_t inner, std::int64_t skip = -1) {
  if (inner == 0 || n == 0) return;
  // Every piece scans all of idx once per outer index it touches: cheap next to the row adds.
  parallel_for(0, outer * n, rows_grain(inner, sizeof(T)), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t o = b / n; o * n < e; ++o) {
      const std::int64_t lo = std::max(b - o * n, std::int64_t(0)), hi = std::min(e - o * n, n);
      const T* s = src + o * j_count * inner;
      T* d = dst + o * n * inner;
      for (std::int64_t j = 0; j < j_count; ++j) {
        const auto row = static_cast<std::int64_t>(idx[j]);
        if (row < lo || row >= hi || row == skip) continue;
        T* dr = d + row * inner;
        const T* sr = s + j * inner;
        for (std::int64_t c = 0; c < inner; ++c) dr[c] += sr[c];
      }
    }
  });
}

template <class T, class I>
Tensor<T> index_select_impl(const Tensor<T>& x, int axis, const Tensor<I>& indices, const char* op) {
  FIBER_CHECK(x.defined() && indices.defined(), op, ": undefined input");
  FIBER_CHECK(x.dim() >= 1, op, ": input must have at least one dimension, got shape ", x.shape());
  FIBER_CHECK(indices.dim() <= 1, op, ": indices must be 0-D or 1-D, got shape ", indices.shape());
  axis = x.shape().axis(axis, op);
  const Tensor<I> idx = indices.contiguous();
  check_indices(idx, x.size(axis), op, "the selected dimension");
  Shape out_shape = x.shape();
  out_shape[axis] = idx.numel();
  Tensor<T> out = Tensor<T>::empty(out_shape);
  const Tensor<T> xc = x.contiguous();
  select_rows(out.data(), xc.data(), idx.data(), product(x.shape(), 0, axis), x.size(axis), idx.numel(),
              product(x.shape(), axis + 1, x.dim()));
  return out;
}
}  // namespace detail

// ---- index_select -----------------------------------------------------------------------------
// The entries of `x` at `indices` (0-D or 1-D) along `axis`: out.size(axis) == indices.numel().
template <class T, IndexType I>
Tensor<T> index_select(const Tensor<T>& x, int axis, const Tensor<I>& indices) {
  return detail::index_select_impl(x, axis, indices, "index_select");
}

template <class T, IndexType I>
Var<T> index_select(const Var<T>& x, int axis, const Tensor<I>& indices) {
  Tensor<T> out = index_select(x.value(), axis, indices);
  if (!needs_graph(x)) return Var<T>(std::move(out));
  axis = x.shape().axis(axis, "index_select");
  return record("index_select", std::move(out), {&x},
                [is = save_for_backward(indices.contiguous()), in = x.shape(), axis](const Tensor<T>& g, GradNeeds) {
                  const Tensor<I>& idx = is.get();
                  Tensor<T> gx = Tensor<T>::zeros(in);
                  const Tensor<T> gc = g.contiguous();
                  detail::add_rows(gx.data(), gc.data(), idx.data(), detail::product(in, 0, axis), in[axis], idx.numel(),
                                   detail::product(in, axis + 1, in.rank()));
                  return std::vector<Tensor<T>>{gx};
                });
}

// ---- gather -----------------------------------------------------------------------------------
namespace detail {
template <class T, class I>
void check_gather(const Tensor<T>& x, int axis, const Tensor<I>& index) {
  FIBER_CHECK(index.dim() == x.dim(), "gather: index of shape ", index.shape(), " must have the same rank as the input of shape ",
              x.shape());
  for (int d = 0; d < x.dim(); ++d)
    FIBER_CHECK(d == axis || index.size(d) <= x.size(d), "gather: index of shape ", index.shape(), " is larger than the input ",
                "of shape ", x.shape(), " in dimension ", d, " (only the gathered axis ", axis, " may be larger)");
}

// `s` without entry `axis`.
inline Shape without_axis(const Shape& s, int axis) {
  Shape out = s;
  out.erase(axis);
  return out;
}
}  // namespace detail

// out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (and likewise for any axis); index has the
// rank of x and sizes no larger than x's except along `axis`.
template <class T, IndexType I>
Tensor<T> gather(const Tensor<T>& x, int axis, const Tensor<I>& index) {
  FIBER_CHECK(x.defined() && index.defined(), "gather: undefined input");
  FIBER_CHECK(x.dim() >= 1, "gather: input must have at least one dimension, got shape ", x.shape());
  axis = x.shape().axis(axis, "gather");
  detail::check_gather(x, axis, index);
  const Tensor<I> idx = index.contiguous();
  detail::check_indices(idx, x.size(axis), "gather", "the gathered dimension");
  Tensor<T> out = Tensor<T>::empty(idx.shape());
  // One strided pass over the index shape: operands out, idx, and x without its axis stride.
  Shape xs = x.strides();
  const std::int64_t axis_stride = xs[axis];
  xs[axis] = 0;
  const StridedLayout<3> L = coalesce<3>(idx.shape(), {out.strides(), idx.strides(), xs});
  T* o = out.data();
  const I* ip = idx.data();
  const T* xp = x.data();
  parallel_runs<3>(L, kElementwiseGrain / 4, [&](const auto& off, std::int64_t n, const auto& inc) {
    for (std::int64_t t = 0; t < n; ++t)
      o[off[0] + t * inc[0]] = xp[off[2] + t * inc[2] + static_cast<std::int64_t>(ip[off[1] + t * inc[1]]) * axis_stride];
  });
  return out;
}

namespace detail {
// gx (contiguous, shape of x) += scatter of g along `axis` at idx (contiguous, shape of g).
// Positions other than `axis` are split over threads; each walks the axis in order, so every
// element of gx adds its contributions in index order.
template <class T, class I>
void scatter_add_into(const Tensor<T>& gx, const Tensor<T>& g, const Tensor<I>& idx, int axis) {
  const Shape rest = without_axis(idx.shape(), axis);
  const std::int64_t j_count = idx.size(axis);
  if (j_count == 0 || rest.numel() == 0) return;
  const std::int64_t g_axis = g.strides()[axis], i_axis = idx.strides()[axis], x_axis = gx.strides()[axis];
  const StridedLayout<3> L =
      coalesce<3>(rest, {without_axis(g.strides(), axis), without_axis(idx.strides(), axis), without_axis(gx.strides(), axis)});
  T* d = gx.data();
  const T* s = g.data();
  const I* ip = idx.data();
  parallel_for(0, L.numel, std::max<std::int64_t>(1, kElementwiseGrain / 4 / j_count), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t j = 0; j < j_count; ++j)
      for_each_run<3>(L, b, e, [&](const auto& off, std::int64_t n, const auto& inc) {
        const T* sj = s + off[0] + j * g_axis;
        const I* ij = ip + off[1] + j * i_axis;
        T* dj = d + off[2];
        for (std::int64_t t = 0; t < n; ++t) dj[t * inc[2] + static_cast<std::int64_t>(ij[t * inc[1]]) * x_axis] += sj[t * inc[0]];
      });
  });
}
}  // namespace detail

template <class T, IndexType I>
Var<T> gather(const Var<T>& x, int axis, const Tensor<I>& index) {
  Tensor<T> out = gather(x.value(), axis, index);
  if (!needs_graph(x)) return Var<T>(std::move(out));
  axis = x.shape().axis(axis, "gather");
  return record("gather", std::move(out), {&x},
                [is = save_for_backward(index.contiguous()), in = x.shape(), axis](const Tensor<T>& g, GradNeeds) {
    Tensor<T> gx = Tensor<T>::zeros(in);
    detail::scatter_add_into(gx, g, is.get(), axis);
    return std::vector<Tensor<T>>{gx};
  });
}

// ---- embedding --------------------------------------------------------------------------------
namespace detail {
inline std::int64_t embedding_padding(std::optional<std::int64_t> padding_idx, std::int64_t rows) {
  if (!padding_idx) return -1;
  const std::int64_t p = *padding_idx;
  FIBER_CHECK(p >= -rows && p < rows, "embedding: padding_idx ", p, " is out of range for a table of ", rows,
              " rows (expected in [", -rows, ", ", rows, "))");
  return p < 0 ? p + rows : p;
}
template <class T>
void check_embedding_weight(const Tensor<T>& weight) {
  FIBER_CHECK(weight.defined(), "embedding: undefined weight");
  FIBER_CHECK(weight.dim() == 2, "embedding: weight must be 2-D [num_embeddings, dim], got shape ", weight.shape());
}
}  // namespace detail

// The rows of `weight` ([V, D]) at `ids` (any shape): out shape = ids.shape + [D]. padding_idx
// (negative counts from the end) only matters for the gradient: that row gets none.
template <class T, IndexType I>
Tensor<T> embedding(const Tensor<T>& weight, const Tensor<I>& ids, std::optional<std::int64_t> padding_idx = std::nullopt) {
  detail::check_embedding_weight(weight);
  FIBER_CHECK(ids.defined(), "embedding: undefined ids");
  detail::embedding_padding(padding_idx, weight.size(0));
  const Tensor<I> flat = ids.contiguous();
  detail::check_indices(flat, weight.size(0), "embedding", "the table's rows (num_embeddings)");
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  Tensor<T> out = Tensor<T>::empty(out_shape);
  const Tensor<T> w = weight.contiguous();
  detail::select_rows(out.data(), w.data(), flat.data(), 1, weight.size(0), flat.numel(), weight.size(1));
  return out;
}

template <class T, IndexType I>
Var<T> embedding(const Var<T>& weight, const Tensor<I>& ids, std::optional<std::int64_t> padding_idx = std::nullopt) {
  Tensor<T> out = embedding(weight.value(), ids, padding_idx);
  if (!needs_graph(weight)) return Var<T>(std::move(out));
  const std::int64_t pad = detail::embedding_padding(padding_idx, weight.size(0));
  return record("embedding", std::move(out), {&weight},
                [is = save_for_backward(ids.contiguous()), in = weight.shape(), pad](const Tensor<T>& g, GradNeeds) {
    const Tensor<I>& idx = is.get();
    Tensor<T> gw = Tensor<T>::zeros(in);
    const Tensor<T> gc = g.contiguous();
    detail::add_rows(gw.data(), gc.data(), idx.data(), 1, in[0], idx.numel(), in[1], pad);
    return std::vector<Tensor<T>>{gw};
  });
}

// ---- one_hot ----------------------------------------------------------------------------------
// out[..., c] = (ids[...] == c): shape ids.shape + [num_classes], element type U (int64 as
// PyTorch by default). num_classes = -1 takes max(ids) + 1.
template <class U = std::int64_t, IndexType I>
Tensor<U> one_hot(const Tensor<I>& ids, std::int64_t num_classes = -1) {
  FIBER_CHECK(ids.defined(), "one_hot: undefined ids");
  FIBER_CHECK(num_classes >= -1, "one_hot: num_classes must be -1 (infer) or non-negative, got ", num_classes);
  const Tensor<I> flat = ids.contiguous();
  const I* p = flat.data();
  const std::int64_t n = flat.numel();
  if (num_classes == -1) {
    FIBER_CHECK(n > 0, "one_hot: cannot infer num_classes from empty ids (shape ", ids.shape(), ")");
    std::int64_t top = 0;
    for (std::int64_t k = 0; k < n; ++k) top = std::max(top, static_cast<std::int64_t>(p[k]));
    num_classes = top + 1;
  }
  detail::check_indices(flat, num_classes, "one_hot", "num_classes");
  Shape out_shape = ids.shape();
  out_shape.push_back(num_classes);
  Tensor<U> out = Tensor<U>::zeros(out_shape);
  U* o = out.data();
  for (std::int64_t k = 0; k < n; ++k) o[k * num_classes + static_cast<std::int64_t>(p[k])] = U(1);
  return out;
}

}  // namespace fiber
