#pragma once
// The elementwise operations: one struct per operation with its name, its forward on SIMD
// packets (xsimd batches) and its partial derivatives written as expressions over its operands.
// The derivative builders are templates whose calls all depend on their operands, so they are
// resolved by argument-dependent lookup when instantiated and can use the expression functions of
// fiber/expr/expression.hpp (exp, where, constant_like, ...) declared after this file.
#include <xsimd/xsimd.hpp>

#include "fiber/backend/cpu/gelu.hpp"
#include "fiber/backend/cpu/simd_math.hpp"

#include <cmath>
#include <type_traits>
#include <numbers>

namespace fiber::ops {

// Flags an operation can carry.
struct Elementwise {
  static constexpr bool predicate = false;       // result is 0/1, stored as bool
  static constexpr bool differentiable = true;   // has derivative builders
  static constexpr bool needs_float = false;     // undefined on integer packets
};
struct Predicate : Elementwise {
  static constexpr bool predicate = true;
  static constexpr bool differentiable = false;
};

namespace packet {
template <class V>
V one() { return V(typename V::value_type(1)); }
template <class V>
V zero() { return V(typename V::value_type(0)); }
template <class V, class M>
V from_mask(const M& m) { return xsimd::select(m, one<V>(), zero<V>()); }
// xsimd 8.1 compares `!=` with _CMP_NEQ_OQ, false for NaN; IEEE (and C++, and PyTorch) say
// NaN != x is true. So inequality is written as the negation of equality.
template <class V>
auto not_equal(const V& a, const V& b) { return !(a == b); }
// Non-zero, NaN included (NaN is truthy in C++).
template <class V>
auto truth(const V& v) { return not_equal(v, zero<V>()); }
}  // namespace packet

// ---- unary ----------------------------------------------------------------------------------
struct Neg : Elementwise {
  static constexpr const char* name = "neg";
  template <class V> static V apply(const V& x) { return -x; }
  template <class A> static auto d(const A& a) { return constant_like(a, -1.0); }
};
struct Abs : Elementwise {
  static constexpr const char* name = "abs";
  template <class V> static V apply(const V& x) { return xsimd::abs(x); }
  template <class A> static auto d(const A& a) { return sign(a); }
};
struct Sign : Elementwise {
  static constexpr const char* name = "sign";
  static constexpr bool differentiable = false;
  template <class V> static V apply(const V& x) {
    return packet::from_mask<V>(x > packet::zero<V>()) - packet::from_mask<V>(x < packet::zero<V>());
  }
};
struct Exp : Elementwise {
  static constexpr const char* name = "exp";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return cpu::simd_exp(x); }
  template <class A> static auto d(const A& a) { return exp(a); }
};
struct Log : Elementwise {
  static constexpr const char* name = "log";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return xsimd::log(x); }
  template <class A> static auto d(const A& a) { return reciprocal(a); }
};
struct Reciprocal : Elementwise {
  static constexpr const char* name = "reciprocal";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return packet::one<V>() / x; }
  template <class A> static auto d(const A& a) { return -square(reciprocal(a)); }
};
struct Square : Elementwise {
  static constexpr const char* name = "square";
  template <class V> static V apply(const V& x) { return x * x; }
  template <class A> static auto d(const A& a) { return 2.0 * a; }
};
struct Sqrt : Elementwise {
  static constexpr const char* name = "sqrt";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return xsimd::sqrt(x); }
  template <class A> static auto d(const A& a) { return 0.5 * rsqrt(a); }
};
struct Rsqrt : Elementwise {  // exact 1/sqrt, not the hardware estimate
  static constexpr const char* name = "rsqrt";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return packet::one<V>() / xsimd::sqrt(x); }
  template <class A> static auto d(const A& a) { return -0.5 * rsqrt(a) / a; }
};
struct Tanh : Elementwise {
  static constexpr const char* name = "tanh";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return cpu::simd_tanh(x); }
  template <class A> static auto d(const A& a) { return 1.0 - square(tanh(a)); }
};
struct Sigmoid : Elementwise {
  static constexpr const char* name = "sigmoid";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return packet::one<V>() / (packet::one<V>() + cpu::simd_exp(-x)); }
  template <class A> static auto d(const A& a) { return sigmoid(a) * (1.0 - sigmoid(a)); }
};
struct Erf : Elementwise {
  static constexpr const char* name = "erf";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return xsimd::erf(x); }
  template <class A> static auto d(const A& a) { return (2.0 / std::sqrt(std::numbers::pi)) * exp(-square(a)); }
};

// GELU, erf form (PyTorch's default): x/2 * (1 + erf(x/sqrt(2))); the formula is shared with the
// GEMM's GELU epilogues (backend/cpu/gelu.hpp).
struct Gelu : Elementwise {
  static constexpr const char* name = "gelu";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) { return cpu::gelu(x); }
  // d/dx = Phi(x) + x * phi(x)
  template <class A> static auto d(const A& a) {
    return 0.5 * (1.0 + erf(a * (std::numbers::sqrt2 / 2))) +
           a * ((0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2) * exp(-0.5 * square(a)));
  }
};
struct Relu : Elementwise {
  static constexpr const char* name = "relu";
  template <class V> static V apply(const V& x) { return xsimd::max(x, packet::zero<V>()); }
  template <class A> static auto d(const A& a) { return a > 0.0; }
};
struct LogicalNot : Predicate {
  static constexpr const char* name = "logical_not";
  template <class V> static V apply(const V& x) { return packet::from_mask<V>(x == packet::zero<V>()); }
};

// ---- binary ---------------------------------------------------------------------------------
struct Add : Elementwise {
  static constexpr const char* name = "add";
  template <class V> static V apply(const V& a, const V& b) { return a + b; }
  template <class A, class B> static auto d_a(const A& a, const B&) { return constant_like(a, 1.0); }
  template <class A, class B> static auto d_b(const A& a, const B&) { return constant_like(a, 1.0); }
};
struct Sub : Elementwise {
  static constexpr const char* name = "sub";
  template <class V> static V apply(const V& a, const V& b) { return a - b; }
  template <class A, class B> static auto d_a(const A& a, const B&) { return constant_like(a, 1.0); }
  template <class A, class B> static auto d_b(const A& a, const B&) { return constant_like(a, -1.0); }
};
struct Mul : Elementwise {
  static constexpr const char* name = "mul";
  template <class V> static V apply(const V& a, const V& b) { return a * b; }
  template <class A, class B> static auto d_a(const A&, const B& b) { return b; }
  template <class A, class B> static auto d_b(const A& a, const B&) { return a; }
};
struct Div : Elementwise {
  static constexpr const char* name = "div";
  template <class V> static V apply(const V& a, const V& b) { return a / b; }
  template <class A, class B> static auto d_a(const A&, const B& b) { return reciprocal(b); }
  template <class A, class B> static auto d_b(const A& a, const B& b) { return -a / square(b); }
};
struct Pow : Elementwise {
  static constexpr const char* name = "pow";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& a, const V& b) { return xsimd::pow(a, b); }
  template <class A, class B> static auto d_a(const A& a, const B& b) { return b * pow(a, b - 1.0); }
  template <class A, class B> static auto d_b(const A& a, const B& b) { return pow(a, b) * log(a); }
};
// Ties split the gradient evenly between the operands, as PyTorch does.
struct Maximum : Elementwise {
  static constexpr const char* name = "maximum";
  template <class V> static V apply(const V& a, const V& b) { return xsimd::max(a, b); }
  template <class A, class B> static auto d_a(const A& a, const B& b) { return where(a == b, 0.5, a > b); }
  template <class A, class B> static auto d_b(const A& a, const B& b) { return where(a == b, 0.5, b > a); }
};
struct Minimum : Elementwise {
  static constexpr const char* name = "minimum";
  template <class V> static V apply(const V& a, const V& b) { return xsimd::min(a, b); }
  template <class A, class B> static auto d_a(const A& a, const B& b) { return where(a == b, 0.5, a < b); }
  template <class A, class B> static auto d_b(const A& a, const B& b) { return where(a == b, 0.5, b < a); }
};

#define FIBER_PREDICATE(Name, str, expr)                                         \
  struct Name : Predicate {                                                      \
    static constexpr const char* name = str;                                     \
    template <class V> static V apply(const V& a, const V& b) { return packet::from_mask<V>(expr); } \
  };
FIBER_PREDICATE(Equal, "eq", a == b)
FIBER_PREDICATE(NotEqual, "ne", packet::not_equal(a, b))
FIBER_PREDICATE(Less, "lt", a < b)
FIBER_PREDICATE(LessEqual, "le", a <= b)
FIBER_PREDICATE(Greater, "gt", a > b)
FIBER_PREDICATE(GreaterEqual, "ge", a >= b)
FIBER_PREDICATE(LogicalAnd, "logical_and", packet::truth(a) && packet::truth(b))
FIBER_PREDICATE(LogicalOr, "logical_or", packet::truth(a) || packet::truth(b))
#undef FIBER_PREDICATE

// ---- ternary --------------------------------------------------------------------------------
struct Where : Elementwise {
  static constexpr const char* name = "where";
  template <class V> static V apply(const V& c, const V& a, const V& b) { return xsimd::select(packet::truth(c), a, b); }
  template <class C, class A, class B> static auto d_0(const C& c, const A&, const B&) { return zero_like(c); }
  template <class C, class A, class B> static auto d_1(const C& c, const A&, const B&) { return where(c, 1.0, 0.0); }
  template <class C, class A, class B> static auto d_2(const C& c, const A&, const B&) { return where(c, 0.0, 1.0); }
};
// clamp(x, lo, hi) = min(max(x, lo), hi); the gradient reaches x inside [lo, hi], including the ends.
struct Clamp : Elementwise {
  static constexpr const char* name = "clamp";
  template <class V> static V apply(const V& x, const V& lo, const V& hi) { return xsimd::min(xsimd::max(x, lo), hi); }
  template <class X, class L, class H> static auto d_0(const X& x, const L& lo, const H& hi) { return logical_and(x >= lo, x <= hi); }
  template <class X, class L, class H> static auto d_1(const X& x, const L& lo, const H& hi) { return logical_and(x < lo, lo <= hi); }
  template <class X, class L, class H> static auto d_2(const X& x, const L& lo, const H& hi) { return logical_or(x > hi, lo > hi); }
};

}  // namespace fiber::ops
