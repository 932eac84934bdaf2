#pragma once
// Var<T>: a differentiable variable, a tensor value with the means to get its gradient.
//
//   Var<double> w(randn<double>({3, 2}), /*requires_grad=*/true);
//   Var<double> y = tanh(x * w + 1.0);     // one fused node for the whole chain
//   Var<double> loss = sum(y);
//   loss.backward();                        // w.grad() now holds d loss / d w
//
// Elementwise arithmetic on Vars builds lazy expressions exactly as on tensors; assigning one to
// a Var evaluates it in one pass and records a single node whose backward is again one fused pass
// per input (fiber/autograd/fused.hpp). Other operations (matmul, softmax, views, ...) record a
// node with a closure that keeps only what their backward needs. Gradients of leaves accumulate
// across backward calls until zero_grad().
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "fiber/autograd/grad_mode.hpp"
#include "fiber/autograd/node.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/expr/reduce.hpp"

namespace fiber {

template <class T>
class Var;

namespace detail {
// Records a Var computed from `value` (already evaluated); defined in fiber/autograd/fused.hpp.
template <class T, Expression E>
Var<T> record_fused(const E& expr);
}  // namespace detail

template <class T>
class Var {
 public:
  using value_type = T;

  Var() = default;
  // A leaf holding `value`.
  Var(Tensor<T> value, bool requires_grad = false) : impl_(std::make_shared<VarImpl<T>>()) {  // NOLINT
    FIBER_CHECK(value.defined(), "Var: the value tensor is undefined");
    FIBER_CHECK(!requires_grad || std::is_floating_point_v<T>, "Var: only floating-point values can require grad");
    impl_->value = std::move(value);
    impl_->requires_grad = requires_grad;
  }
  // Evaluates an elementwise expression of Vars and tensors, recording one fused node.
  template <Expression E>
  Var(const E& expr) : Var(detail::record_fused<T>(expr)) {}  // NOLINT: implicit on purpose

  // A trainable leaf: requires_grad = true.
  static Var parameter(Tensor<T> value) { return Var(std::move(value), true); }

  // A computed Var: its value and the node that produced it.
  static Var from_node(Tensor<T> value, std::shared_ptr<Node<T>> node) {
    Var v;
    v.impl_ = std::make_shared<VarImpl<T>>();
    v.impl_->value = std::move(value);
    v.impl_->requires_grad = true;
    v.impl_->grad_fn = std::move(node);
    return v;
  }

  bool defined() const { return impl_ != nullptr; }
  const Tensor<T>& value() const { return checked().value; }
  // The accumulated gradient of a leaf (undefined until a backward reaches it).
  const Tensor<T>& grad() const { return checked().grad; }
  bool requires_grad() const { return checked().requires_grad; }
  bool is_leaf() const { return !checked().grad_fn; }
  const std::shared_ptr<Node<T>>& grad_fn() const { return checked().grad_fn; }
  const std::shared_ptr<VarImpl<T>>& impl() const { return impl_; }

  const Shape& shape() const { return value().shape(); }
  int dim() const { return value().dim(); }
  std::int64_t size(int axis) const { return value().size(axis); }
  std::int64_t numel() const { return value().numel(); }

  void set_requires_grad(bool on) {
    FIBER_CHECK(is_leaf(), "set_requires_grad: only leaves can change requires_grad");
    FIBER_CHECK(!on || std::is_floating_point_v<T>, "Var: only floating-point values can require grad");
    checked().requires_grad = on;
  }
  void zero_grad() const { checked().grad = {}; }
  // Replaces a leaf's gradient (optimisers and gradient clipping use it).
  void set_grad(Tensor<T> g) const {
    FIBER_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient of shape ", g.shape(), " for a Var of shape ",
                shape());
    checked().grad = std::move(g);
  }
  // The same value, cut from the graph.
  Var detach() const { return Var(value(), false); }

  // Backpropagates from this Var, which must hold one element (a loss). The graph's saved tensors
  // are freed as the backward runs through it; with retain_graph they are kept, so backward can
  // run through the same graph again.
  void backward(bool retain_graph = false) const {
    FIBER_CHECK(numel() == 1, "backward: the output has shape ", shape(),
                "; pass a gradient of that shape for a non-scalar output");
    backward(Tensor<T>::ones(shape()), retain_graph);
  }
  // Backpropagates `gradient` (same shape as this Var).
  void backward(const Tensor<T>& gradient, bool retain_graph = false) const {
    FIBER_CHECK(gradient.shape() == shape(), "backward: gradient of shape ", gradient.shape(), " for an output of shape ",
                shape());
    VarImpl<T>& self = checked();
    if (!self.grad_fn) {
      FIBER_CHECK(self.requires_grad, "backward: this Var does not require grad and has no graph");
      self.accumulate(gradient);
      return;
    }
    FIBER_CHECK(!self.grad_fn->released(), "backward of ", self.grad_fn->name(),
                ": the graph was already run through by an earlier backward, which freed its saved tensors; pass "
                "retain_graph = true to that backward to run backward through the graph again");
    self.grad_fn->add_gradient(gradient);
    run_backward(self.grad_fn, retain_graph);
  }

  // ---- views (the gradient flows back through them) --------------------------------------
  Var reshape(const Shape& s) const;
  Var view(const Shape& s) const;
  Var flatten(int start = 0, int end = -1) const;
  Var permute(std::initializer_list<int> order) const;
  Var permute(std::span<const int> order) const;
  Var transpose(int a, int b) const;
  Var t() const;
  Var narrow(int axis, std::int64_t start, std::int64_t length) const;
  Var slice(int axis, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Var select(int axis, std::int64_t index) const;
  Var expand(const Shape& s) const;
  Var squeeze(int axis) const;
  Var squeeze() const;
  Var unsqueeze(int axis) const;
  Var contiguous() const;

 private:
  VarImpl<T>& checked() const {
    FIBER_CHECK(impl_, "Var: used while undefined (default-constructed)");
    return *impl_;
  }

  std::shared_ptr<VarImpl<T>> impl_;
};

// True when an operation over these inputs records a node: recording is on (no NoGrad scope) and
// some input requires grad. Every op checks it before it builds its backward closure or saves a
// tensor, so under NoGrad an op allocates only its result:
//   Tensor<T> out = forward(x.value(), w.value());
//   if (!needs_graph(x, w)) return Var<T>(std::move(out));
//   return record("op", out, {&x, &w}, [xs = save_for_backward(x.value())](...) { ... });
// Undefined Vars (an absent bias) count as constants.
template <class T>
bool requires_grad_of(const Var<T>& v) {
  return v.defined() && v.requires_grad();
}
template <class T, class... Rest>
  requires(std::is_same_v<Rest, Var<T>> && ...)
bool needs_graph(const Var<T>& first, const Rest&... rest) {
  return grad_enabled() && (requires_grad_of(first) || (requires_grad_of(rest) || ...));
}
template <class T>
bool needs_graph(std::span<const Var<T>> inputs) {
  if (!grad_enabled()) return false;
  for (const Var<T>& in : inputs)
    if (requires_grad_of(in)) return true;
  return false;
}

// A node whose backward is a closure:
//   backward(const Tensor<T>& grad_out, GradNeeds needs) -> std::vector<Tensor<T>>
// returning one gradient per input (undefined where not needed). The closure keeps what the
// backward needs (tensors through save_for_backward); it is destroyed, and with it what it saved,
// once the backward has run.
template <class T, class Backward>
class FunctionNode final : public Node<T> {
 public:
  FunctionNode(const char* name, std::vector<Edge<T>> edges, Backward backward)
      : name_(name), edges_(std::move(edges)), backward_(std::move(backward)), needs_(edges_.size()) {
    this->next_ = producers_of(edges_);
    for (std::size_t i = 0; i < edges_.size(); ++i)
      if (edges_[i].active()) needs_.set(i);
  }
  const char* name() const override { return name_; }
  void apply() override {
    Tensor<T> g = this->take_gradient();
    if (!g.defined()) return;
    FIBER_CHECK(backward_.has_value(), "backward of ", name_, ": its saved tensors were freed by an earlier backward");
    BackwardScope scope(name_);  // names this op in a saved tensor's version error
    std::vector<Tensor<T>> grads = (*backward_)(g, needs_);
    FIBER_CHECK(grads.size() == edges_.size(), "backward of ", name_, ": ", grads.size(), " gradients for ",
                edges_.size(), " inputs");
    for (std::size_t i = 0; i < edges_.size(); ++i)
      if (edges_[i].active() && grads[i].defined()) edges_[i].send(grads[i], name_);
  }

 protected:
  void free_saved() override { backward_.reset(); }

 private:
  const char* name_;
  std::vector<Edge<T>> edges_;
  std::optional<Backward> backward_;
  GradNeeds needs_;
};

// Makes the Var for `value` computed by operation `name` from `inputs`, recording a node whose
// backward is `backward`. Ops call it after needs_graph() said yes (so that under NoGrad they never
// build the closure); it still returns a plain Var when no input requires grad.
template <class T, class Backward>
Var<T> record(const char* name, Tensor<T> value, std::initializer_list<const Var<T>*> inputs, Backward&& backward) {
  bool any = false;
  if (grad_enabled())
    for (const Var<T>* in : inputs) any = any || requires_grad_of(*in);
  if (!any) return Var<T>(std::move(value));
  std::vector<Edge<T>> edges;
  edges.reserve(inputs.size());
  for (const Var<T>* in : inputs) edges.push_back(Edge<T>::to(in->impl()));
  auto node = std::make_shared<FunctionNode<T, std::decay_t<Backward>>>(name, std::move(edges),
                                                                        std::forward<Backward>(backward));
  return Var<T>::from_node(std::move(value), std::move(node));
}

// The same for a variable number of inputs.
template <class T, class Backward>
Var<T> record(const char* name, Tensor<T> value, std::span<const Var<T>> inputs, Backward&& backward) {
  if (!needs_graph(inputs)) return Var<T>(std::move(value));
  std::vector<Edge<T>> edges;
  edges.reserve(inputs.size());
  for (const Var<T>& in : inputs) edges.push_back(Edge<T>::to(in.impl()));
  auto node = std::make_shared<FunctionNode<T, std::decay_t<Backward>>>(name, std::move(edges),
                                                                        std::forward<Backward>(backward));
  return Var<T>::from_node(std::move(value), std::move(node));
}

// ---- views ---------------------------------------------------------------------------------
// They save shapes, never tensors: a view's backward does not read values.
template <class T>
Var<T> Var<T>::reshape(const Shape& s) const {
  if (!needs_graph(*this)) return Var(value().reshape(s));
  return record("reshape", value().reshape(s), {this},
                [in = shape()](const Tensor<T>& g, GradNeeds) { return std::vector<Tensor<T>>{g.reshape(in)}; });
}
template <class T>
Var<T> Var<T>::view(const Shape& s) const {
  if (!needs_graph(*this)) return Var(value().view(s));
  return record("view", value().view(s), {this},
                [in = shape()](const Tensor<T>& g, GradNeeds) { return std::vector<Tensor<T>>{g.reshape(in)}; });
}
template <class T>
Var<T> Var<T>::flatten(int start, int end) const {
  return reshape(value().flatten(start, end).shape());
}
template <class T>
Var<T> Var<T>::permute(std::initializer_list<int> order) const {
  return permute(std::span<const int>(order.begin(), order.size()));
}
template <class T>
Var<T> Var<T>::permute(std::span<const int> order) const {
  Tensor<T> out = value().permute(order);
  if (!needs_graph(*this)) return Var(std::move(out));
  std::vector<int> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) inverse[shape().axis(order[i])] = static_cast<int>(i);
  return record("permute", out, {this}, [inverse](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{g.permute(std::span<const int>(inverse))};
  });
}
template <class T>
Var<T> Var<T>::transpose(int a, int b) const {
  if (!needs_graph(*this)) return Var(value().transpose(a, b));
  return record("transpose", value().transpose(a, b), {this},
                [a, b](const Tensor<T>& g, GradNeeds) { return std::vector<Tensor<T>>{g.transpose(a, b)}; });
}
template <class T>
Var<T> Var<T>::t() const {
  FIBER_CHECK(dim() == 2, "t: expects a 2-D Var, got shape ", shape());
  return transpose(0, 1);
}
namespace detail {
// The gradient of a view that picks some elements: zeros with g written into the same view.
template <class T, class Pick>
Tensor<T> scatter_into_zeros(const Shape& in, const Tensor<T>& g, Pick pick) {
  Tensor<T> z = Tensor<T>::zeros(in);
  pick(z).copy_(g);
  return z;
}
}  // namespace detail
template <class T>
Var<T> Var<T>::narrow(int axis, std::int64_t start, std::int64_t length) const {
  if (!needs_graph(*this)) return Var(value().narrow(axis, start, length));
  return record("narrow", value().narrow(axis, start, length), {this},
                [in = shape(), axis, start, length](const Tensor<T>& g, GradNeeds) {
                  return std::vector<Tensor<T>>{detail::scatter_into_zeros(
                      in, g, [&](const Tensor<T>& z) { return z.narrow(axis, start, length); })};
                });
}
template <class T>
Var<T> Var<T>::slice(int axis, std::int64_t start, std::int64_t end, std::int64_t step) const {
  if (!needs_graph(*this)) return Var(value().slice(axis, start, end, step));
  return record("slice", value().slice(axis, start, end, step), {this},
                [in = shape(), axis, start, end, step](const Tensor<T>& g, GradNeeds) {
                  return std::vector<Tensor<T>>{detail::scatter_into_zeros(
                      in, g, [&](const Tensor<T>& z) { return z.slice(axis, start, end, step); })};
                });
}
template <class T>
Var<T> Var<T>::select(int axis, std::int64_t index) const {
  if (!needs_graph(*this)) return Var(value().select(axis, index));
  return record("select", value().select(axis, index), {this}, [in = shape(), axis, index](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{
        detail::scatter_into_zeros(in, g, [&](const Tensor<T>& z) { return z.select(axis, index); })};
  });
}
template <class T>
Var<T> Var<T>::expand(const Shape& s) const {
  if (!needs_graph(*this)) return Var(value().expand(s));
  return record("expand", value().expand(s), {this}, [in = shape()](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{sum_to_shape<T>(as_expr(g), in)};
  });
}
template <class T>
Var<T> Var<T>::squeeze(int axis) const {
  return reshape(value().squeeze(axis).shape());
}
template <class T>
Var<T> Var<T>::squeeze() const {
  return reshape(value().squeeze().shape());
}
template <class T>
Var<T> Var<T>::unsqueeze(int axis) const {
  return reshape(value().unsqueeze(axis).shape());
}
template <class T>
Var<T> Var<T>::contiguous() const {
  if (!needs_graph(*this)) return Var(value().contiguous());
  return record("contiguous", value().contiguous(), {this},
                [](const Tensor<T>& g, GradNeeds) { return std::vector<Tensor<T>>{g}; });
}

}  // namespace fiber

#include "fiber/autograd/fused.hpp"
