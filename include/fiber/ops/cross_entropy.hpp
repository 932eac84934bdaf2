#pragma once
// cross_entropy, as torch.nn.functional.cross_entropy, for tensors and Vars.
//
//   logits: [N, C], [N, C, d1, ...] or [C] (one sample); classes along axis 1 (axis 0 for [C]).
//   target: class indices, int64 of shape [N, d1, ...] ([] for one sample), each in [0, C) or
//           equal to ignore_index; or class probabilities, of the logits' shape and type (these
//           are differentiable too).
//
// With logp = log_softmax(logits) along the class axis, w the class weights (1 without), eps the
// label smoothing, for each position i with a class-index target t:
//   loss_i = (1 - eps) * w[t] * -logp[t] + eps / C * sum_c w[c] * -logp[c]    (0 where ignored)
// mean divides the sum by sum_i w[t_i] over the positions not ignored (NaN when that is 0, e.g.
// all ignored), exactly as PyTorch does for both terms. With probability targets p:
//   loss_i = -sum_c w[c] * p'[c] * logp[c],   p' = p * (1 - eps) + eps / C,
// mean divides by the number of positions (N * d1 * ...), and ignore_index must stay negative.
// A class-index target outside [0, C) that is not ignore_index is a fiber::Error naming it and
// its position.
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/ops/loss_reduction.hpp"
#include "fiber/ops/softmax.hpp"

namespace fiber {

template <class T>
struct CrossEntropyOptions {
  Tensor<T> weight{};                 // [C] per-class weights; undefined: all 1
  std::int64_t ignore_index = -100;   // class-index targets equal to it contribute nothing
  double label_smoothing = 0.0;       // in [0, 1]
  Reduction reduction = Reduction::mean;
};

namespace detail {

// The logits viewed as [n, c, s]: samples, classes, positions per sample (d1 * d2 * ...).
struct ClassLayout {
  std::int64_t n = 1, c = 1, s = 1;
  Shape per_position;  // the loss shape with reduction none: [N, d1, ...], or [] for one sample
  Shape as_3d() const { return {n, c, s}; }
};

inline ClassLayout class_layout(const Shape& logits) {
  FIBER_CHECK(logits.rank() >= 1, "cross_entropy: logits must be [C], [N, C] or [N, C, d1, ...], got shape ", logits);
  ClassLayout L;
  if (logits.rank() == 1) {
    L.c = logits[0];
  } else {
    L.n = logits[0];
    L.c = logits[1];
    L.per_position.push_back(L.n);
    for (int d = 2; d < logits.rank(); ++d) {
      L.s *= logits[d];
      L.per_position.push_back(logits[d]);
    }
  }
  FIBER_CHECK(L.c > 0, "cross_entropy: logits of shape ", logits, " have no classes");
  return L;
}

// Flat index i of `shape` as a multi-index "[i0, i1, ...]".
inline std::string position_in(const Shape& shape, std::int64_t i) {
  Shape idx = Shape::filled(shape.rank(), 0);
  for (int d = shape.rank() - 1; d >= 0; --d) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx.str();
}

// The class weights as [c] (all 1 when undefined), after checking them.
template <class T>
Tensor<T> class_weights(const Tensor<T>& weight, const ClassLayout& L, const Shape& logits) {
  if (!weight.defined()) return Tensor<T>::ones({L.c});
  FIBER_CHECK(weight.dim() == 1 && weight.size(0) == L.c, "cross_entropy: weight of shape ", weight.shape(), " for ",
              L.c, " classes (logits ", logits, "); expected [", L.c, "]");
  return weight.contiguous();
}

inline void check_cross_entropy_options(double label_smoothing, Reduction reduction) {
  FIBER_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing must be in [0, 1], got ",
              label_smoothing);
  FIBER_CHECK(reduction == Reduction::none || reduction == Reduction::mean || reduction == Reduction::sum,
              "cross_entropy: unknown reduction ", static_cast<int>(reduction));
}

// What the backward of cross_entropy with class-index targets needs.
template <class T>
struct IndexTargetState {
  ClassLayout L;
  Shape logits_shape;
  Tensor<T> logp;                  // [n, c, s]
  Tensor<std::int64_t> target;     // [n * s]
  Tensor<T> weight;                // [c]
  std::int64_t ignore_index = -100;
  double smoothing = 0;
  Reduction reduction = Reduction::mean;
  T denominator = 1;               // of the mean
};

template <class T>
std::pair<Tensor<T>, IndexTargetState<T>> cross_entropy_index(const Tensor<T>& logits, const Tensor<std::int64_t>& target,
                                                              const CrossEntropyOptions<T>& opt) {
  static_assert(std::is_floating_point_v<T>, "cross_entropy: needs floating-point logits (float or double)");
  IndexTargetState<T> S;
  S.L = class_layout(logits.shape());
  const ClassLayout& L = S.L;
  FIBER_CHECK(target.shape() == L.per_position, "cross_entropy: target of shape ", target.shape(),
              " for logits of shape ", logits.shape(), "; expected class indices of shape ", L.per_position,
              " or probabilities of shape ", logits.shape());
  check_cross_entropy_options(opt.label_smoothing, opt.reduction);
  S.logits_shape = logits.shape();
  S.weight = class_weights(opt.weight, L, logits.shape());
  S.ignore_index = opt.ignore_index;
  S.smoothing = opt.label_smoothing;
  S.reduction = opt.reduction;
  S.target = target.contiguous().reshape({L.n * L.s});
  const std::int64_t* t = S.target.data();
  const std::int64_t positions = L.n * L.s;
  for (std::int64_t i = 0; i < positions; ++i)
    FIBER_CHECK(t[i] == opt.ignore_index || (t[i] >= 0 && t[i] < L.c), "cross_entropy: target ", t[i],
                " at position ", position_in(L.per_position, i), " is out of range [0, ", L.c, ") (target shape ",
                target.shape(), ", ignore_index ", opt.ignore_index, ")");
  S.logp = log_softmax(logits.reshape(L.as_3d()), 1);

  Tensor<T> loss = Tensor<T>::empty({positions}), picked = Tensor<T>::empty({positions});
  const T* lp = S.logp.data();
  const T* w = S.weight.data();
  const T eps = static_cast<T>(opt.label_smoothing);
  T* out = loss.data();
  T* wt = picked.data();
  parallel_for(0, positions, std::max<std::int64_t>(1, cpu::kLineGrainElements / (eps > 0 ? L.c : 1)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t i = b; i < e; ++i) {
                   if (t[i] == opt.ignore_index) {
                     out[i] = wt[i] = T(0);
                     continue;
                   }
                   const T* row = lp + (i / L.s) * L.c * L.s + i % L.s;  // class k at row[k * s]
                   T l = -row[t[i] * L.s] * w[t[i]];
                   if (eps > 0) {
                     T smooth = 0;
                     for (std::int64_t k = 0; k < L.c; ++k) smooth -= w[k] * row[k * L.s];
                     l = (1 - eps) * l + eps / T(L.c) * smooth;
                   }
                   out[i] = l;
                   wt[i] = w[t[i]];
                 }
               });
  Tensor<T> value;
  switch (opt.reduction) {
    case Reduction::none: value = loss.reshape(L.per_position); break;
    case Reduction::sum: value = sum(loss); break;
    case Reduction::mean:
      S.denominator = sum(picked).item();
      value = Tensor<T>::scalar(sum(loss).item() / S.denominator);
      break;
  }
  return {value, S};
}

template <class T>
Tensor<T> cross_entropy_index_backward(const IndexTargetState<T>& S, const Tensor<T>& g) {
  const ClassLayout& L = S.L;
  const std::int64_t positions = L.n * L.s;
  const T eps = static_cast<T>(S.smoothing), C = static_cast<T>(L.c);
  const T* w = S.weight.data();
  T wsum = 0;
  for (std::int64_t k = 0; k < L.c; ++k) wsum += w[k];
  // Per position: gx = alpha * p - gamma * w - beta * onehot(t).
  Tensor<T> alpha = Tensor<T>::empty({L.n, 1, L.s}), gamma = Tensor<T>::empty({L.n, 1, L.s});
  std::vector<T> beta(positions);
  const Tensor<T> gc = g.contiguous();
  const T scale = S.reduction == Reduction::mean ? T(1) / S.denominator : T(1);
  const std::int64_t* t = S.target.data();
  for (std::int64_t i = 0; i < positions; ++i) {
    const T c = (S.reduction == Reduction::none ? gc.data()[i] : gc.data()[0]) * scale;
    if (t[i] == S.ignore_index) {
      alpha.data()[i] = gamma.data()[i] = beta[i] = T(0);
      continue;
    }
    const T wt = w[t[i]];
    alpha.data()[i] = c * ((1 - eps) * wt + eps / C * wsum);
    beta[i] = c * (1 - eps) * wt;
    gamma.data()[i] = c * eps / C;
  }
  Tensor<T> gx = eps > 0 ? Tensor<T>(alpha * exp(S.logp) - gamma * S.weight.reshape({1, L.c, 1}))
                         : Tensor<T>(alpha * exp(S.logp));
  T* out = gx.data();
  for (std::int64_t i = 0; i < positions; ++i)
    if (t[i] != S.ignore_index) out[(i / L.s) * L.c * L.s + t[i] * L.s + i % L.s] -= beta[i];
  return gx.reshape(S.logits_shape);
}

// What the backward of cross_entropy with probability targets needs.
template <class T>
struct ProbTargetState {
  ClassLayout L;
  Shape logits_shape;
  Tensor<T> logp;       // [n, c, s]
  Tensor<T> target;     // smoothed: p * (1 - eps) + eps / C, [n, c, s]
  Tensor<T> weight;     // [1, c, 1]
  double smoothing = 0;
  Reduction reduction = Reduction::mean;
};

template <class T>
std::pair<Tensor<T>, ProbTargetState<T>> cross_entropy_prob(const Tensor<T>& logits, const Tensor<T>& target,
                                                            const CrossEntropyOptions<T>& opt) {
  static_assert(std::is_floating_point_v<T>, "cross_entropy: needs floating-point logits (float or double)");
  ProbTargetState<T> S;
  S.L = class_layout(logits.shape());
  const ClassLayout& L = S.L;
  FIBER_CHECK(target.shape() == logits.shape(), "cross_entropy: probability target of shape ", target.shape(),
              " for logits of shape ", logits.shape(), "; expected the logits' shape (or class indices of shape ",
              L.per_position, ")");
  check_cross_entropy_options(opt.label_smoothing, opt.reduction);
  FIBER_CHECK(opt.ignore_index < 0, "cross_entropy: ignore_index ", opt.ignore_index,
              " is not supported with probability targets (logits ", logits.shape(), ")");
  S.logits_shape = logits.shape();
  S.weight = class_weights(opt.weight, L, logits.shape()).reshape({1, L.c, 1});
  S.smoothing = opt.label_smoothing;
  S.reduction = opt.reduction;
  S.logp = log_softmax(logits.reshape(L.as_3d()), 1);
  const Tensor<T> t3 = target.reshape(L.as_3d());
  const double eps = opt.label_smoothing;
  S.target = eps > 0 ? Tensor<T>(t3 * (1.0 - eps) + eps / double(L.c)) : t3;
  Tensor<T> loss = Tensor<T>::empty({L.n, 1, L.s});
  reduce_into<reducers::Sum>(loss, S.weight * S.target * S.logp, -1.0);
  Tensor<T> value;
  switch (opt.reduction) {
    case Reduction::none: value = loss.reshape(L.per_position); break;
    case Reduction::sum: value = sum(loss); break;
    case Reduction::mean: value = Tensor<T>(sum(loss) * (1.0 / double(L.n * L.s))); break;
  }
  return {value, S};
}

// The gradients for the logits and the target, each where `needs` asks.
template <class T>
std::vector<Tensor<T>> cross_entropy_prob_backward(const ProbTargetState<T>& S, const Tensor<T>& g, GradNeeds needs) {
  const ClassLayout& L = S.L;
  const double scale = S.reduction == Reduction::mean ? 1.0 / double(L.n * L.s) : 1.0;
  const Tensor<T> c = S.reduction == Reduction::none ? g.reshape({L.n, 1, L.s}) : Tensor<T>(g.reshape({1, 1, 1}) * scale);
  std::vector<Tensor<T>> grads(2);
  if (needs[0]) {
    Tensor<T> weighted_mass = Tensor<T>::empty({L.n, 1, L.s});  // sum_c w[c] p'[c]
    reduce_into<reducers::Sum>(weighted_mass, S.weight * S.target);
    grads[0] = Tensor<T>(c * (exp(S.logp) * weighted_mass - S.weight * S.target)).reshape(S.logits_shape);
  }
  if (needs[1]) grads[1] = Tensor<T>(c * (-(1.0 - S.smoothing)) * S.weight * S.logp).reshape(S.logits_shape);
  return grads;
}

}  // namespace detail

// ---- tensors ---------------------------------------------------------------------------------
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<std::int64_t>& target,
                        const std::type_identity_t<CrossEntropyOptions<T>>& options = {}) {
  return detail::cross_entropy_index(logits, target, options).first;
}
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::type_identity_t<Tensor<T>>& target_probabilities,
                        const std::type_identity_t<CrossEntropyOptions<T>>& options = {}) {
  return detail::cross_entropy_prob(logits, target_probabilities, options).first;
}

// ---- Vars ------------------------------------------------------------------------------------
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const Tensor<std::int64_t>& target,
                     const std::type_identity_t<CrossEntropyOptions<T>>& options = {}) {
  auto [value, state] = detail::cross_entropy_index(logits.value(), target, options);
  if (!needs_graph(logits)) return Var<T>(std::move(value));
  // The state's log-probabilities are its own; target and weight may be the caller's tensors.
  auto saved_target = save_for_backward(state.target);
  auto saved_weight = save_for_backward(state.weight);
  return record("cross_entropy", value, {&logits},
                [state = std::move(state), saved_target, saved_weight](const Tensor<T>& g, GradNeeds) {
                  saved_target.get(), saved_weight.get();  // the version checks
                  return std::vector<Tensor<T>>{detail::cross_entropy_index_backward(state, g)};
                });
}
// Probability targets: differentiable too (a plain tensor converts to a constant Var).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::type_identity_t<Var<T>>& target_probabilities,
                     const std::type_identity_t<CrossEntropyOptions<T>>& options = {}) {
  auto [value, state] = detail::cross_entropy_prob(logits.value(), target_probabilities.value(), options);
  if (!needs_graph(logits, target_probabilities)) return Var<T>(std::move(value));
  // The state's log-probabilities are its own; target and weight may be the caller's tensors.
  auto saved_target = save_for_backward(state.target);
  auto saved_weight = save_for_backward(state.weight);
  return record("cross_entropy", value, {&logits, &target_probabilities},
                [state = std::move(state), saved_target, saved_weight](const Tensor<T>& g, GradNeeds needs) {
                  saved_target.get(), saved_weight.get();  // the version checks
                  return detail::cross_entropy_prob_backward(state, g, needs);
                });
}

}  // namespace fiber
