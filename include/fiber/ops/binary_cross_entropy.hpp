#pragma once
// binary_cross_entropy_with_logits, as torch.nn.functional.binary_cross_entropy_with_logits, for
// tensors and Vars. Per element, with x the logit, t the target (soft labels in [0, 1] allowed),
// pw the pos_weight and w the weight (both optional, each broadcast to the logits' shape):
//   loss = w * ((1 - t) * x - (1 + (pw - 1) * t) * log_sigmoid(x))
// which is -w * (pw * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))) written without
// overflow for any x (PyTorch's formula). mean averages over all elements.
//
// One fused elementwise pass; over Vars it is one fused node whose derivatives are
//   d/dx = w * ((1 - t) - (1 + (pw - 1) * t) * sigmoid(-x)),  d/dt = w * (-x - (pw - 1) * log_sigmoid(x)).
// The logits and the targets are differentiable; weight and pos_weight are constants.
#include <type_traits>

#include "fiber/autograd/var.hpp"
#include "fiber/ops/log_sigmoid.hpp"
#include "fiber/ops/loss_reduction.hpp"

namespace fiber {

template <class T>
struct BinaryCrossEntropyOptions {
  Tensor<T> weight{};     // broadcast to the logits' shape; undefined: 1
  Tensor<T> pos_weight{};  // broadcast to the logits' shape (usually [C]); undefined: 1
  Reduction reduction = Reduction::mean;
};

namespace detail {

inline void check_bce(const Shape& logits, const Shape& targets, const Shape* weight, const Shape* pos_weight,
                      Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  FIBER_CHECK(targets == logits, op, ": targets of shape ", targets, " for logits of shape ", logits,
              "; they must have the same shape");
  for (auto [name, s] : {std::pair{"weight", weight}, std::pair{"pos_weight", pos_weight}}) {
    if (!s) continue;
    bool fits = s->rank() <= logits.rank();
    for (int i = 0; fits && i < s->rank(); ++i) {
      const std::int64_t have = (*s)[s->rank() - 1 - i];
      fits = have == 1 || have == logits[logits.rank() - 1 - i];
    }
    FIBER_CHECK(fits, op, ": ", name, " of shape ", *s, " does not broadcast to the logits' shape ", logits);
  }
  FIBER_CHECK(reduction == Reduction::none || reduction == Reduction::mean || reduction == Reduction::sum, op,
              ": unknown reduction ", static_cast<int>(reduction));
}

// The per-element loss as R (Tensor<T> or Var<T>) from x and t (tensors or Vars).
template <class R, class T, class X, class Y>
R bce_elements(const X& x, const Y& t, const BinaryCrossEntropyOptions<T>& opt) {
  const Tensor<T>& w = opt.weight;
  const Tensor<T>& pw = opt.pos_weight;
  const Shape ws = w.defined() ? w.shape() : Shape{}, ps = pw.defined() ? pw.shape() : Shape{};
  check_bce(x.shape(), t.shape(), w.defined() ? &ws : nullptr, pw.defined() ? &ps : nullptr, opt.reduction);
  // The four combinations of weight / pos_weight present, each one fused expression.
  if (w.defined() && pw.defined()) return R(w * ((1.0 - t) * x - (1.0 + (pw - 1.0) * t) * log_sigmoid(x)));
  if (w.defined()) return R(w * ((1.0 - t) * x - log_sigmoid(x)));
  if (pw.defined()) return R((1.0 - t) * x - (1.0 + (pw - 1.0) * t) * log_sigmoid(x));
  return R((1.0 - t) * x - log_sigmoid(x));
}

}  // namespace detail

template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const std::type_identity_t<Tensor<T>>& targets,
                                           const std::type_identity_t<BinaryCrossEntropyOptions<T>>& options = {}) {
  static_assert(std::is_floating_point_v<T>, "binary_cross_entropy_with_logits: needs float or double logits");
  return detail::reduce_loss(detail::bce_elements<Tensor<T>>(logits, targets, options), options.reduction);
}

// targets may be a Var (soft labels that get a gradient) or a plain tensor.
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const std::type_identity_t<Var<T>>& targets,
                                        const std::type_identity_t<BinaryCrossEntropyOptions<T>>& options = {}) {
  static_assert(std::is_floating_point_v<T>, "binary_cross_entropy_with_logits: needs float or double logits");
  return detail::reduce_loss(detail::bce_elements<Var<T>>(logits, targets, options), options.reduction);
}

}  // namespace fiber
