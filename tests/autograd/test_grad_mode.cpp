// Under NoGrad an op over Vars that require grad builds no graph: no node, no backward closure, no
// saved tensor. It allocates tensor memory only for what the same op on plain tensors allocates
// (its result, for most ops), and on the heap at most the result Var's state beyond that.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <new>
#include <string>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

// Counts heap allocations (operator new) made anywhere in this test program.
namespace {
std::atomic<std::int64_t> heap_allocations{0};
}
void* operator new(std::size_t n) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using fiber::Shape;
using fiber::Tensor;
using fiber::Var;

namespace {
struct Counts {
  std::int64_t tensors = 0, heap = 0;
};
Counts count(const std::function<void()>& f) {
  const std::int64_t t0 = fiber::allocation_stats().allocations.load(), h0 = heap_allocations.load();
  f();
  return {fiber::allocation_stats().allocations.load() - t0, heap_allocations.load() - h0};
}
Var<double> grad_mode_param(const Shape& s, std::uint64_t seed) {
  fiber::Generator g(seed);
  return Var<double>::parameter(fiber::rand<double>(s, g, -1, 1));
}

// Runs the op on Vars under NoGrad and on their plain values, and compares what each allocates.
// `extra_heap`: what the Var overload allocates beyond the tensor one for its own bookkeeping
// (the result Var's state, a vector of the inputs' values).
void check_no_graph(const char* name, const std::function<Var<double>()>& on_vars,
                    const std::function<Tensor<double>()>& on_tensors, std::int64_t extra_heap = 1) {
  INFO(std::string(name));
  Var<double> out;
  Counts var_counts, tensor_counts;
  {
    fiber::NoGrad no_grad;
    var_counts = count([&] { out = on_vars(); });
  }
  tensor_counts = count([&] { (void)on_tensors(); });
  CHECK(out.is_leaf());
  CHECK_FALSE(out.requires_grad());
  CHECK(var_counts.tensors == tensor_counts.tensors);
  CHECK(var_counts.heap <= tensor_counts.heap + extra_heap);
  // With recording on, the same call does build a node (so the counts above can tell).
  Var<double> recorded;
  const Counts with_graph = count([&] { recorded = on_vars(); });
  CHECK(recorded.grad_fn() != nullptr);
  CHECK(with_graph.heap > var_counts.heap);
}
}  // namespace

TEST_CASE("under NoGrad, ops over Vars that require grad record nothing and allocate only what the tensor op does") {
  const int threads = fiber::num_threads();
  fiber::set_num_threads(1);  // thread hand-offs would add allocations of their own
  Var<double> x = grad_mode_param({4, 6}, 1), w = grad_mode_param({6, 5}, 2), lw = grad_mode_param({6}, 3), lb = grad_mode_param({6}, 4);
  Var<double> xt = grad_mode_param({6, 4}, 5);  // read transposed: a non-contiguous input
  Var<double> img = grad_mode_param({2, 3, 5, 5}, 6), kernel = grad_mode_param({4, 3, 3, 3}, 7), kb = grad_mode_param({4}, 8);
  const Tensor<std::int64_t> ids = Tensor<std::int64_t>::from_data({2, 3}, {0, 1, 5, 3, 3, 2}).t();
  const Tensor<std::int64_t> target = Tensor<std::int64_t>::from_data({4}, {0, 5, 2, 1});
  const Tensor<double> X = x.value(), W = w.value(), LW = lw.value(), LB = lb.value(), XT = xt.value();

  SUBCASE("one result tensor each") {
    for (auto [name, vars, tensors] : {
             std::tuple<const char*, std::function<Var<double>()>, std::function<Tensor<double>()>>{
                 "fused", [&] { return Var<double>(x * x + 1.0); }, [&] { return Tensor<double>(X * X + 1.0); }},
             {"matmul", [&] { return fiber::matmul(x, w); }, [&] { return fiber::matmul(X, W); }},
             {"softmax", [&] { return fiber::softmax(x, -1); }, [&] { return fiber::softmax(X, -1); }},
             {"log_softmax", [&] { return fiber::log_softmax(x, 0); }, [&] { return fiber::log_softmax(X, 0); }},
             {"sum", [&] { return fiber::sum(x, 1); }, [&] { return fiber::sum(X, 1); }},
             {"mean", [&] { return fiber::mean(x); }, [&] { return fiber::mean(X); }},
         }) {
      check_no_graph(name, vars, tensors);
      fiber::NoGrad no_grad;
      CHECK(count([&] { (void)vars(); }).tensors == 1);
    }
  }
  SUBCASE("ops with temporaries of their own allocate exactly what the tensor op does") {
    Var<double> bias = grad_mode_param({5}, 9);
    check_no_graph("linear", [&] { return fiber::linear(xt.t(), w.t(), bias); },
                   [&] { return fiber::linear(XT.t(), W.t(), bias.value()); }, 3);  // + the two views' Vars
    check_no_graph("layer_norm", [&] { return fiber::layer_norm(x, Shape{6}, lw, lb); },
                   [&] { return fiber::layer_norm(X, Shape{6}, LW, LB); });
    check_no_graph("conv2d", [&] { return fiber::conv2d(img, kernel, kb, {.padding = {1, 1}}); },
                   [&] { return fiber::conv2d(img.value(), kernel.value(), kb.value(), {.padding = {1, 1}}); });
    check_no_graph("embedding", [&] { return fiber::embedding(w, ids); },
                   [&] { return fiber::embedding(W, ids); });
    check_no_graph("index_select", [&] { return fiber::index_select(x, 1, ids.reshape({6})); },
                   [&] { return fiber::index_select(X, 1, ids.reshape({6})); });
    check_no_graph("cross_entropy", [&] { return fiber::cross_entropy(x, target); },
                   [&] { return fiber::cross_entropy(X, target); });
    check_no_graph("amax", [&] { return fiber::amax(x, 1); }, [&] { return fiber::amax(X, 1); });
    check_no_graph("var", [&] { return fiber::var(x, 0); }, [&] { return fiber::var(X, 0); });
    check_no_graph("logsumexp", [&] { return fiber::logsumexp(x, 1); }, [&] { return fiber::logsumexp(X, 1); });
    check_no_graph("concat", [&] { return fiber::concat({x, x, x}, 0); },
                   [&] { return fiber::concat({X, X, X}, 0); }, 2);  // + the inputs' values
    check_no_graph("stack", [&] { return fiber::stack({x, x}, 1); }, [&] { return fiber::stack({X, X}, 1); },
                   3);  // + the inputs' values (a vector grown twice)
    check_no_graph("permute", [&] { return x.permute({1, 0}); }, [&] { return X.permute({1, 0}); });
    check_no_graph("adaptive_avg_pool2d", [&] { return fiber::adaptive_avg_pool2d(img, {2, 3}); },
                   [&] { return fiber::adaptive_avg_pool2d(img.value(), {2, 3}); });
  }
  fiber::set_num_threads(threads);
}
