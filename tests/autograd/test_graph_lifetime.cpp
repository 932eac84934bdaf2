// What a graph holds and for how long: each node frees its saved tensors once its backward has
// run, so a backward's memory falls as it proceeds; retain_graph keeps them for another backward;
// a second backward through a freed graph is a clear error.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

using fiber::Shape;
using fiber::Storage;
using fiber::Tensor;
using fiber::Var;

namespace {
Var<double> param(const Shape& s, std::uint64_t seed) {
  fiber::Generator g(seed);
  return Var<double>::parameter(fiber::rand<double>(s, g, -1, 1));
}

// A chain whose intermediate values live only in the graph: matmul -> tanh (fused) -> softmax ->
// layer_norm -> sum. Returns the loss and weak handles on the intermediates' storage.
struct Chain {
  Var<double> loss;
  std::vector<std::weak_ptr<Storage>> intermediates;
};
Chain build_chain(const Var<double>& x, const Var<double>& w, const Var<double>& lw) {
  Chain c;
  Var<double> h = fiber::matmul(x, w);          // [4, 5]
  Var<double> t = fiber::tanh(h) * 2.0;          // fused: saves h
  Var<double> s = fiber::softmax(t, -1);         // saves its output
  Var<double> n = fiber::layer_norm(s, Shape{5}, lw);  // saves s
  c.loss = fiber::sum(Var<double>(n * n));       // fused: saves n
  for (const Var<double>* v : {&h, &s, &n}) c.intermediates.emplace_back(v->value().storage());
  return c;  // h, t, s and n go out of scope: only the graph holds their values now
}
int alive(const std::vector<std::weak_ptr<Storage>>& ws) {
  int n = 0;
  for (const auto& w : ws) n += !w.expired();
  return n;
}
}  // namespace

TEST_CASE("backward frees each node's saved tensors once it has run") {
  Var<double> x = param({4, 3}, 1), w = param({3, 5}, 2), lw = param({5}, 3);
  Chain c = build_chain(x, w, lw);
  CHECK(alive(c.intermediates) == 3);  // held by the nodes that saved them
  c.loss.backward();
  CHECK(alive(c.intermediates) == 0);
  CHECK(w.grad().defined());
  CHECK(lw.grad().defined());
  // The graph is gone: a second backward is an error that says what to do.
  CHECK_THROWS_WITH_AS(c.loss.backward(), doctest::Contains("retain_graph"), fiber::Error);
}

TEST_CASE("retain_graph keeps the saved tensors: a second backward adds the same gradient") {
  Var<double> x = param({4, 3}, 1), w = param({3, 5}, 2), lw = param({5}, 3);
  Chain c = build_chain(x, w, lw);
  c.loss.backward(/*retain_graph=*/true);
  CHECK(alive(c.intermediates) == 3);
  const Tensor<double> once = w.grad().clone();
  c.loss.backward();  // not retained: frees it this time
  CHECK(alive(c.intermediates) == 0);
  FIBER_CHECK_CLOSE(w.grad(), Tensor<double>(once * 2.0), 1e-12, 1e-14);
  CHECK_THROWS_AS(c.loss.backward(), fiber::Error);
}

TEST_CASE("a backward reaching a graph freed by another backward is an error naming the node") {
  Var<double> x = param({3}, 4), w = param({3}, 5);
  Var<double> shared = x * w;  // saves x and w
  Var<double> first = fiber::sum(shared), second = fiber::sum(Var<double>(shared * 3.0));
  first.backward();
  CHECK_THROWS_WITH_AS(second.backward(), doctest::Contains("backward of fused elementwise"), fiber::Error);
  // Retained, both backwards run; the gradients are the sum of both paths.
  x.zero_grad();
  Var<double> shared2 = x * w;
  Var<double> a = fiber::sum(shared2), b = fiber::sum(Var<double>(shared2 * 3.0));
  a.backward(true);
  b.backward();
  FIBER_CHECK_CLOSE(x.grad(), Tensor<double>(w.value() * 4.0), 1e-14, 0);
}

TEST_CASE("the memory a backward holds falls as it runs") {
  // A chain of 8 matmuls with [64, 64] intermediates held only by the graph, and in the middle a
  // probe node (identity) whose backward counts the intermediates still alive when it runs.
  constexpr int depth = 8, probe_after = 4;
  Var<double> x = param({64, 64}, 7);
  std::vector<Var<double>> ws;
  for (int i = 0; i < depth; ++i) ws.push_back(param({64, 64}, 10 + i));
  std::vector<std::weak_ptr<Storage>> saved;  // saved[i]: the product after matmul i + 1
  int alive_at_probe = -1;
  Var<double> h = x;
  for (int i = 0; i < depth; ++i) {
    h = fiber::matmul(h, ws[i]);
    saved.emplace_back(h.value().storage());
    if (i + 1 == probe_after)
      h = fiber::record("probe", h.value(), {&h}, [&saved, &alive_at_probe](const Tensor<double>& g, fiber::GradNeeds) {
        alive_at_probe = alive(saved);
        return std::vector<Tensor<double>>{g};
      });
  }
  Var<double> loss = fiber::sum(h);
  h = Var<double>();
  CHECK(alive(saved) == depth - 1);  // the last product is read by no backward
  loss.backward();
  // At the probe, matmuls 5..8 have run and freed the products they read (4..7); matmuls 2..4,
  // not yet run, still hold products 1..3.
  CHECK(alive_at_probe == probe_after - 1);
  CHECK(alive(saved) == 0);
}
