#pragma once
// Fused elementwise autograd. An expression over Vars (a * b + c, gelu(x + bias), ...) becomes
// one node. Its backward differentiates the expression at compile time: for the k-th operand,
//   d expr / d leaf_k = product of the operations' partial derivatives along the path to leaf k
// (each operation's partials are written in fiber/expr/ops.hpp as expressions), so the gradient
// g * (d expr / d leaf_k) is again one fused pass, summed over the dimensions the operand was
// broadcast along. The node keeps the operands' values (as plain tensor leaves) and nothing else,
// stamps the versions of those its derivatives read, and frees them once its backward has run.
#include <array>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "fiber/autograd/node.hpp"
#include "fiber/expr/evaluate.hpp"
#include "fiber/expr/reduce.hpp"

namespace fiber {

template <class T>
class Var;

// A Var operand in an expression: evaluates like its value; remembers the Var for the graph.
template <class T>
struct VarLeaf : Leaf<T> {
  static constexpr bool has_vars = true;
  std::shared_ptr<VarImpl<T>> var;
  explicit VarLeaf(const Var<T>& v) : Leaf<T>(v.value()), var(v.impl()) {}
};

template <class T>
struct is_expr_operand<Var<T>> : std::true_type {};
template <class T>
VarLeaf<T> as_expr(const Var<T>& v) {
  return VarLeaf<T>(v);
}

namespace autodiff {

// The derivative of a leaf with respect to itself.
struct One {};

// The recursive walks below call each other for child nodes, whose types live in namespace
// fiber (so argument-dependent lookup does not search here): declare them all first.
template <int K, class T> auto diff(const Leaf<T>&);
template <int K, class Op, class A> auto diff(const Unary<Op, A>&);
template <int K, class Op, class A, class B> auto diff(const Binary<Op, A, B>&);
template <int K, class Op, class A, class B, class C> auto diff(const Ternary<Op, A, B, C>&);
template <class T> Leaf<T> strip(const Leaf<T>&);
template <class S> Constant<S> strip(const Constant<S>&);
template <class Op, class A> auto strip(const Unary<Op, A>&);
template <class Op, class A, class B> auto strip(const Binary<Op, A, B>&);
template <class Op, class A, class B, class C> auto strip(const Ternary<Op, A, B, C>&);
template <int I, class T, std::size_t N, class U> void collect_edges(const Leaf<U>&, std::array<Edge<T>, N>&);
template <int I, class T, std::size_t N, class U> void collect_edges(const VarLeaf<U>&, std::array<Edge<T>, N>&);
template <int I, class T, std::size_t N, class S> void collect_edges(const Constant<S>&, std::array<Edge<T>, N>&);
template <int I, class T, std::size_t N, class Op, class A>
void collect_edges(const Unary<Op, A>&, std::array<Edge<T>, N>&);
template <int I, class T, std::size_t N, class Op, class A, class B>
void collect_edges(const Binary<Op, A, B>&, std::array<Edge<T>, N>&);
template <int I, class T, std::size_t N, class Op, class A, class B, class C>
void collect_edges(const Ternary<Op, A, B, C>&, std::array<Edge<T>, N>&);

template <class D, class Inner>
auto chain(const D& d, const Inner& inner) {
  if constexpr (std::is_same_v<D, ZeroExpr> || std::is_same_v<Inner, ZeroExpr>) return ZeroExpr{};
  else if constexpr (std::is_same_v<Inner, One>) return d;
  else return d * inner;
}

// d expr / d (leaf K), leaves counted left to right.
template <int K, class T>
auto diff(const Leaf<T>&) {
  static_assert(K == 0);
  return One{};
}
template <int K, class Op, class A>
auto diff(const Unary<Op, A>& e) {
  if constexpr (!Op::differentiable) return ZeroExpr{};
  else return chain(Op::d(e.a), diff<K>(e.a));
}
template <int K, class Op, class A, class B>
auto diff(const Binary<Op, A, B>& e) {
  if constexpr (!Op::differentiable) return ZeroExpr{};
  else if constexpr (K < A::leaves) return chain(Op::d_a(e.a, e.b), diff<K>(e.a));
  else return chain(Op::d_b(e.a, e.b), diff<K - A::leaves>(e.b));
}
template <int K, class Op, class A, class B, class C>
auto diff(const Ternary<Op, A, B, C>& e) {
  if constexpr (!Op::differentiable) return ZeroExpr{};
  else if constexpr (K < A::leaves) return chain(Op::d_0(e.a, e.b, e.c), diff<K>(e.a));
  else if constexpr (K < A::leaves + B::leaves) return chain(Op::d_1(e.a, e.b, e.c), diff<K - A::leaves>(e.b));
  else return chain(Op::d_2(e.a, e.b, e.c), diff<K - A::leaves - B::leaves>(e.c));
}

// The expression with every VarLeaf replaced by a plain Leaf of its value.
template <class T>
Leaf<T> strip(const Leaf<T>& l) {
  return Leaf<T>(l.tensor);
}
template <class S>
Constant<S> strip(const Constant<S>& c) {
  return c;
}
template <class Op, class A>
auto strip(const Unary<Op, A>& e) {
  return Unary<Op, decltype(strip(e.a))>(strip(e.a));
}
template <class Op, class A, class B>
auto strip(const Binary<Op, A, B>& e) {
  return Binary<Op, decltype(strip(e.a)), decltype(strip(e.b))>(strip(e.a), strip(e.b));
}
template <class Op, class A, class B, class C>
auto strip(const Ternary<Op, A, B, C>& e) {
  return Ternary<Op, decltype(strip(e.a)), decltype(strip(e.b)), decltype(strip(e.c))>(strip(e.a), strip(e.b), strip(e.c));
}

// One edge per leaf, in leaf order; plain tensor leaves get an inactive edge.
template <int I, class T, std::size_t N, class U>
void collect_edges(const Leaf<U>& l, std::array<Edge<T>, N>& edges) {
  edges[I].shape = l.tensor.shape();
}
template <int I, class T, std::size_t N, class U>
void collect_edges(const VarLeaf<U>& l, std::array<Edge<T>, N>& edges) {
  static_assert(std::is_same_v<U, T>, "an expression may only mix Vars of the result's element type");
  edges[I] = Edge<T>::to(l.var);
}
template <int I, class T, std::size_t N, class S>
void collect_edges(const Constant<S>&, std::array<Edge<T>, N>&) {}
template <int I, class T, std::size_t N, class Op, class A>
void collect_edges(const Unary<Op, A>& e, std::array<Edge<T>, N>& edges) {
  collect_edges<I>(e.a, edges);
}
template <int I, class T, std::size_t N, class Op, class A, class B>
void collect_edges(const Binary<Op, A, B>& e, std::array<Edge<T>, N>& edges) {
  collect_edges<I>(e.a, edges);
  collect_edges<I + A::leaves>(e.b, edges);
}
template <int I, class T, std::size_t N, class Op, class A, class B, class C>
void collect_edges(const Ternary<Op, A, B, C>& e, std::array<Edge<T>, N>& edges) {
  collect_edges<I>(e.a, edges);
  collect_edges<I + A::leaves>(e.b, edges);
  collect_edges<I + A::leaves + B::leaves>(e.c, edges);
}

// The tensors an expression reads, with their versions when the node was recorded: the fused
// node's saved tensors (fiber/autograd/saved_tensor.hpp). The node's expression keeps them alive.
struct SavedStamp {
  const Storage* storage;
  std::uint64_t version;
  Shape shape;
};
template <class U> void stamp_leaves(const Leaf<U>&, std::vector<SavedStamp>&);
template <class S> void stamp_leaves(const Constant<S>&, std::vector<SavedStamp>&);
inline void stamp_leaves(const ZeroExpr&, std::vector<SavedStamp>&);
template <class Op, class A> void stamp_leaves(const Unary<Op, A>&, std::vector<SavedStamp>&);
template <class Op, class A, class B> void stamp_leaves(const Binary<Op, A, B>&, std::vector<SavedStamp>&);
template <class Op, class A, class B, class C> void stamp_leaves(const Ternary<Op, A, B, C>&, std::vector<SavedStamp>&);
template <class U>
void stamp_leaves(const Leaf<U>& l, std::vector<SavedStamp>& out) {
  if (l.tensor.defined()) out.push_back({l.tensor.storage().get(), l.tensor.version(), l.tensor.shape()});
}
template <class S>
void stamp_leaves(const Constant<S>&, std::vector<SavedStamp>&) {}
inline void stamp_leaves(const ZeroExpr&, std::vector<SavedStamp>&) {}
template <class Op, class A>
void stamp_leaves(const Unary<Op, A>& e, std::vector<SavedStamp>& out) {
  stamp_leaves(e.a, out);
}
template <class Op, class A, class B>
void stamp_leaves(const Binary<Op, A, B>& e, std::vector<SavedStamp>& out) {
  stamp_leaves(e.a, out);
  stamp_leaves(e.b, out);
}
template <class Op, class A, class B, class C>
void stamp_leaves(const Ternary<Op, A, B, C>& e, std::vector<SavedStamp>& out) {
  stamp_leaves(e.a, out);
  stamp_leaves(e.b, out);
  stamp_leaves(e.c, out);
}

template <class T, class E>
class FusedNode final : public Node<T> {
 public:
  static constexpr int N = E::leaves;
  FusedNode(E expr, std::array<Edge<T>, N> edges) : expr_(std::move(expr)), edges_(std::move(edges)) {
    for (const auto& e : edges_)
      if (e.node) this->next_.push_back(e.node);
    stamp_each(std::make_integer_sequence<int, N>{});
  }
  const char* name() const override { return "fused elementwise"; }
  void apply() override {
    Tensor<T> g = this->take_gradient();
    if (!g.defined()) return;
    FIBER_CHECK(expr_.has_value(), "backward of ", name(), ": its saved tensors were freed by an earlier backward");
    BackwardScope scope(name());
    for (const SavedStamp& s : stamps_) detail::check_saved_version(s.version, s.storage->version(), s.shape);
    backward_each(g, std::make_integer_sequence<int, N>{});
  }

 protected:
  void free_saved() override {
    expr_.reset();
    stamps_.clear();
    stamps_.shrink_to_fit();
  }

 private:
  // Stamps the tensors that the active operands' derivatives read: an operand the backward never
  // reads (b in a + b) may be written in place without making the gradient wrong.
  template <int... K>
  void stamp_each(std::integer_sequence<int, K...>) {
    (stamp_one<K>(), ...);
  }
  template <int K>
  void stamp_one() {
    if (!edges_[K].active()) return;
    using D = decltype(diff<K>(*expr_));
    if constexpr (!std::is_same_v<D, ZeroExpr> && !std::is_same_v<D, One>) stamp_leaves(diff<K>(*expr_), stamps_);
  }
  template <int... K>
  void backward_each(const Tensor<T>& g, std::integer_sequence<int, K...>) {
    (backward_one<K>(g), ...);
  }
  template <int K>
  void backward_one(const Tensor<T>& g) {
    const Edge<T>& edge = edges_[K];
    if (!edge.active()) return;
    auto d = diff<K>(*expr_);
    using D = decltype(d);
    if constexpr (std::is_same_v<D, ZeroExpr>) {
      return;
    } else if constexpr (std::is_same_v<D, One>) {
      edge.send(sum_to_shape<T>(Leaf<T>(g), edge.shape), name());
    } else {
      edge.send(sum_to_shape<T>(Leaf<T>(g) * d, edge.shape), name());
    }
  }

  std::optional<E> expr_;  // the expression over the operands' values (plain tensor leaves)
  std::array<Edge<T>, N> edges_;
  std::vector<SavedStamp> stamps_;
};

}  // namespace autodiff

namespace detail {
template <class T, Expression E>
Var<T> record_fused(const E& expr) {
  Tensor<T> value = Tensor<T>::empty(expr.shape());
  evaluate_into(value, expr);
  if constexpr (!E::has_vars) {
    return Var<T>(std::move(value));
  } else {
    if (!fiber::grad_enabled()) return Var<T>(std::move(value));  // NoGrad: no edges, no node
    constexpr int N = E::leaves;
    std::array<Edge<T>, N> edges;
    autodiff::collect_edges<0>(expr, edges);
    bool any = false;
    for (const auto& e : edges) any = any || e.active();
    if (!any) return Var<T>(std::move(value));
    auto plain = autodiff::strip(expr);
    auto node = std::make_shared<autodiff::FusedNode<T, decltype(plain)>>(std::move(plain), std::move(edges));
    return Var<T>::from_node(std::move(value), std::move(node));
  }
}
}  // namespace detail

}  // namespace fiber
