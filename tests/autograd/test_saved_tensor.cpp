// Version counters and saved tensors: every in-place write through a Tensor bumps its storage's
// version; a node whose backward reads a tensor that was written in place since it was saved
// throws a fiber::Error naming the op instead of computing a wrong gradient.
#include <doctest/doctest.h>

#include <cstdint>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

using fiber::Shape;
using fiber::Tensor;
using fiber::Var;

namespace {
Var<double> param(const Shape& s, double lo, double step) {
  return Var<double>::parameter(fiber::arange<double>(lo, lo + step * double(s.numel()) - step / 2, step).reshape(s));
}
}  // namespace

TEST_CASE("every in-place write path bumps the storage's version; views share it") {
  Tensor<double> t = Tensor<double>::zeros({2, 3});
  const Tensor<double> view = t.narrow(1, 1, 2);
  std::uint64_t v = t.version();
  auto bumped = [&] {
    const bool ok = t.version() == v + 1 && view.version() == t.version();
    v = t.version();
    return ok;
  };
  t.fill_(1.0);
  CHECK(bumped());
  view.copy_(Tensor<double>::ones({2, 2}));
  CHECK(bumped());
  t.assign(t * 2.0 + 1.0);  // reads and writes the same storage: still one write in place
  CHECK(bumped());
  fiber::evaluate_into(view, fiber::as_expr(view) + 1.0);
  CHECK(bumped());
  // An operand laid out differently from the output over the same storage is evaluated into
  // fresh memory and copied back: one write all the same.
  const Tensor<double> row = Tensor<double>::zeros({1, 3});
  const std::uint64_t rv = row.version();
  row.assign(row + 1.0);
  CHECK(row.version() == rv + 1);
  fiber::reduce_into<fiber::reducers::Sum>(t.narrow(1, 0, 1), fiber::as_expr(Tensor<double>::ones({2, 5})));
  CHECK(bumped());
  t.bump_version();  // a kernel that wrote through data() says so
  CHECK(bumped());
  // Reading, viewing and copying out do not count.
  (void)t.clone();
  (void)t.reshape({3, 2});
  (void)Tensor<double>(t * 3.0);
  CHECK(t.version() == v);
  // A clone has its own storage and counter.
  const Tensor<double> c = t.clone();
  c.fill_(0.0);
  CHECK(t.version() == v);
}

TEST_CASE("a weight written in place between forward and backward: matmul throws, naming the op") {
  Var<double> x = param({2, 3}, -1, 0.25), w = param({3, 2}, 0.5, 0.125);
  Var<double> y = fiber::matmul(x, w);
  w.value().assign(w.value() * 2.0);  // as an optimiser step would
  CHECK_THROWS_WITH_AS(fiber::sum(y).backward(),
                       doctest::Contains("backward of matmul: a tensor of shape [3, 2] saved for the backward was "
                                         "modified in place (version"),
                       fiber::Error);
  CHECK_FALSE(x.grad().defined());  // nothing half-accumulated into the leaves that the failed node feeds
}

TEST_CASE("the version error for each kind of node") {
  SUBCASE("fused elementwise: y = x * w, then w.fill_") {
    Var<double> x = param({4}, 1, 1), w = param({4}, 2, 1);
    Var<double> y = x * w;
    w.value().fill_(1.0);
    CHECK_THROWS_WITH_AS(fiber::sum(y).backward(), doctest::Contains("backward of fused elementwise"), fiber::Error);
  }
  SUBCASE("softmax reads its output: writing y in place is caught") {
    Var<double> x = param({2, 3}, 0, 0.5);
    Var<double> y = fiber::softmax(x, -1);
    y.value().copy_(Tensor<double>::zeros({2, 3}));
    CHECK_THROWS_WITH_AS(y.backward(Tensor<double>::ones({2, 3})), doctest::Contains("backward of softmax"),
                         fiber::Error);
  }
  SUBCASE("linear: the input written after the forward") {
    Var<double> x = param({2, 3}, 0, 0.5), w = param({4, 3}, -1, 0.125), b = param({4}, 0, 1);
    Var<double> y = fiber::linear(x, w, b);
    x.value().narrow(0, 0, 1).fill_(0.0);  // a write to a view of the storage counts
    CHECK_THROWS_WITH_AS(fiber::sum(y).backward(), doctest::Contains("backward of linear"), fiber::Error);
  }
  SUBCASE("layer_norm: the weight written after the forward") {
    Var<double> x = param({3, 4}, -2, 0.3), w = param({4}, 1, 0.5);
    Var<double> y = fiber::layer_norm(x, Shape{4}, w);
    w.value().assign(w.value() - 0.1);
    CHECK_THROWS_WITH_AS(fiber::sum(Var<double>(y * y)).backward(), doctest::Contains("backward of layer_norm"),
                         fiber::Error);
  }
  SUBCASE("cross_entropy: the target indices written after the forward") {
    Var<double> logits = param({2, 3}, -1, 0.3);
    Tensor<std::int64_t> target = Tensor<std::int64_t>::from_data({2}, {0, 2});
    Var<double> loss = fiber::cross_entropy(logits, target);
    target.fill_(1);
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("backward of cross_entropy"), fiber::Error);
  }
  SUBCASE("embedding: the ids written after the forward") {
    Var<double> table = param({5, 2}, 0, 1);
    Tensor<std::int64_t> ids = Tensor<std::int64_t>::from_data({3}, {0, 4, 4});
    Var<double> y = fiber::embedding(table, ids);
    ids.fill_(1);
    CHECK_THROWS_WITH_AS(fiber::sum(y).backward(), doctest::Contains("backward of embedding"), fiber::Error);
  }
}

TEST_CASE("writes that the backward does not depend on are allowed") {
  SUBCASE("b in x + b: the sum's backward never reads b") {
    Var<double> x = param({3}, 1, 1), b = param({3}, 5, 1);
    Var<double> y = x * x + b;
    b.value().fill_(100.0);
    fiber::sum(y).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
    CHECK(b.grad().to_vector() == std::vector<double>{1, 1, 1});
  }
  SUBCASE("a write to a clone of the saved tensor, or after the backward") {
    Var<double> x = param({2, 2}, 1, 1), w = param({2, 2}, 0.5, 0.5);
    Var<double> y = fiber::matmul(x, w);
    Tensor<double> copy = w.value().clone();
    copy.fill_(0.0);
    fiber::sum(y).backward();
    w.value().fill_(0.0);  // an optimiser step after the backward
    CHECK(x.grad().defined());
  }
}

TEST_CASE("a training loop that updates its parameters in place each step") {
  Var<double> w = param({3, 1}, 0.1, 0.1);
  const Tensor<double> x = Tensor<double>::from_data({4, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1});
  const Tensor<double> target = Tensor<double>::from_data({4, 1}, {1, 2, 3, 6});
  double first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    Var<double> err = fiber::matmul(Var<double>(x), w) - target;
    Var<double> loss = fiber::mean(Var<double>(err * err));
    loss.backward();
    (step == 0 ? first : last) = loss.value().item();
    w.value().assign(w.value() - 0.2 * w.grad());  // in place: the last step's graph is gone already
    w.zero_grad();
  }
  CHECK(last < first * 1e-3);
}
