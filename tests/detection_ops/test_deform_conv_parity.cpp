// Parity with torchvision.ops.deform_conv2d (tests/reference/make_detection_ops.py): the forward
// and the gradients of input, offset, mask, weight and bias, for the DyHead shapes (3x3, stride 1
// and 2, a mask), conv and offset groups with dilation, DCNv1 (no mask) with a non-square kernel,
// and offsets that throw points outside the image. The reference is float64 on float32 inputs.
// Tolerances: float64 ours |ours - torch| <= 1e-12 + 1e-10 |torch| (summation order only);
//             float32 ours |ours - torch| <= 1e-5 + 1e-4 |torch| (float32 GEMM and channel sums
//             over at most 8·9 terms; measured worst ~1e-6).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fiber/ops/deform_conv.hpp"
#include "npy.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::load_npy;

namespace {

struct Case {
  const char* name;
  fiber::Conv2dOptions opt;
  bool mask, bias;
};

const Case kCases[] = {
    {"dyhead", {{1, 1}, {1, 1}, {1, 1}, 1}, true, true},
    {"stride2", {{2, 2}, {1, 1}, {1, 1}, 1}, true, true},
    {"groups", {{1, 1}, {2, 2}, {2, 2}, 2}, true, false},
    {"nomask", {{1, 2}, {0, 1}, {1, 1}, 1}, false, true},
    {"far", {{1, 1}, {1, 1}, {1, 1}, 1}, true, true},
};

std::string path(const Case& c, const std::string& what) { return std::string("detection_ops/") + c.name + "_" + what + ".npy"; }

Tensor<double> upstream(const fiber::Shape& shape) {
  static const Tensor<float> pool = load_npy<float>("detection_ops/gpool.npy");
  REQUIRE(shape.numel() <= pool.numel());
  return pool.narrow(0, 0, shape.numel()).reshape(shape).contiguous().to<double>();
}

template <class T>
void check_case(const Case& c, double rtol, double atol) {
  CAPTURE(c.name);
  const char* names[] = {"x", "offset", "mask", "weight", "bias"};
  const bool present[] = {true, true, c.mask, true, c.bias};
  std::vector<Var<T>> v(5);
  for (int i = 0; i < 5; ++i)
    if (present[i]) v[i] = Var<T>(load_npy<float>(path(c, names[i])).template to<T>(), true);
  Var<T> y = fiber::deform_conv2d(v[0], v[1], v[2], v[3], v[4], c.opt);
  const Tensor<double> want = load_npy<double>(path(c, "out"));
  REQUIRE(y.shape() == want.shape());
  FIBER_CHECK_CLOSE(y.value().template to<double>(), want, rtol, atol);
  y.backward(upstream(y.shape()).template to<T>());
  for (int i = 0; i < 5; ++i) {
    if (!present[i]) continue;
    CAPTURE(names[i]);
    const Tensor<double> g = load_npy<double>(path(c, std::string("grad_") + names[i]));
    REQUIRE(v[i].grad().shape() == g.shape());
    FIBER_CHECK_CLOSE(v[i].grad().template to<double>(), g, rtol, atol);
  }
}

}  // namespace

TEST_CASE("deform_conv2d: parity with torchvision in float64 (forward and every gradient)") {
  for (const Case& c : kCases) check_case<double>(c, 1e-10, 1e-12);
}

TEST_CASE("deform_conv2d: parity with torchvision in float32 (forward and every gradient)") {
  for (const Case& c : kCases) check_case<float>(c, 1e-4, 1e-5);
}
