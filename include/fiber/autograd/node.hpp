#pragma once
// The backward graph. Each recorded operation is a Node that owns what its backward needs (a
// closure, or a fused expression) and an Edge per input saying where that input's gradient goes:
// to the node that produced it, or into the grad of a leaf that requires it. Nodes do not hold
// the values of their inputs unless the backward needs them; what they hold is saved with its
// version (fiber/autograd/saved_tensor.hpp) and freed once their backward has run.
#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include "fiber/autograd/saved_tensor.hpp"
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

  // Frees what the node saved for its backward (once its backward has run, when the graph is not
  // retained); a later backward through it is an error.
  void release() {
    released_ = true;
    free_saved();
  }
  bool released() const { return released_; }

 protected:
  virtual void free_saved() {}
  std::vector<std::shared_ptr<NodeBase>> next_;  // producers of the inputs, for ordering

 private:
  bool released_ = false;
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

// Which inputs of a node need a gradient (so a backward can skip the others), for any number of
// inputs (a concat of hundreds of Vars). Up to 64 inputs live inline: copying it allocates nothing.
class GradNeeds {
 public:
  GradNeeds() = default;
  explicit GradNeeds(std::size_t n) : n_(n) {
    if (n > 64) words_.assign((n + 63) / 64, 0);
  }
  void set(std::size_t i) {
    FIBER_CHECK(i < n_, "GradNeeds: input ", i, " of ", n_);
    word(i) |= std::uint64_t(1) << (i % 64);
  }
  bool operator[](std::size_t i) const { return i < n_ && ((word(i) >> (i % 64)) & 1u); }
  std::size_t size() const { return n_; }

 private:
  std::uint64_t& word(std::size_t i) { return words_.empty() ? inline_ : words_[i / 64]; }
  std::uint64_t word(std::size_t i) const { return words_.empty() ? inline_ : words_[i / 64]; }

  std::size_t n_ = 0;
  std::uint64_t inline_ = 0;
  std::vector<std::uint64_t> words_;  // when n > 64
};

template <class T>
std::vector<std::shared_ptr<NodeBase>> producers_of(const std::vector<Edge<T>>& edges) {
  std::vector<std::shared_ptr<NodeBase>> out;
  for (const auto& e : edges)
    if (e.node) out.push_back(e.node);
  return out;
}

// Runs backward from `root` (whose output gradient is already in place): orders the graph so that
// a node runs after every node that uses its output and applies the nodes in that order. Unless
// `retain_graph`, each node frees its saved tensors as soon as its backward has run, so memory
// falls as the backward proceeds, and the graph cannot be run through again.
inline void run_backward(const std::shared_ptr<NodeBase>& root, bool retain_graph = false) {
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
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      NodeBase* node = *it;
      FIBER_CHECK(!node->released(), "backward of ", node->name(),
                  ": this part of the graph was already run through by an earlier backward, which freed its saved "
                  "tensors; pass retain_graph = true to that backward to run backward through the graph again");
      node->apply();
      if (!retain_graph) node->release();
    }
  } catch (...) {
    for (NodeBase* n : order) n->clear_gradient();
    throw;
  }
}

}  // namespace fiber
