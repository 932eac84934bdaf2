#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("gradcheck: views") {
  auto x = rnd({2, 3, 4}, 21);
  CHECK_GRADCHECK([](Vars v) { return v[0].reshape({6, 4}); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].view({4, -1}); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].flatten(1); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].permute({2, 0, 1}); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].transpose(0, 2); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].narrow(2, 1, 2); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].slice(1, 0, 3, 2); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].select(1, -1); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].unsqueeze(1).expand({2, 5, 3, 4}); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].narrow(0, 0, 1).squeeze(0); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].unsqueeze(-1); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].transpose(0, 1).contiguous(); }, x);
  CHECK_GRADCHECK([](Vars v) { return v[0].select(0, 1).t(); }, x);
}

TEST_CASE("views compose with fused expressions and broadcasting") {
  auto x = rnd({3, 4}, 22);
  auto b = rnd({4, 1}, 23);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(v[0].t() * v[1] + fiber::tanh(v[0].t())); }, x, b);
}
