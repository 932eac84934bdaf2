#pragma once
// log_sigmoid(x) = log(1 / (1 + exp(-x))), elementwise, computed stably as
// min(x, 0) - log1p(exp(-|x|)) (no overflow for any x, full precision for large |x|). An
// elementwise expression like exp or tanh: it fuses with its neighbours and, over Vars,
// differentiates to sigmoid(-x).
#include <xsimd/xsimd.hpp>

#include "fiber/backend/cpu/simd_math.hpp"
#include "fiber/expr/expression.hpp"

namespace fiber {

namespace ops {
struct LogSigmoid : Elementwise {
  static constexpr const char* name = "log_sigmoid";
  static constexpr bool needs_float = true;
  template <class V> static V apply(const V& x) {
    return xsimd::min(x, packet::zero<V>()) - xsimd::log1p(cpu::simd_exp(-xsimd::abs(x)));
  }
  template <class A> static auto d(const A& a) { return sigmoid(-a); }
};
}  // namespace ops

template <Operand A> requires SomeTensorOperand<A>
auto log_sigmoid(const A& a) { return make_unary<ops::LogSigmoid>(a); }

}  // namespace fiber
