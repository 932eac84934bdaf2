#pragma once
// The backward graph. Each recorded operation is a Node that owns what its backward needs (a
// closure, or a fused expression) and an Edge per input saying where that input's gradient goes:
// to the node that produced it, or into the grad of a leaf that requires it. Nodes do not hold
// the values of their inputs unless the backward needs them.
#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include "fiber/core/tensor.hpp"
#include "fiber/expr/evaluate.hpp"

namespace fiber {

template <class T>
struct VarImpl;

class NodeBase {
 public:
  virtual ~NodeBase() = default;
  virtual const char* name() const = 0;
  // Consumes the accumulated output gradient (if any reached this node) and sends the inputs'
  // gradients along the edges.
  virtual void apply() = 0;
  // Drops an accumulated output gradient without using it (after a failed backward).
  virtual void clear_gradient() = 0;
  const std::vector<std::shared_ptr<NodeBase>>& next() const { return next_; }

 protected:
  std::vector<std::shared_ptr<NodeBase>> next_;  // producers of the inputs, for ordering
};

template <class T>
class Node : public NodeBase {
 public:
  // Adds a gradient for this node's output. Never in place: a tensor handed over may be shared.
  void add_gradient(const Tensor<T>& g) { gradient_ = gradient_.defined() ? Tensor<T>(gradient_ + g) : g; }
  void clear_gradient() override { gradient_ = {}; }

 protected:
  Tensor<T> take_gradient() { return std::exchange(gradient_, Tensor<T>()); }

 private:
  Tensor<T> gradient_;
};

// The state behind a Var: its value, and either the node that produced it or, for a leaf, its
// accumulated gradient.
template <class T>
struct VarImpl {
  Tensor<T> value;
  Tensor<T> grad;
  bool requires_grad = false;
  std::shared_ptr<Node<T>> grad_fn;

  // A leaf's grad is always its own contiguous tensor (never a view of a gradient that other
  // nodes may hold), so optimisers can update it in place.
  void accumulate(const Tensor<T>& g) { grad = grad.defined() ? Tensor<T>(grad + g) : g.clone(); }
};

// Where one input's gradient goes.
template <class T>
struct Edge {
  std::shared_ptr<Node<T>> node;      // the input was computed: its producer
  std::shared_ptr<VarImpl<T>> leaf;   // the input is a leaf that requires grad
  Shape shape;                        // the input's shape, to check gradients against

  static Edge to(const std::shared_ptr<VarImpl<T>>& input) {
    Edge e;
    if (!input) return e;
    e.shape = input->value.shape();
    if (input->grad_fn) e.node = input->grad_fn;
    else if (input->requires_grad) e.leaf = input;
    return e;
  }
  bool active() const { return node || leaf; }
  void send(const Tensor<T>& g, const char* op) const {
    FIBER_CHECK(g.shape() == shape, "backward of ", op, ": gradient of shape ", g.shape(), " for an input of shape ",
                shape);
    if (node) node->add_gradient(g);
    else if (leaf) leaf->accumulate(g);
  }
};

// Which inputs of a node need a gradient (so a backward can skip the others).
class GradNeeds {
 public:
  explicit GradNeeds(std::uint64_t bits = 0) : bits_(bits) {}
  bool operator[](std::size_t i) const { return i < 64 && ((bits_ >> i) & 1u); }

 private:
  std::uint64_t bits_;
};

template <class T>
std::vector<std::shared_ptr<NodeBase>> producers_of(const std::vector<Edge<T>>& edges) {
  std::vector<std::shared_ptr<NodeBase>> out;
  for (const auto& e : edges)
    if (e.node) out.push_back(e.node);
  return out;
}

// Runs backward from `root`: orders the graph so that a node runs after every node that uses its
// output, hands `gradient` to the root and applies the nodes in that order.
inline void run_backward(const std::shared_ptr<NodeBase>& root) {
  std::vector<NodeBase*> order;  // post-order: inputs before users
  std::unordered_set<NodeBase*> seen;
  std::vector<std::pair<NodeBase*, std::size_t>> stack{{root.get(), 0}};
  seen.insert(root.get());
  while (!stack.empty()) {
    auto& [node, child] = stack.back();
    if (child < node->next().size()) {
      NodeBase* c = node->next()[child++].get();
      if (seen.insert(c).second) stack.emplace_back(c, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  try {
    for (auto it = order.rbegin(); it != order.rend(); ++it) (*it)->apply();
  } catch (...) {
    for (NodeBase* n : order) n->clear_gradient();
    throw;
  }
}

}  // namespace fiber
