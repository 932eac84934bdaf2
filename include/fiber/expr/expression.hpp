#pragma once
// Lazy elementwise expressions. `a * b + c`, `gelu(x + bias)` and the like build a small tree of
// nodes (Leaf, Constant, Unary, Binary, Ternary) whose shape is the NumPy broadcast of its
// operands; nothing is computed until the tree is assigned to a Tensor (fiber/expr/evaluate.hpp),
// which runs it in one vectorised, multi-threaded pass with no intermediate tensors.
//
// Nodes hold their operands by value (tensor handles, not data), so an expression kept in an
// `auto` variable stays valid. Element types: the computation runs in the promoted type of the
// tensor operands (bool < uint8 < int8 < int16 < int32 < int64 < float < double; scalars do not
// promote, as in PyTorch); comparisons and logical operations give bool, and arithmetic on bool
// operands alone computes in float.
#include <cstdint>
#include <type_traits>
#include <utility>

// tensor.hpp ends by including evaluate.hpp (Tensor::copy_ runs transposed copies through the
// evaluator). When this header is read first, that include must wait until the nodes below are
// declared: it is made at the end of this file instead.
#define FIBER_EXPRESSION_HPP_IN_PROGRESS
#include "fiber/core/shape.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/expr/ops.hpp"

namespace fiber {

// ---- type promotion --------------------------------------------------------------------------
namespace detail {
template <class T> constexpr int type_rank() {
  if constexpr (std::is_same_v<T, void>) return -1;
  else if constexpr (std::is_same_v<T, bool>) return 0;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return 1;
  else if constexpr (std::is_same_v<T, std::int8_t>) return 2;
  else if constexpr (std::is_same_v<T, std::int16_t>) return 3;
  else if constexpr (std::is_same_v<T, std::int32_t>) return 4;
  else if constexpr (std::is_same_v<T, std::int64_t>) return 5;
  else if constexpr (std::is_same_v<T, float>) return 6;
  else if constexpr (std::is_same_v<T, double>) return 7;
  else static_assert(sizeof(T) == 0, "unsupported element type in an expression");
}
}  // namespace detail

// The promoted type of two operand types; void (a scalar constant) never promotes.
template <class A, class B>
using promote_t = std::conditional_t<(detail::type_rank<A>() >= detail::type_rank<B>()), A, B>;

// The type arithmetic runs in: bool (or nothing) becomes float.
template <class T>
using arith_t = std::conditional_t<std::is_same_v<T, bool> || std::is_same_v<T, void>, float, T>;

// ---- nodes -----------------------------------------------------------------------------------
// A tensor operand.
template <class T>
struct Leaf : ExprBase {
  using operand_type = T;  // promoted over the tree's tensor operands
  static constexpr int leaves = 1;
  static constexpr bool has_vars = false;  // autograd's VarLeaf says true
  Tensor<T> tensor;

  explicit Leaf(Tensor<T> t) : tensor(std::move(t)) {
    FIBER_CHECK(tensor.defined(), "expression: an operand tensor is undefined");
    FIBER_CHECK(tensor.device().is_cpu(), "expression: operand on ", tensor.device(), " (CPU expressions only)");
  }
  const Shape& shape() const { return tensor.shape(); }
};

// A scalar operand, broadcast everywhere; converted to the computation type.
template <class S>
struct Constant : ExprBase {
  using operand_type = void;
  static constexpr int leaves = 0;
  static constexpr bool has_vars = false;
  S value;
  explicit Constant(S v) : value(v) {}
  Shape shape() const { return {}; }
};

// Marks "no derivative" in differentiated expressions; never evaluated.
struct ZeroExpr : ExprBase {
  using operand_type = void;
  static constexpr int leaves = 0;
  static constexpr bool has_vars = false;
  Shape shape() const { return {}; }
};

template <class Op, class A>
struct Unary : ExprBase {
  using op = Op;
  using operand_type = typename A::operand_type;
  static constexpr int leaves = A::leaves;
  static constexpr bool has_vars = A::has_vars;
  A a;
  Shape shape_;
  explicit Unary(A x) : a(std::move(x)), shape_(a.shape()) {}
  const Shape& shape() const { return shape_; }
};

template <class Op, class A, class B>
struct Binary : ExprBase {
  using op = Op;
  using operand_type = promote_t<typename A::operand_type, typename B::operand_type>;
  static constexpr int leaves = A::leaves + B::leaves;
  static constexpr bool has_vars = A::has_vars || B::has_vars;
  A a;
  B b;
  Shape shape_;
  Binary(A x, B y) : a(std::move(x)), b(std::move(y)), shape_(broadcast_shapes(a.shape(), b.shape(), Op::name)) {}
  const Shape& shape() const { return shape_; }
};

template <class Op, class A, class B, class C>
struct Ternary : ExprBase {
  using op = Op;
  using operand_type =
      promote_t<promote_t<typename A::operand_type, typename B::operand_type>, typename C::operand_type>;
  static constexpr int leaves = A::leaves + B::leaves + C::leaves;
  static constexpr bool has_vars = A::has_vars || B::has_vars || C::has_vars;
  A a;
  B b;
  C c;
  Shape shape_;
  Ternary(A x, B y, C z)
      : a(std::move(x)), b(std::move(y)), c(std::move(z)),
        shape_(broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), Op::name), c.shape(), Op::name)) {}
  const Shape& shape() const { return shape_; }
};

// ---- result types ----------------------------------------------------------------------------
template <class E>
struct is_predicate : std::false_type {};
template <class Op, class... X>
struct is_predicate<Unary<Op, X...>> : std::bool_constant<Op::predicate> {};
template <class Op, class... X>
struct is_predicate<Binary<Op, X...>> : std::bool_constant<Op::predicate> {};
template <class Op, class... X>
struct is_predicate<Ternary<Op, X...>> : std::bool_constant<Op::predicate> {};

// The type an expression computes in, and the element type of its result.
template <class E>
using compute_t = arith_t<typename E::operand_type>;
template <class E>
using result_t = std::conditional_t<is_predicate<E>::value, bool, compute_t<E>>;

// ---- operands --------------------------------------------------------------------------------
// What may stand in an expression: tensors, expressions, scalars; autograd adds Var<T> by
// specialising this trait and overloading as_expr.
template <class X>
struct is_expr_operand : std::bool_constant<Expression<X> || std::is_arithmetic_v<X>> {};
template <class T>
struct is_expr_operand<Tensor<T>> : std::true_type {};

template <class X>
concept Operand = is_expr_operand<std::remove_cvref_t<X>>::value;
// At least one operand must be a tensor or an expression.
template <class... X>
concept SomeTensorOperand = (Operand<X> && ...) && (!std::is_arithmetic_v<std::remove_cvref_t<X>> || ...);

template <class T>
Leaf<T> as_expr(const Tensor<T>& t) { return Leaf<T>(t); }
template <Expression E>
const E& as_expr(const E& e) { return e; }
template <class S>
  requires std::is_arithmetic_v<S>
auto as_expr(S s) {
  if constexpr (std::is_same_v<S, bool>) return Constant<bool>(s);
  else if constexpr (std::is_integral_v<S>) return Constant<std::int64_t>(s);
  else return Constant<double>(static_cast<double>(s));
}
template <class X>
using expr_t = std::remove_cvref_t<decltype(as_expr(std::declval<const X&>()))>;
// An operand without Vars (a tensor, a scalar, an expression of those).
template <class X>
concept PlainOperand = SomeTensorOperand<X> && !std::remove_cvref_t<decltype(as_expr(std::declval<const X&>()))>::has_vars;

// Scalar and no-derivative markers for derivative formulas (see fiber/expr/ops.hpp).
template <class E>
Constant<double> constant_like(const E&, double v) { return Constant<double>(v); }
template <class E>
ZeroExpr zero_like(const E&) { return {}; }

// ---- builders --------------------------------------------------------------------------------
template <class Op, class A>
  requires SomeTensorOperand<A>
auto make_unary(const A& a) {
  using E = expr_t<A>;
  static_assert(!Op::needs_float || !std::is_integral_v<compute_t<E>>,
                "this operation needs a floating-point operand; convert with .to<float>() first");
  return Unary<Op, E>(as_expr(a));
}
template <class Op, class A, class B>
  requires SomeTensorOperand<A, B>
auto make_binary(const A& a, const B& b) {
  return Binary<Op, expr_t<A>, expr_t<B>>(as_expr(a), as_expr(b));
}
template <class Op, class A, class B, class C>
  requires SomeTensorOperand<A, B, C>
auto make_ternary(const A& a, const B& b, const C& c) {
  return Ternary<Op, expr_t<A>, expr_t<B>, expr_t<C>>(as_expr(a), as_expr(b), as_expr(c));
}

#define FIBER_UNARY_FUNCTION(fn, Op) \
  template <Operand A> requires SomeTensorOperand<A> auto fn(const A& a) { return make_unary<ops::Op>(a); }
FIBER_UNARY_FUNCTION(abs, Abs)
FIBER_UNARY_FUNCTION(sign, Sign)
FIBER_UNARY_FUNCTION(exp, Exp)
FIBER_UNARY_FUNCTION(log, Log)
FIBER_UNARY_FUNCTION(reciprocal, Reciprocal)
FIBER_UNARY_FUNCTION(square, Square)
FIBER_UNARY_FUNCTION(sqrt, Sqrt)
FIBER_UNARY_FUNCTION(rsqrt, Rsqrt)
FIBER_UNARY_FUNCTION(tanh, Tanh)
FIBER_UNARY_FUNCTION(sigmoid, Sigmoid)
FIBER_UNARY_FUNCTION(erf, Erf)
FIBER_UNARY_FUNCTION(gelu, Gelu)
FIBER_UNARY_FUNCTION(relu, Relu)
FIBER_UNARY_FUNCTION(logical_not, LogicalNot)
#undef FIBER_UNARY_FUNCTION

#define FIBER_BINARY_FUNCTION(fn, Op)                                              \
  template <Operand A, Operand B> requires SomeTensorOperand<A, B>                 \
  auto fn(const A& a, const B& b) { return make_binary<ops::Op>(a, b); }
FIBER_BINARY_FUNCTION(pow, Pow)
FIBER_BINARY_FUNCTION(maximum, Maximum)
FIBER_BINARY_FUNCTION(minimum, Minimum)
FIBER_BINARY_FUNCTION(eq, Equal)
FIBER_BINARY_FUNCTION(ne, NotEqual)
FIBER_BINARY_FUNCTION(lt, Less)
FIBER_BINARY_FUNCTION(le, LessEqual)
FIBER_BINARY_FUNCTION(gt, Greater)
FIBER_BINARY_FUNCTION(ge, GreaterEqual)
FIBER_BINARY_FUNCTION(logical_and, LogicalAnd)
FIBER_BINARY_FUNCTION(logical_or, LogicalOr)
#undef FIBER_BINARY_FUNCTION

#define FIBER_BINARY_OPERATOR(sym, Op)                                             \
  template <Operand A, Operand B> requires SomeTensorOperand<A, B>                 \
  auto operator sym(const A& a, const B& b) { return make_binary<ops::Op>(a, b); }
FIBER_BINARY_OPERATOR(+, Add)
FIBER_BINARY_OPERATOR(-, Sub)
FIBER_BINARY_OPERATOR(*, Mul)
FIBER_BINARY_OPERATOR(/, Div)
FIBER_BINARY_OPERATOR(==, Equal)
FIBER_BINARY_OPERATOR(!=, NotEqual)
FIBER_BINARY_OPERATOR(<, Less)
FIBER_BINARY_OPERATOR(<=, LessEqual)
FIBER_BINARY_OPERATOR(>, Greater)
FIBER_BINARY_OPERATOR(>=, GreaterEqual)
FIBER_BINARY_OPERATOR(&&, LogicalAnd)
FIBER_BINARY_OPERATOR(||, LogicalOr)
#undef FIBER_BINARY_OPERATOR

template <Operand A> requires SomeTensorOperand<A>
auto operator-(const A& a) { return make_unary<ops::Neg>(a); }
template <Operand A> requires SomeTensorOperand<A>
auto operator!(const A& a) { return make_unary<ops::LogicalNot>(a); }
template <Operand A> requires SomeTensorOperand<A>
auto neg(const A& a) { return make_unary<ops::Neg>(a); }

// where(cond, a, b): a where cond is non-zero, else b.
template <Operand C, Operand A, Operand B> requires SomeTensorOperand<C, A, B>
auto where(const C& cond, const A& a, const B& b) { return make_ternary<ops::Where>(cond, a, b); }
// clamp(x, lo, hi) with scalar or tensor bounds.
template <Operand X, Operand L, Operand H> requires SomeTensorOperand<X>
auto clamp(const X& x, const L& lo, const H& hi) { return make_ternary<ops::Clamp>(x, lo, hi); }
// x with the elements where mask is non-zero replaced by value.
template <Operand X, Operand M, Operand V> requires SomeTensorOperand<X, M>
auto masked_fill(const X& x, const M& mask, const V& value) { return make_ternary<ops::Where>(mask, value, x); }

}  // namespace fiber

#undef FIBER_EXPRESSION_HPP_IN_PROGRESS
#include "fiber/expr/evaluate.hpp"
