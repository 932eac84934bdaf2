#pragma once
// Evaluation of expressions: one pass over the output, vectorised with xsimd, split over the
// thread pool. Each tensor operand (leaf) gets its broadcast strides over the output shape; the
// dimensions are coalesced; every run of the innermost dimension is computed packet by packet.
// When an operand is read transposed (contiguous along the dimension before the run), the output
// is computed in tiles instead, that operand's tile transposed into a buffer first.
// Every packet, the partial one at the end of a run included, goes through the same code (one
// out-of-line function), so the compiler makes the same choices (FMA contraction among them) for
// all of them, and an element's value never depends on where the work was split or which path
// computed it: results are identical for any thread count.
#include <array>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "fiber/backend/cpu/transpose_block.hpp"
#include "fiber/core/strided_loop.hpp"
#include "fiber/expr/expression.hpp"

namespace fiber {

namespace detail {

template <class C>
using Packet = xsimd::batch<C>;
template <class C>
inline constexpr std::int64_t packet_size = static_cast<std::int64_t>(Packet<C>::size);

// Per-run state: each leaf's pointer at the run start and its step along the run.
template <int K>
struct RunState {
  std::array<const char*, (K > 0 ? K : 1)> ptr;
  std::array<std::int64_t, (K > 0 ? K : 1)> inc;
};

// The recursive walks call each other for child nodes, whose types live in namespace fiber (so
// argument-dependent lookup does not search fiber::detail): declare them all first.
template <int I, class C, int K, class T> Packet<C> packet_of(const Leaf<T>&, const RunState<K>&, std::int64_t, std::int64_t);
template <int I, class C, int K, class S> Packet<C> packet_of(const Constant<S>&, const RunState<K>&, std::int64_t, std::int64_t);
template <int I, class C, int K, class Op, class A>
Packet<C> packet_of(const Unary<Op, A>&, const RunState<K>&, std::int64_t, std::int64_t);
template <int I, class C, int K, class Op, class A, class B>
Packet<C> packet_of(const Binary<Op, A, B>&, const RunState<K>&, std::int64_t, std::int64_t);
template <int I, class C, int K, class Op, class A, class B, class D>
Packet<C> packet_of(const Ternary<Op, A, B, D>&, const RunState<K>&, std::int64_t, std::int64_t);

// Elements j..j+W of the run; only the first `count` lanes are read (the rest are zero).
template <int I, class C, int K, class T>
Packet<C> packet_of(const Leaf<T>&, const RunState<K>& s, std::int64_t j, std::int64_t count) {
  const T* p = reinterpret_cast<const T*>(s.ptr[I]);
  const std::int64_t inc = s.inc[I];
  if (inc == 0) return Packet<C>(static_cast<C>(p[0]));
  if constexpr (std::is_same_v<T, C>) {
    if (inc == 1 && count == packet_size<C>) return Packet<C>::load_unaligned(p + j);
  }
  alignas(64) C tmp[packet_size<C>];
  for (std::int64_t i = 0; i < count; ++i) tmp[i] = static_cast<C>(p[(j + i) * inc]);
  for (std::int64_t i = count; i < packet_size<C>; ++i) tmp[i] = C(0);
  return Packet<C>::load_aligned(tmp);
}
template <int I, class C, int K, class S>
Packet<C> packet_of(const Constant<S>& c, const RunState<K>&, std::int64_t, std::int64_t) {
  return Packet<C>(static_cast<C>(c.value));
}
template <int I, class C, int K, class Op, class A>
Packet<C> packet_of(const Unary<Op, A>& e, const RunState<K>& s, std::int64_t j, std::int64_t n) {
  return Op::apply(packet_of<I, C>(e.a, s, j, n));
}
template <int I, class C, int K, class Op, class A, class B>
Packet<C> packet_of(const Binary<Op, A, B>& e, const RunState<K>& s, std::int64_t j, std::int64_t n) {
  return Op::apply(packet_of<I, C>(e.a, s, j, n), packet_of<I + A::leaves, C>(e.b, s, j, n));
}
template <int I, class C, int K, class Op, class A, class B, class D>
Packet<C> packet_of(const Ternary<Op, A, B, D>& e, const RunState<K>& s, std::int64_t j, std::int64_t n) {
  return Op::apply(packet_of<I, C>(e.a, s, j, n), packet_of<I + A::leaves, C>(e.b, s, j, n),
                   packet_of<I + A::leaves + B::leaves, C>(e.c, s, j, n));
}

// Leaf i's base pointer, element size and strides broadcast over `shape`, in tree order.
template <int K>
struct LeafTable {
  std::array<const char*, (K > 0 ? K : 1)> base{};
  std::array<int, (K > 0 ? K : 1)> elem_size{};
  std::array<Shape, K + 1> strides;  // the last entry is reserved for the output
  std::array<const void*, (K > 0 ? K : 1)> storage{};
  std::array<int, (K > 0 ? K : 1)> type_rank{};  // detail::type_rank of the leaf's element type
};

inline Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& target) {
  Shape out = Shape::filled(target.rank(), 0);
  const int lead = target.rank() - shape.rank();
  for (int i = 0; i < shape.rank(); ++i)
    if (shape[i] != 1) out[lead + i] = strides[i];
  return out;
}

template <int K>
struct LeafTable;
template <int I, int K, class T> void collect_leaves(const Leaf<T>&, const Shape&, LeafTable<K>&);
template <int I, int K, class S> void collect_leaves(const Constant<S>&, const Shape&, LeafTable<K>&);
template <int I, int K, class Op, class A> void collect_leaves(const Unary<Op, A>&, const Shape&, LeafTable<K>&);
template <int I, int K, class Op, class A, class B>
void collect_leaves(const Binary<Op, A, B>&, const Shape&, LeafTable<K>&);
template <int I, int K, class Op, class A, class B, class D>
void collect_leaves(const Ternary<Op, A, B, D>&, const Shape&, LeafTable<K>&);

template <int I, int K, class T>
void collect_leaves(const Leaf<T>& leaf, const Shape& target, LeafTable<K>& table) {
  table.base[I] = reinterpret_cast<const char*>(leaf.tensor.data());
  table.elem_size[I] = sizeof(T);
  table.strides[I] = broadcast_strides(leaf.tensor.shape(), leaf.tensor.strides(), target);
  table.storage[I] = leaf.tensor.storage().get();
  table.type_rank[I] = type_rank<T>();
}
template <int I, int K, class S>
void collect_leaves(const Constant<S>&, const Shape&, LeafTable<K>&) {}
template <int I, int K, class Op, class A>
void collect_leaves(const Unary<Op, A>& e, const Shape& target, LeafTable<K>& table) {
  collect_leaves<I>(e.a, target, table);
}
template <int I, int K, class Op, class A, class B>
void collect_leaves(const Binary<Op, A, B>& e, const Shape& target, LeafTable<K>& table) {
  collect_leaves<I>(e.a, target, table);
  collect_leaves<I + A::leaves>(e.b, target, table);
}
template <int I, int K, class Op, class A, class B, class D>
void collect_leaves(const Ternary<Op, A, B, D>& e, const Shape& target, LeafTable<K>& table) {
  collect_leaves<I>(e.a, target, table);
  collect_leaves<I + A::leaves>(e.b, target, table);
  collect_leaves<I + A::leaves + B::leaves>(e.c, target, table);
}

template <class V, class C>
void store_packet(V* out, std::int64_t inc, const Packet<C>& p, std::int64_t n) {
  if constexpr (std::is_same_v<V, C>) {
    if (inc == 1 && n == packet_size<C>) {
      p.store_unaligned(out);
      return;
    }
  }
  alignas(64) C tmp[packet_size<C>];
  p.store_aligned(tmp);
  for (std::int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<V, bool>) out[i * inc] = tmp[i] != C(0);
    else out[i * inc] = static_cast<V>(tmp[i]);
  }
}

// True when writing `out` while reading `table`'s leaves could read an element already written:
// a leaf shares the output's storage with a different layout.
template <int K, class V>
bool output_overlaps_leaf(const Tensor<V>& out, const LeafTable<K>& table) {
  const Shape out_strides = out.strides();
  for (int k = 0; k < K; ++k) {
    if (table.storage[k] != out.storage().get()) continue;
    if (table.base[k] != reinterpret_cast<const char*>(out.data()) || table.elem_size[k] != int(sizeof(V)) ||
        !(table.strides[k] == out_strides))
      return true;
  }
  return false;
}

// Computes the n elements of one run into o (step out_inc), packet by packet. Out of line, so
// that every run and every tile row executes the same compiled code (the same FMA contractions),
// whichever path reaches it: an element's value does not depend on how it was scheduled.
// Flattened: everything it calls is inlined into it. GCC's own limits otherwise left parts of
// larger trees (where's condition, GELU's erf) as calls that spill every packet to the stack:
// where(x > 0, x, 0.01 * x) ran 2x slower, the 7-operation chain of bench_elementwise 1.2x.
template <class V, class C, int K, class E>
[[gnu::noinline, gnu::flatten]] void compute_run(const E& expr, const RunState<K>& s, V* o, std::int64_t out_inc, std::int64_t n) {
  constexpr std::int64_t W = packet_size<C>;
  for (std::int64_t j = 0; j < n; j += W) {
    const std::int64_t count = std::min(W, n - j);
    store_packet<V, C>(o + j * out_inc, out_inc, packet_of<0, C>(expr, s, j, count), count);
  }
}

// Operands read across their contiguous dimension (a transposed or permuted view: stride > 1
// along the run, stride 1 along the dimension before it) would cost a cache line per element
// read run by run. Instead the output is cut into [tile_rows, tile_cols] tiles of those two
// dimensions; each such operand's tile is transposed into a buffer (in registers where the target
// has a block transpose), and the tile's rows are computed from there.
template <class C>
inline constexpr std::int64_t tile_rows = cpu::detail::transpose_block_size<C> > 0 ? cpu::detail::transpose_block_size<C> : 8;
inline constexpr std::int64_t tile_cols = 64;

// Runs the tiled evaluation when it applies (float or double computation, an operand of that
// type read transposed, the output contiguous along the run); false when it does not.
template <class V, class C, int K, class E>
bool evaluate_tiled(const E& expr, const LeafTable<K>& table, const StridedLayout<K + 1>& L, V* out_base) {
  if constexpr (!std::is_floating_point_v<C> || K == 0) {
    return false;
  } else {
    constexpr std::int64_t TD = tile_rows<C>, TR = tile_cols;
    const int rank = L.sizes.rank(), r = rank - 1;
    if (rank < 2 || L.strides[K][r] != 1) return false;
    const std::int64_t R = L.sizes[r], D = L.sizes[r - 1];
    if (R < TD || D < TD) return false;
    std::array<bool, K> tiled{};
    bool any = false;
    for (int k = 0; k < K; ++k) {
      tiled[k] = table.type_rank[k] == type_rank<C>() && L.strides[k][r - 1] == 1 && L.strides[k][r] > 1;
      any = any || tiled[k];
    }
    if (!any) return false;
    const std::int64_t strips = (D + TD - 1) / TD;  // per index of the outer dimensions
    const std::int64_t items = L.numel / (R * D) * strips;
    parallel_for(0, items, std::max<std::int64_t>(1, kElementwiseGrain / (TD * R)), [&](std::int64_t b, std::int64_t e) {
      struct alignas(64) Tile {
        C v[TD * TR];
      };
      std::array<Tile, K> buf;
      for (std::int64_t item = b; item < e; ++item) {
        const std::int64_t d0 = item % strips * TD, td = std::min(TD, D - d0);
        // Element offsets of the strip's first row, per operand and for the output (index K).
        std::array<std::int64_t, K + 1> base = offsets_at<K + 1>(L, item / strips, r - 1);
        for (int k = 0; k <= K; ++k) base[k] += d0 * L.strides[k][r - 1];
        for (std::int64_t c0 = 0; c0 < R; c0 += TR) {
          const std::int64_t tr = std::min(TR, R - c0);
          for (int k = 0; k < K; ++k)
            if (tiled[k])
              cpu::detail::transpose(reinterpret_cast<const C*>(table.base[k]) + base[k] + c0 * L.strides[k][r],
                                     L.strides[k][r], tr, td, buf[k].v, TR);
          for (std::int64_t i = 0; i < td; ++i) {
            RunState<K> s;
            for (int k = 0; k < K; ++k) {
              if (tiled[k]) {
                s.ptr[k] = reinterpret_cast<const char*>(buf[k].v + i * TR);
                s.inc[k] = 1;
              } else {
                s.ptr[k] = table.base[k] + (base[k] + i * L.strides[k][r - 1] + c0 * L.strides[k][r]) * table.elem_size[k];
                s.inc[k] = L.strides[k][r];
              }
            }
            compute_run<V, C>(expr, s, out_base + base[K] + i * L.strides[K][r - 1] + c0, 1, tr);
          }
        }
      }
    });
    return true;
  }
}

}  // namespace detail

// Evaluates `expr` into `out`; expr's shape must broadcast to out's shape.
template <class V, Expression E>
void evaluate_into(const Tensor<V>& out, const E& expr) {
  using C = compute_t<E>;
  constexpr int K = E::leaves;
  static_assert(!std::is_same_v<E, ZeroExpr>, "ZeroExpr is a marker and cannot be evaluated");
  FIBER_CHECK(out.defined(), "evaluate: output tensor is undefined");
  FIBER_CHECK(broadcast_shapes(expr.shape(), out.shape(), "assign") == out.shape(), "assign: expression of shape ",
              expr.shape(), " does not broadcast to the output shape ", out.shape());
  if (out.numel() == 0) return;
  detail::LeafTable<K> table;
  detail::collect_leaves<0>(expr, out.shape(), table);
  if (detail::output_overlaps_leaf(out, table)) {
    const Tensor<V> fresh = Tensor<V>::empty(out.shape());  // evaluate into fresh memory first
    evaluate_into(fresh, expr);
    out.copy_(fresh);  // counts the write
    return;
  }
  out.bump_version();  // an in-place write (one relaxed atomic beside the pass itself)
  table.strides[K] = out.strides();
  StridedLayout<K + 1> layout = coalesce<K + 1>(out.shape(), table.strides);
  V* const out_base = out.data();
  if (detail::evaluate_tiled<V, C>(expr, table, layout, out_base)) return;
  parallel_runs<K + 1>(layout, kElementwiseGrain, [&](const auto& off, std::int64_t n, const auto& inc) {
    detail::RunState<K> s;
    for (int k = 0; k < K; ++k) {
      s.ptr[k] = table.base[k] + off[k] * table.elem_size[k];
      s.inc[k] = inc[k];
    }
    detail::compute_run<V, C>(expr, s, out_base + off[K], inc[K], n);
  });
}

namespace detail {
template <class T>
void copy_through_evaluator(const Tensor<T>& dst, const Tensor<T>& src) {
  evaluate_into(dst, Leaf<T>(src));
}
}  // namespace detail

// Evaluates an expression into a new contiguous tensor of its result type.
template <Expression E>
Tensor<result_t<E>> eval(const E& expr) {
  return Tensor<result_t<E>>(expr);
}
template <class T>
Tensor<T> eval(const Tensor<T>& t) {
  return t;
}

}  // namespace fiber
