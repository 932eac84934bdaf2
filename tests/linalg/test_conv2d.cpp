#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "fiber/ops/conv.hpp"
#include "gradcheck_util.hpp"
#include "npy.hpp"
#include "test_util.hpp"

using fiber::Conv2dOptions;
using fiber::Shape;
using fiber::Tensor;
using fiber::Var;
using fiber::test::load_npy;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

namespace {
struct Case {
  const char* name;
  Conv2dOptions opt;
};
const Case kCases[] = {
    {"conv_basic", {{1, 1}, {1, 1}, {1, 1}, 1}},
    {"conv_strided", {{2, 3}, {1, 0}, {1, 1}, 2}},
    {"conv_dilated", {{1, 1}, {2, 2}, {2, 2}, 1}},
    {"conv_1x1", {{1, 1}, {0, 0}, {1, 1}, 1}},
    {"conv_depthwise", {{2, 2}, {1, 1}, {1, 1}, 4}},
};
std::string path(const char* name, const char* part) { return std::string("linalg/") + name + "_" + part + ".npy"; }
}  // namespace

TEST_CASE("conv2d forward and gradients match PyTorch (stride, padding, dilation, groups, 1x1)") {
  for (const Case& c : kCases) {
    CAPTURE(c.name);
    Var<float> x(load_npy<float>(path(c.name, "x")), true);
    Var<float> w(load_npy<float>(path(c.name, "w")), true);
    Var<float> b(load_npy<float>(path(c.name, "b")), true);
    Var<float> y = fiber::conv2d(x, w, b, c.opt);
    FIBER_CHECK_CLOSE(y.value(), load_npy<float>(path(c.name, "y")), 1e-4, 1e-4);
    Var<float> weighted = y * load_npy<float>(path(c.name, "g"));
    fiber::sum(weighted).backward();
    FIBER_CHECK_CLOSE(x.grad(), load_npy<float>(path(c.name, "gx")), 1e-4, 1e-4);
    FIBER_CHECK_CLOSE(w.grad(), load_npy<float>(path(c.name, "gw")), 1e-4, 1e-4);
    FIBER_CHECK_CLOSE(b.grad(), load_npy<float>(path(c.name, "gb")), 1e-4, 1e-4);
  }
}

TEST_CASE("gradcheck: conv2d") {
  CHECK_GRADCHECK([](Vars v) { return fiber::conv2d(v[0], v[1], v[2], {{2, 1}, {1, 1}, {1, 2}, 2}); }, rnd({2, 4, 6, 5}, 1),
                  rnd({4, 2, 3, 2}, 2), rnd({4}, 3));
  CHECK_GRADCHECK([](Vars v) { return fiber::conv2d(v[0], v[1]); }, rnd({1, 3, 4, 4}, 4), rnd({2, 3, 1, 1}, 5));
  CHECK_GRADCHECK([](Vars v) { return fiber::conv2d(v[0].transpose(2, 3), v[1]); }, rnd({1, 2, 5, 4}, 6), rnd({3, 2, 2, 2}, 7));
}

TEST_CASE("conv2d rejects inconsistent shapes and options") {
  auto x = rnd({1, 4, 5, 5}, 1);
  CHECK_THROWS_WITH_AS(fiber::conv2d(x, rnd({2, 3, 3, 3}, 2)), doctest::Contains("expects 3 input channels"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::conv2d(x, rnd({3, 2, 3, 3}, 2), {}, {{1, 1}, {0, 0}, {1, 1}, 2}),
                       doctest::Contains("divide into 2 groups"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::conv2d(x, rnd({2, 4, 7, 7}, 2)), doctest::Contains("does not fit"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::conv2d(x, rnd({2, 4, 3, 3}, 2), {}, {{0, 1}}), doctest::Contains("stride must be >= 1"),
                       fiber::Error);
  fiber::Conv2dOptions huge;
  huge.padding = {std::int64_t{1} << 62, 0};
  CHECK_THROWS_WITH_AS(fiber::conv2d(x, rnd({2, 4, 3, 3}, 2), {}, huge), doctest::Contains("must be at most 1048576"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::conv2d(rnd({4, 5, 5}, 1), rnd({2, 4, 3, 3}, 2)), doctest::Contains("[N, C, H, W]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::conv2d(x, rnd({2, 4, 3, 3}, 2), rnd({3}, 3)), doctest::Contains("bias of shape [3]"), fiber::Error);
}

TEST_CASE("conv2d gives identical results for 1, 2 and 3 threads") {
  // Sizes at which the GEMMs (32 x 1600 x 144, 1.5e7 flops) are threaded too, not only col2im.
  fiber::Generator gen(9);
  auto x = fiber::randn<float>({2, 16, 40, 40}, gen), w = fiber::randn<float>({32, 16, 3, 3}, gen);
  const fiber::test::RestoreThreads restore_threads;
  auto run = [&](int threads) {
    fiber::set_num_threads(threads);
    Var<float> xv(x, true), wv(w, true);
    Var<float> y = fiber::conv2d(xv, wv, Var<float>(), {{1, 1}, {1, 1}, {1, 1}, 1});
    fiber::sum(Var<float>(y * y)).backward();
    auto v = y.value().to_vector(), gx = xv.grad().to_vector(), gw = wv.grad().to_vector();
    v.insert(v.end(), gx.begin(), gx.end());
    v.insert(v.end(), gw.begin(), gw.end());
    return v;
  };
  auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}
