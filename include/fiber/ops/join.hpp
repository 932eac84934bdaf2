#pragma once
// Joining and splitting along an axis: concat, stack, split, chunk (as torch.cat, torch.stack,
// torch.split, torch.chunk), for tensors and for Vars.
//
//   Tensor<float> y = concat({a, b}, 1);        // a: [2, 3], b: [2, 5] -> y: [2, 8]
//   auto [q, k, v] = chunk(qkv, 3, -1) ...      // three views of qkv
//
// split and chunk return views. For Vars, each piece's gradient flows back into one gradient
// of the input (pieces that no loss uses contribute zeros), written once, without a full-size
// temporary per piece.
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber {

namespace detail {
// Checks that `shapes` may be concatenated along `axis` (normalised against the first rank) and
// returns the normalised axis.
inline int check_concat_shapes(std::span<const Shape> shapes, int axis, const char* op) {
  FIBER_CHECK(!shapes.empty(), op, ": needs at least one input");
  const Shape& first = shapes[0];
  FIBER_CHECK(first.rank() > 0, op, ": input 0 is zero-dimensional (shape ", first, "); it has no axis to join along");
  axis = first.axis(axis, op);
  for (std::size_t i = 1; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    FIBER_CHECK(s.rank() == first.rank(), op, ": input ", i, " has shape ", s, " of rank ", s.rank(), " but input 0 has shape ",
                first, " of rank ", first.rank(), "; all inputs must have the same rank");
    for (int d = 0; d < s.rank(); ++d)
      FIBER_CHECK(d == axis || s[d] == first[d], op, ": input ", i, " has shape ", s, " but input 0 has shape ", first,
                  "; sizes must match in every dimension except axis ", axis, " (they differ in dimension ", d, ")");
  }
  return axis;
}

// Product of s[from..to).
inline std::int64_t product(const Shape& s, int from, int to) {
  std::int64_t n = 1;
  for (int d = from; d < to; ++d) n *= s[d];
  return n;
}

// out: contiguous, the concatenation of xs along axis. Contiguous inputs are copied by rows of
// size(axis) * inner elements (one memcpy per input per outer index); others through copy_.
template <class T>
Tensor<T> concat_into_new(std::span<const Tensor<T>> xs, int axis, const char* op) {
  std::vector<Shape> shapes;
  shapes.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    FIBER_CHECK(xs[i].defined(), op, ": input ", i, " is undefined");
    shapes.push_back(xs[i].shape());
  }
  axis = check_concat_shapes(shapes, axis, op);
  Shape out_shape = shapes[0];
  out_shape[axis] = 0;
  for (const Shape& s : shapes) out_shape[axis] += s[axis];
  Tensor<T> out = Tensor<T>::empty(out_shape);
  if (out.numel() == 0) return out;
  // out viewed as [outer, out_row]; input i fills columns [col_i, col_i + row_i) of each row.
  const std::int64_t outer = product(out_shape, 0, axis), inner = product(out_shape, axis + 1, out_shape.rank());
  const std::int64_t out_row = out_shape[axis] * inner;
  std::vector<std::int64_t> starts(xs.size()), cols(xs.size());
  std::int64_t start = 0, fast_bytes_per_outer = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    starts[i] = start;
    cols[i] = start * inner;
    start += shapes[i][axis];
    const std::int64_t row = shapes[i][axis] * inner;
    if (xs[i].is_contiguous()) fast_bytes_per_outer += row * std::int64_t(sizeof(T));
  }
  T* dst = out.data();
  const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t(1) << 16) / std::max<std::int64_t>(fast_bytes_per_outer, 1));
  parallel_for(0, outer, grain, [&](std::int64_t b, std::int64_t e) {
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (!xs[i].is_contiguous()) continue;
      const std::int64_t row = shapes[i][axis] * inner;
      if (row == 0) continue;
      const T* src = xs[i].data();
      for (std::int64_t o = b; o < e; ++o) std::memcpy(dst + o * out_row + cols[i], src + o * row, row * sizeof(T));
    }
  });
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].is_contiguous()) out.narrow(axis, starts[i], shapes[i][axis]).copy_(xs[i]);
  return out;
}
}  // namespace detail

// ---- concat -----------------------------------------------------------------------------------
// Joins tensors along `axis`; all sizes except that axis must match (as torch.cat, without its
// legacy skipping of 1-D empty tensors).
template <class T>
Tensor<T> concat(std::span<const Tensor<T>> xs, int axis = 0) {
  return detail::concat_into_new(xs, axis, "concat");
}
template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, int axis = 0) {
  return concat(std::span<const Tensor<T>>(xs), axis);
}
template <class T>
Tensor<T> concat(std::initializer_list<Tensor<T>> xs, int axis = 0) {
  return concat(std::span<const Tensor<T>>(xs.begin(), xs.size()), axis);
}

template <class T>
Var<T> concat(std::span<const Var<T>> xs, int axis = 0) {
  std::vector<Tensor<T>> values;
  values.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    FIBER_CHECK(xs[i].defined(), "concat: input ", i, " is undefined");
    values.push_back(xs[i].value());
  }
  Tensor<T> out = concat(std::span<const Tensor<T>>(values), axis);
  if (!needs_graph(xs)) return Var<T>(std::move(out));  // the backward saves sizes only
  axis = values[0].shape().axis(axis, "concat");
  // Each input's gradient is a view of g: its slice along the axis.
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  std::int64_t start = 0;
  for (const auto& v : values) {
    ranges.emplace_back(start, v.size(axis));
    start += v.size(axis);
  }
  return record("concat", out, xs, [axis, ranges = std::move(ranges)](const Tensor<T>& g, GradNeeds needs) {
    std::vector<Tensor<T>> grads(ranges.size());
    for (std::size_t i = 0; i < ranges.size(); ++i)
      if (needs[i]) grads[i] = g.narrow(axis, ranges[i].first, ranges[i].second);
    return grads;
  });
}
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, int axis = 0) {
  return concat(std::span<const Var<T>>(xs), axis);
}
template <class T>
Var<T> concat(std::initializer_list<Var<T>> xs, int axis = 0) {
  return concat(std::span<const Var<T>>(xs.begin(), xs.size()), axis);
}

// ---- stack ------------------------------------------------------------------------------------
namespace detail {
// Normalises a stack axis in [-(rank+1), rank] and checks that all shapes are equal.
inline int check_stack_shapes(std::span<const Shape> shapes, int axis) {
  FIBER_CHECK(!shapes.empty(), "stack: needs at least one input");
  const Shape& first = shapes[0];
  const int rank = first.rank();
  FIBER_CHECK(axis >= -rank - 1 && axis <= rank, "stack: axis ", axis, " is out of range for inputs of shape ", first,
              " (expected in [", -rank - 1, ", ", rank, "])");
  for (std::size_t i = 1; i < shapes.size(); ++i)
    FIBER_CHECK(shapes[i] == first, "stack: input ", i, " has shape ", shapes[i], " but input 0 has shape ", first,
                "; all inputs must have the same shape");
  return axis < 0 ? axis + rank + 1 : axis;
}
}  // namespace detail

// Joins equally shaped tensors along a new axis (as torch.stack).
template <class T>
Tensor<T> stack(std::span<const Tensor<T>> xs, int axis = 0) {
  std::vector<Shape> shapes;
  std::vector<Tensor<T>> expanded;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    FIBER_CHECK(xs[i].defined(), "stack: input ", i, " is undefined");
    shapes.push_back(xs[i].shape());
  }
  axis = detail::check_stack_shapes(shapes, axis);
  expanded.reserve(xs.size());
  for (const auto& x : xs) expanded.push_back(x.unsqueeze(axis));
  return detail::concat_into_new(std::span<const Tensor<T>>(expanded), axis, "stack");
}
template <class T>
Tensor<T> stack(const std::vector<Tensor<T>>& xs, int axis = 0) {
  return stack(std::span<const Tensor<T>>(xs), axis);
}
template <class T>
Tensor<T> stack(std::initializer_list<Tensor<T>> xs, int axis = 0) {
  return stack(std::span<const Tensor<T>>(xs.begin(), xs.size()), axis);
}

template <class T>
Var<T> stack(std::span<const Var<T>> xs, int axis = 0) {
  std::vector<Tensor<T>> values;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    FIBER_CHECK(xs[i].defined(), "stack: input ", i, " is undefined");
    values.push_back(xs[i].value());
  }
  Tensor<T> out = stack(std::span<const Tensor<T>>(values), axis);
  if (!needs_graph(xs)) return Var<T>(std::move(out));  // the backward saves sizes only
  axis = axis < 0 ? axis + values[0].dim() + 1 : axis;
  return record("stack", out, xs, [axis, n = xs.size()](const Tensor<T>& g, GradNeeds needs) {
    std::vector<Tensor<T>> grads(n);
    for (std::size_t i = 0; i < n; ++i)
      if (needs[i]) grads[i] = g.select(axis, static_cast<std::int64_t>(i));
    return grads;
  });
}
template <class T>
Var<T> stack(const std::vector<Var<T>>& xs, int axis = 0) {
  return stack(std::span<const Var<T>>(xs), axis);
}
template <class T>
Var<T> stack(std::initializer_list<Var<T>> xs, int axis = 0) {
  return stack(std::span<const Var<T>>(xs.begin(), xs.size()), axis);
}

// ---- split and chunk --------------------------------------------------------------------------
namespace detail {
// Piece sizes for split(x, size): ceil(n / size) pieces, the last one smaller (one piece when
// n == 0), as torch.split.
inline std::vector<std::int64_t> split_sizes_of(std::int64_t n, std::int64_t size, const Shape& shape, int axis) {
  FIBER_CHECK(size >= 0, "split: piece size must be non-negative, got ", size);
  FIBER_CHECK(size > 0 || n == 0, "split: piece size 0 is only allowed for an empty dimension, but dimension ", axis,
              " of shape ", shape, " has size ", n);
  if (n == 0) return {0};
  std::vector<std::int64_t> sizes;
  for (std::int64_t at = 0; at < n; at += size) sizes.push_back(std::min(size, n - at));
  return sizes;
}
// Piece sizes for chunk(x, chunks): pieces of ceil(n / chunks), so there may be fewer than
// `chunks` of them; an empty dimension gives `chunks` empty pieces (as torch.chunk).
inline std::vector<std::int64_t> chunk_sizes_of(std::int64_t n, std::int64_t chunks, const Shape& shape, int axis) {
  FIBER_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks, " (shape ", shape, ", axis ", axis, ")");
  if (n == 0) return std::vector<std::int64_t>(static_cast<std::size_t>(chunks), 0);
  return split_sizes_of(n, (n + chunks - 1) / chunks, shape, axis);
}
inline void check_split_sizes(std::span<const std::int64_t> sizes, std::int64_t n, const Shape& shape, int axis) {
  std::int64_t total = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    FIBER_CHECK(sizes[i] >= 0, "split: size ", sizes[i], " of piece ", i, " is negative");
    total += sizes[i];
  }
  FIBER_CHECK(total == n, "split: piece sizes sum to ", total, " but dimension ", axis, " of shape ", shape, " has size ", n);
}

template <class T>
std::vector<Tensor<T>> split_views(const Tensor<T>& x, std::span<const std::int64_t> sizes, int axis) {
  std::vector<Tensor<T>> pieces;
  pieces.reserve(sizes.size());
  std::int64_t start = 0;
  for (std::int64_t s : sizes) {
    pieces.push_back(x.narrow(axis, start, s));
    start += s;
  }
  return pieces;
}

// The backward of a split: pieces deposit their gradients here (PieceNode), and this node, which
// runs after all of them, writes one gradient of the input: each piece's slice, zeros where no
// gradient arrived.
template <class T>
class SplitNode final : public Node<T> {
 public:
  SplitNode(Edge<T> edge, int axis, std::vector<std::int64_t> sizes)
      : edge_(std::move(edge)), axis_(axis), sizes_(std::move(sizes)), slots_(sizes_.size()) {
    if (edge_.node) this->next_.push_back(edge_.node);
  }
  const char* name() const override { return "split"; }
  void deposit(std::size_t piece, const Tensor<T>& g) {
    slots_[piece] = slots_[piece].defined() ? Tensor<T>(slots_[piece] + g) : g;
  }
  void apply() override {
    std::vector<Tensor<T>> slots = std::exchange(slots_, std::vector<Tensor<T>>(sizes_.size()));
    bool any = false;
    for (const auto& s : slots) any = any || s.defined();
    if (!any) return;
    Tensor<T> gx = Tensor<T>::empty(edge_.shape);
    std::int64_t start = 0;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const Tensor<T> part = gx.narrow(axis_, start, sizes_[i]);
      if (slots[i].defined()) part.copy_(slots[i]);
      else part.fill_(T(0));
      start += sizes_[i];
    }
    edge_.send(gx, "split");
  }
  void clear_gradient() override {
    Node<T>::clear_gradient();
    slots_.assign(sizes_.size(), Tensor<T>());
  }

 private:
  Edge<T> edge_;
  int axis_;
  std::vector<std::int64_t> sizes_;
  std::vector<Tensor<T>> slots_;
};

template <class T>
class PieceNode final : public Node<T> {
 public:
  PieceNode(std::shared_ptr<SplitNode<T>> parent, std::size_t piece) : parent_(std::move(parent)), piece_(piece) {
    this->next_.push_back(parent_);
  }
  const char* name() const override { return "split_piece"; }
  void apply() override {
    Tensor<T> g = this->take_gradient();
    if (g.defined()) parent_->deposit(piece_, g);
  }

 private:
  std::shared_ptr<SplitNode<T>> parent_;
  std::size_t piece_;
};

template <class T>
std::vector<Var<T>> split_vars(const Var<T>& x, std::vector<std::int64_t> sizes, int axis) {
  std::vector<Tensor<T>> pieces = split_views(x.value(), std::span<const std::int64_t>(sizes), axis);
  std::vector<Var<T>> out;
  out.reserve(pieces.size());
  if (!fiber::grad_enabled() || !x.requires_grad()) {
    for (auto& p : pieces) out.emplace_back(std::move(p));
    return out;
  }
  auto parent = std::make_shared<SplitNode<T>>(Edge<T>::to(x.impl()), axis, std::move(sizes));
  for (std::size_t i = 0; i < pieces.size(); ++i)
    out.push_back(Var<T>::from_node(std::move(pieces[i]), std::make_shared<PieceNode<T>>(parent, i)));
  return out;
}
}  // namespace detail

// Views of consecutive pieces of `size` along `axis` (the last may be smaller).
template <class T>
std::vector<Tensor<T>> split(const Tensor<T>& x, std::int64_t size, int axis = 0) {
  axis = x.shape().axis(axis, "split");
  const auto sizes = detail::split_sizes_of(x.size(axis), size, x.shape(), axis);
  return detail::split_views(x, std::span<const std::int64_t>(sizes), axis);
}
// Views of pieces with the given sizes along `axis` (they must sum to the axis size).
template <class T>
std::vector<Tensor<T>> split(const Tensor<T>& x, const std::vector<std::int64_t>& sizes, int axis = 0) {
  axis = x.shape().axis(axis, "split");
  detail::check_split_sizes(sizes, x.size(axis), x.shape(), axis);
  return detail::split_views(x, std::span<const std::int64_t>(sizes), axis);
}
// At most `chunks` views of equal size ceil(n / chunks) along `axis` (the last may be smaller).
template <class T>
std::vector<Tensor<T>> chunk(const Tensor<T>& x, std::int64_t chunks, int axis = 0) {
  axis = x.shape().axis(axis, "chunk");
  const auto sizes = detail::chunk_sizes_of(x.size(axis), chunks, x.shape(), axis);
  return detail::split_views(x, std::span<const std::int64_t>(sizes), axis);
}

template <class T>
std::vector<Var<T>> split(const Var<T>& x, std::int64_t size, int axis = 0) {
  axis = x.shape().axis(axis, "split");
  return detail::split_vars(x, detail::split_sizes_of(x.size(axis), size, x.shape(), axis), axis);
}
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::int64_t>& sizes, int axis = 0) {
  axis = x.shape().axis(axis, "split");
  detail::check_split_sizes(sizes, x.size(axis), x.shape(), axis);
  return detail::split_vars(x, sizes, axis);
}
template <class T>
std::vector<Var<T>> chunk(const Var<T>& x, std::int64_t chunks, int axis = 0) {
  axis = x.shape().axis(axis, "chunk");
  return detail::split_vars(x, detail::chunk_sizes_of(x.size(axis), chunks, x.shape(), axis), axis);
}

}  // namespace fiber
