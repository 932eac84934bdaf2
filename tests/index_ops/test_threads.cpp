// Results (forward and gradients) are bit-identical for 1, 2 and 3 threads. The sizes are chosen
// so that every kernel splits its work into several pieces.
#include <doctest/doctest.h>

#include <functional>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

using fiber::InterpolateMode;
using fiber::Tensor;
using fiber::Var;
using Ids = Tensor<std::int64_t>;

namespace {
Tensor<float> random(const fiber::Shape& s, std::uint64_t seed) {
  fiber::Generator g(seed);
  return fiber::randn<float>(s, g);
}
Ids random_ids(const fiber::Shape& s, std::int64_t limit, std::uint64_t seed) {
  fiber::Generator g(seed);
  return Tensor<double>(fiber::rand<double>(s, g, 0, double(limit) - 1e-9)).to<std::int64_t>();
}

// The forward value and the gradient of x under a fixed upstream gradient.
std::vector<std::vector<float>> run(const std::function<Var<float>(const Var<float>&)>& f, const Tensor<float>& x) {
  Var<float> xv(x.clone(), true);
  Var<float> y = f(xv);
  y.backward(random(y.shape(), 99));
  return {y.value().to_vector(), xv.grad().to_vector()};
}

void check_thread_counts(const char* what, const std::function<Var<float>(const Var<float>&)>& f, const Tensor<float>& x) {
  CAPTURE(what);
  const fiber::test::RestoreThreads restore_threads;
  fiber::set_num_threads(1);
  const auto one = run(f, x);
  for (int n : {2, 3}) {
    fiber::set_num_threads(n);
    const auto many = run(f, x);
    CAPTURE(n);
    CHECK(many[0] == one[0]);
    CHECK(many[1] == one[1]);
  }
}
}  // namespace

TEST_CASE("join ops: identical for 1, 2, 3 threads") {
  const Tensor<float> x = random({256, 300}, 1);
  check_thread_counts("concat", [](const Var<float>& v) {
    return fiber::concat({v, Var<float>(v * 2.0f), v.transpose(0, 1).contiguous().transpose(0, 1)}, 1);
  }, x);
  check_thread_counts("stack", [](const Var<float>& v) { return fiber::stack({v, v}, 1); }, x);
  check_thread_counts("chunk", [](const Var<float>& v) {
    auto p = fiber::chunk(v, 3, 1);
    return fiber::concat({p[2], p[0]}, 1);
  }, x);
}

TEST_CASE("index ops: identical for 1, 2, 3 threads (scatter-adds with many repeats)") {
  const Tensor<float> x = random({8, 100, 64}, 2);
  const Ids sel = random_ids({300}, 100, 3);
  check_thread_counts("index_select axis 1", [&](const Var<float>& v) { return fiber::index_select(v, 1, sel); }, x);
  check_thread_counts("index_select axis 0", [&](const Var<float>& v) {
    return fiber::index_select(v.reshape({800, 64}), 0, random_ids({3000}, 800, 4));
  }, x);
  const Ids gidx = random_ids({16, 64, 40}, 64, 5);
  check_thread_counts("gather axis 1", [&](const Var<float>& v) { return fiber::gather(v.reshape({16, 50, 64}).transpose(1, 2), 1, gidx); },
                      x);
  check_thread_counts("gather axis 0", [&](const Var<float>& v) { return fiber::gather(v.reshape({800, 64}), 0, random_ids({900, 64}, 800, 6)); },
                      x);
  const Tensor<float> w = random({1000, 64}, 7);
  const Ids ids = random_ids({20, 100}, 1000, 8);
  check_thread_counts("embedding", [&](const Var<float>& v) { return fiber::embedding(v, ids, 3); }, w);
}

TEST_CASE("interpolate and pooling: identical for 1, 2, 3 threads") {
  const Tensor<float> x = random({2, 3, 40, 50}, 9);
  for (auto mode : {InterpolateMode::nearest, InterpolateMode::bilinear, InterpolateMode::bicubic}) {
    for (std::vector<std::int64_t> size : {std::vector<std::int64_t>{70, 90}, std::vector<std::int64_t>{17, 23}}) {
      check_thread_counts(fiber::interpolate_mode_name(mode), [&](const Var<float>& v) {
        return fiber::interpolate(v, {.size = size, .mode = mode});
      }, x);
    }
  }
  check_thread_counts("linear", [](const Var<float>& v) {
    return fiber::interpolate(v.reshape({6, 40, 50}), {.size = {77}, .mode = InterpolateMode::linear, .align_corners = true});
  }, x);
  const Tensor<float> p = random({4, 8, 64, 64}, 10);
  check_thread_counts("adaptive_avg_pool2d down", [](const Var<float>& v) { return fiber::adaptive_avg_pool2d(v, {24, 10}); }, p);
  check_thread_counts("adaptive_avg_pool2d up", [](const Var<float>& v) { return fiber::adaptive_avg_pool2d(v, {100, 70}); }, p);
}
