// Gradients of the fine-grained head, float64 central differences (gradcheck): group_norm for
// input, weight and bias; one DyConv block for its three level inputs (deformable convs reading
// level offsets, including the prefix read; scale attention; DyReLU); the grounding head for the
// features and the text, with padding tokens (zero rows, where L2 normalisation must not give NaN).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fiber/models/dyhead.hpp"
#include "fiber/ops/group_norm.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using namespace fiber;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

namespace {
constexpr models::DyHeadConfig kSmall{.channels = 8, .num_convs = 1, .gn_groups = 2, .lang_dim = 6, .num_classes = 3,
                                      .levels = 3};

// Every parameter random, offsets of about a pixel, so each path carries gradient.
template <class M>
void randomise(M& m, std::uint64_t seed) {
  m.visit("", [&](const std::string& key, nn::Entry<double> e) {
    if (!e.var) return;
    const double scale = key.find("offset.bias") != std::string::npos ? 1.5 : 0.4;
    e.var->value().copy_(rnd(e.var->shape(), seed++, -scale, scale));
    if (key.find(".bn.weight") != std::string::npos) e.var->value().copy_(rnd(e.var->shape(), seed++, 0.6, 1.4));
  });
}
}  // namespace

TEST_CASE("gradcheck: group_norm (input, weight, bias)") {
  CHECK_GRADCHECK([](Vars v) { return group_norm(v[0], 2, v[1], v[2]); }, rnd({2, 4, 3, 2}, 1), rnd({4}, 2),
                  rnd({4}, 3));
  CHECK_GRADCHECK([](Vars v) { return group_norm(v[0], 4); }, rnd({1, 4, 5}, 4));
  CHECK_THROWS_WITH_AS(group_norm(Tensor<double>::zeros({1, 6, 2}), 4), doctest::Contains("6 channels do not split into 4"),
                       Error);
}

TEST_CASE("gradcheck: one DyConv block over three levels (5x7, 3x4, 2x2)") {
  models::DyConv<double, kSmall> block;
  randomise(block, 100);
  CHECK_GRADCHECK([&](Vars v) {
    const std::vector<Var<double>> out = block({v[0], v[1], v[2]});
    return concat(std::vector<Var<double>>{out[0].reshape({-1}), out[1].reshape({-1}), out[2].reshape({-1})});
  }, rnd({1, 8, 5, 7}, 11), rnd({1, 8, 3, 4}, 12), rnd({1, 8, 2, 2}, 13));
}

TEST_CASE("gradcheck: grounding head for the features and the text (padding tokens zero)") {
  models::DyHead<double, kSmall> head;
  head.tower.clear();  // the tower is checked above; here the head's own paths
  randomise(head, 200);
  // The head reads the text masked to zero at padding (the official `embedded` = hidden · mask);
  // image 1's tokens 2, 3 are padding. At an all-zero row F.normalize's derivative is 1/eps
  // (1e12), here and in PyTorch; the mask's zero stops it, as in the official model.
  Tensor<double> mask = Tensor<double>::ones({2, 4, 1});
  mask.select(0, 1).narrow(0, 2, 2).fill_(0);
  CHECK_GRADCHECK([&](Vars v) {
    const models::HeadOutputs<double> o = head({v[0], v[1], v[2]}, Var<double>(v[3] * mask));
    std::vector<Var<double>> all;
    for (std::size_t l = 0; l < 3; ++l)
      for (const Var<double>* t : {&o.box_regression[l], &o.centerness[l], &o.token_logits[l]}) all.push_back(t->reshape({-1}));
    return concat(all);
  }, rnd({2, 8, 3, 4}, 22), rnd({2, 8, 2, 2}, 23), rnd({2, 8, 1, 1}, 24), rnd({2, 4, 6}, 21));
}
