#pragma once
// The reduction kernel: folds a tensor or an elementwise expression along axes (sum, max, min),
// evaluating the expression inside the loop, so `sum(g * d, axes)` is one pass with no
// temporary. The public reductions (fiber/ops/reduce.hpp) and autograd's broadcast gradients
// (sum_to_shape) are built on it.
//
// Determinism: the order in which an output element accumulates its inputs depends only on the
// shapes and strides, never on the thread count: the work is split over output elements, and a
// very long reduction is cut into chunks of a fixed size whose partial results are combined in
// order.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "fiber/expr/evaluate.hpp"

namespace fiber {

// Which axes to reduce: a set over the input's dimensions.
class Axes {
 public:
  Axes() = default;                                     // all axes
  Axes(int axis) : list_{axis}, all_(false) {}          // NOLINT: one axis reads naturally
  Axes(std::initializer_list<int> axes) : list_(axes), all_(false) {}
  explicit Axes(std::span<const int> axes) : list_(axes.begin(), axes.end()), all_(false) {}
  static Axes all() { return {}; }

  // Bit mask over `rank` dims; throws on an out-of-range or repeated axis.
  unsigned mask(const Shape& shape, const char* op) const {
    if (all_) return shape.rank() == 0 ? 0u : (1u << shape.rank()) - 1;
    unsigned m = 0;
    for (int a : list_) {
      const int ax = shape.axis(a, op);
      FIBER_CHECK(!(m & (1u << ax)), op, ": axis ", a, " repeated (shape ", shape, ")");
      m |= 1u << ax;
    }
    return m;
  }

 private:
  std::vector<int> list_;
  bool all_ = true;
};

// The shape after reducing `mask`; reduced dims become 1 (keepdim) or disappear.
inline Shape reduced_shape(const Shape& in, unsigned mask, bool keepdim) {
  Shape out;
  for (int i = 0; i < in.rank(); ++i) {
    if (!(mask & (1u << i))) out.push_back(in[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

namespace reducers {
template <class C>
using Packet = detail::Packet<C>;

struct Sum {
  static constexpr const char* name = "sum";
  template <class C> static C identity() { return C(0); }
  template <class C> static Packet<C> combine(const Packet<C>& acc, const Packet<C>& x) { return acc + x; }
  template <class C> static C combine(C acc, C x) { return acc + x; }
};
struct Max {
  static constexpr const char* name = "max";
  template <class C> static C identity() {
    return std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::lowest();
  }
  // NaN wins, as in PyTorch.
  template <class C> static Packet<C> combine(const Packet<C>& acc, const Packet<C>& x) {
    return xsimd::select((x > acc) || xsimd::isnan(x), x, acc);
  }
  template <class C> static C combine(C acc, C x) { return (x > acc || x != x) ? x : acc; }
};
struct Min {
  static constexpr const char* name = "min";
  template <class C> static C identity() {
    return std::numeric_limits<C>::has_infinity ? std::numeric_limits<C>::infinity() : std::numeric_limits<C>::max();
  }
  template <class C> static Packet<C> combine(const Packet<C>& acc, const Packet<C>& x) {
    return xsimd::select((x < acc) || xsimd::isnan(x), x, acc);
  }
  template <class C> static C combine(C acc, C x) { return (x < acc || x != x) ? x : acc; }
};
}  // namespace reducers

namespace detail {

// Lanes at or past `count` replaced by the reducer's identity (padding lanes are zeros).
template <class R, class C>
Packet<C> mask_tail(const Packet<C>& p, std::int64_t count) {
  if (count >= packet_size<C>) return p;
  alignas(64) C tmp[packet_size<C>];
  p.store_aligned(tmp);
  for (std::int64_t i = count; i < packet_size<C>; ++i) tmp[i] = R::template identity<C>();
  return Packet<C>::load_aligned(tmp);
}

template <class R, class C>
C horizontal(const Packet<C>& p) {
  alignas(64) C tmp[packet_size<C>];
  p.store_aligned(tmp);
  C acc = tmp[0];
  for (std::int64_t i = 1; i < packet_size<C>; ++i) acc = R::combine(acc, tmp[i]);
  return acc;
}

// Reduced elements per chunk when one output reduces very many inputs.
inline constexpr std::int64_t kReduceChunk = 1 << 16;

}  // namespace detail

// Reduces `expr` over the dims where `out` (same rank, reduced dims of size 1) has size 1 and
// expr does not, with reducer R; `scale` multiplies each result (1/n for a mean).
template <class R, class V, Expression E>
void reduce_into(const Tensor<V>& out, const E& expr, double scale = 1.0) {
  using C = compute_t<E>;
  using detail::Packet;
  constexpr int K = E::leaves;
  constexpr std::int64_t W = detail::packet_size<C>;
  const Shape& in = expr.shape();
  FIBER_CHECK(out.dim() == in.rank(), R::name, ": output rank ", out.dim(), " differs from input shape ", in);
  for (int d = 0; d < in.rank(); ++d)
    FIBER_CHECK(out.shape()[d] == in[d] || out.shape()[d] == 1, R::name, ": output shape ", out.shape(),
                " is not a reduction of ", in);
  if (out.numel() == 0) return;
  out.bump_version();  // an in-place write into `out`
  if (in.numel() == 0) {  // empty reduction: the identity (sum 0; max/min have none)
    FIBER_CHECK((std::is_same_v<R, reducers::Sum>), R::name, ": reduction over an empty dimension (shape ", in, ")");
    out.fill_(V(0));
    return;
  }

  detail::LeafTable<K> table;
  detail::collect_leaves<0>(expr, in, table);
  table.strides[K] = detail::broadcast_strides(out.shape(), out.strides(), in);
  const StridedLayout<K + 1> L = coalesce<K + 1>(in, table.strides);

  // Split the coalesced dims: kept (output stride != 0) and reduced; the innermost stays last.
  const int rank = L.sizes.rank();
  const bool inner_reduced = L.strides[K][rank - 1] == 0 && L.sizes[rank - 1] > 1;
  std::array<Shape, K + 1> kept_strides, red_strides;
  Shape kept_sizes, red_sizes;
  for (int d = 0; d < rank; ++d) {
    const bool reduced = L.strides[K][d] == 0 && L.sizes[d] > 1;
    if (d == rank - 1 && !inner_reduced) continue;  // the kept innermost dim is handled apart
    Shape& sizes = reduced ? red_sizes : kept_sizes;
    auto& strides = reduced ? red_strides : kept_strides;
    sizes.push_back(L.sizes[d]);
    for (int k = 0; k <= K; ++k) strides[k].push_back(L.strides[k][d]);
  }
  if (red_sizes.rank() == 0) {  // nothing to reduce: a plain copy of the values
    red_sizes.push_back(1);
    for (int k = 0; k <= K; ++k) red_strides[k].push_back(0);
  }
  if (kept_sizes.rank() == 0) {
    kept_sizes.push_back(1);
    for (int k = 0; k <= K; ++k) kept_strides[k].push_back(0);
  }
  StridedLayout<K + 1> kept{kept_sizes, kept_strides, kept_sizes.numel()};
  StridedLayout<K + 1> red{red_sizes, red_strides, red_sizes.numel()};
  const std::int64_t n_out = kept.numel;
  V* const out_base = out.data();

  auto leaf_state = [&](const std::array<std::int64_t, K + 1>& base, const auto& inc) {
    detail::RunState<K> s;
    for (int k = 0; k < K; ++k) {
      s.ptr[k] = table.base[k] + base[k] * table.elem_size[k];
      s.inc[k] = inc[k];
    }
    return s;
  };
  auto store = [&](std::int64_t off, C value) {
    const C v = scale == 1.0 ? value : static_cast<C>(value * static_cast<C>(scale));
    if constexpr (std::is_same_v<V, bool>) out_base[off] = v != C(0);
    else out_base[off] = static_cast<V>(v);
  };

  if (inner_reduced) {
    // Each output element folds its reduced elements (a flat range of `red`) into 4 packets.
    const std::int64_t n_red = red.numel;
    const std::int64_t chunks = n_red > 4 * detail::kReduceChunk ? (n_red + detail::kReduceChunk - 1) / detail::kReduceChunk : 1;
    std::vector<C> partial(static_cast<std::size_t>(n_out * chunks));
    auto fold = [&](std::int64_t task) {
      const std::int64_t o = task / chunks, c = task % chunks;
      std::array<std::int64_t, K + 1> base{};
      for_each_run<K + 1>(kept, o, o + 1, [&](const auto& off, std::int64_t, const auto&) { base = off; });
      Packet<C> acc[4] = {Packet<C>(R::template identity<C>()), Packet<C>(R::template identity<C>()),
                          Packet<C>(R::template identity<C>()), Packet<C>(R::template identity<C>())};
      std::int64_t slot = 0;
      const std::int64_t b = n_red * c / chunks, e = n_red * (c + 1) / chunks;
      for_each_run<K + 1>(red, b, e, [&](const auto& off, std::int64_t n, const auto& inc) {
        std::array<std::int64_t, K + 1> start;
        for (int k = 0; k <= K; ++k) start[k] = base[k] + off[k];
        const auto s = leaf_state(start, inc);
        for (std::int64_t j = 0; j < n; j += W, slot = (slot + 1) & 3) {
          const std::int64_t count = std::min(W, n - j);
          acc[slot] = R::combine(acc[slot], detail::mask_tail<R>(detail::packet_of<0, C>(expr, s, j, count), count));
        }
      });
      partial[task] = detail::horizontal<R, C>(R::combine(R::combine(acc[0], acc[1]), R::combine(acc[2], acc[3])));
    };
    parallel_for(0, n_out * chunks, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(1, n_red / chunks)),
                 [&](std::int64_t b, std::int64_t e) { for (auto t = b; t < e; ++t) fold(t); });
    for (std::int64_t o = 0; o < n_out; ++o) {
      C acc = partial[o * chunks];
      for (std::int64_t c = 1; c < chunks; ++c) acc = R::combine(acc, partial[o * chunks + c]);
      std::int64_t out_off = 0;
      for_each_run<K + 1>(kept, o, o + 1, [&](const auto& off, std::int64_t, const auto&) { out_off = off[K]; });
      store(out_off, acc);
    }
    return;
  }

  // The innermost dim is kept: each output row accumulates whole packets across the reduced
  // elements, in blocks of the row that stay in L1.
  const std::int64_t inner = L.sizes[rank - 1];
  std::array<std::int64_t, K + 1> inner_inc;
  for (int k = 0; k <= K; ++k) inner_inc[k] = L.strides[k][rank - 1];
  constexpr std::int64_t kBlock = 64 * W;
  const std::int64_t blocks = (inner + kBlock - 1) / kBlock;
  auto fold_block = [&](std::int64_t task) {
    const std::int64_t o = task / blocks, blk = task % blocks;
    const std::int64_t i0 = blk * kBlock, i1 = std::min(inner, i0 + kBlock);
    std::array<std::int64_t, K + 1> base{};
    for_each_run<K + 1>(kept, o, o + 1, [&](const auto& off, std::int64_t, const auto&) { base = off; });
    Packet<C> acc[64];
    const std::int64_t packets = (i1 - i0 + W - 1) / W;
    for (std::int64_t p = 0; p < packets; ++p) acc[p] = Packet<C>(R::template identity<C>());
    for_each_run<K + 1>(red, 0, red.numel, [&](const auto& off, std::int64_t n, const auto& inc) {
      for (std::int64_t t = 0; t < n; ++t) {
        std::array<std::int64_t, K + 1> start;
        for (int k = 0; k <= K; ++k) start[k] = base[k] + off[k] + t * inc[k] + i0 * inner_inc[k];
        const auto s = leaf_state(start, inner_inc);
        for (std::int64_t p = 0; p < packets; ++p) {
          const std::int64_t count = std::min(W, i1 - i0 - p * W);
          acc[p] = R::combine(acc[p], detail::packet_of<0, C>(expr, s, p * W, count));
        }
      }
    });
    for (std::int64_t p = 0; p < packets; ++p) {
      alignas(64) C tmp[W];
      acc[p].store_aligned(tmp);
      const std::int64_t count = std::min(W, i1 - i0 - p * W);
      for (std::int64_t i = 0; i < count; ++i) store(base[K] + (i0 + p * W + i) * inner_inc[K], tmp[i]);
    }
  };
  parallel_for(0, n_out * blocks, std::max<std::int64_t>(1, kElementwiseGrain / std::max<std::int64_t>(1, red.numel * kBlock)),
               [&](std::int64_t b, std::int64_t e) { for (auto t = b; t < e; ++t) fold_block(t); });
}

// Sums `expr` down to `shape` (the shape of an operand that was broadcast to expr's shape): the
// gradient of a broadcast. One pass; returns a new contiguous tensor.
template <class T, Expression E>
Tensor<T> sum_to_shape(const E& expr, const Shape& shape) {
  const Shape& in = expr.shape();
  if (in == shape) return Tensor<T>(expr);
  FIBER_CHECK(broadcast_shapes(shape, in, "sum_to_shape") == in, "sum_to_shape: ", shape,
              " does not broadcast to ", in);
  Shape kept = Shape::filled(in.rank(), 1);
  const int lead = in.rank() - shape.rank();
  for (int i = 0; i < shape.rank(); ++i) kept[lead + i] = shape[i];
  Tensor<T> out = Tensor<T>::empty(kept);
  reduce_into<reducers::Sum>(out, expr);
  return out.reshape(shape);
}

}  // namespace fiber
