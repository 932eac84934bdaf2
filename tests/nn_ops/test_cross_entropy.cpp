// cross_entropy: hand-checked values, PyTorch parity (float32) for every reduction with and
// without class weights and label smoothing, ignore_index, [N, C, d...] logits, probability
// targets; gradcheck (float64); errors.
#include <limits>

#include "nn_test_util.hpp"

using fiber::CrossEntropyOptions;
using fiber::Reduction;
using fiber::Shape;
using fiber::Tensor;
using fiber::Var;
using fiber::test::check_parity;
using fiber::test::fixture;
using fiber::test::fixture_i64;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;
using I64 = Tensor<std::int64_t>;

namespace {
const Reduction kReductions[] = {Reduction::none, Reduction::mean, Reduction::sum};

// Loss and logits gradient of cross_entropy with the upstream gradient the fixtures used.
struct LossAndGrad {
  Tensor<float> loss, grad;
};
LossAndGrad run(const Tensor<float>& logits, const I64& target, const CrossEntropyOptions<float>& opt,
                const Tensor<float>& g_none) {
  Var<float> x = Var<float>::parameter(logits);
  Var<float> loss = fiber::cross_entropy(x, target, opt);
  if (opt.reduction == Reduction::none) loss.backward(g_none);
  else loss.backward();
  return {loss.value(), x.grad()};
}
}  // namespace

TEST_CASE("cross_entropy: hand-checked values") {
  // Uniform logits over 4 classes: -log(1/4) per sample.
  auto zeros = Tensor<double>::zeros({3, 4});
  auto t = I64::from_data({3}, {0, 3, 2});
  CHECK(fiber::cross_entropy(zeros, t).item() == doctest::Approx(std::log(4.0)).epsilon(1e-14));
  CHECK(fiber::cross_entropy(zeros, t, {.reduction = Reduction::sum}).item() ==
        doctest::Approx(3 * std::log(4.0)).epsilon(1e-14));
  // [C] logits with a 0-d target: one sample.
  auto one = Tensor<double>::from_data({3}, {1, 2, 3});
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  CHECK(fiber::cross_entropy(one, I64::scalar(0)).item() == doctest::Approx(lse - 1).epsilon(1e-14));
  auto none = fiber::cross_entropy(one, I64::scalar(2), {.reduction = Reduction::none});
  CHECK(none.dim() == 0);
  CHECK(none.item() == doctest::Approx(lse - 3).epsilon(1e-14));
  // Weighted mean divides by the weights of the targets: (w0 * l0 + w2 * l2) / (w0 + w2).
  auto logits = Tensor<double>::from_data({2, 3}, {1, 2, 3, 3, 2, 1});
  auto w = Tensor<double>::from_data({3}, {0.5, 1, 2});
  const double l0 = lse - 1, l1 = lse - 1;  // row 1 targets class 2, whose logit is 1
  auto tw = I64::from_data({2}, {0, 2});
  CHECK(fiber::cross_entropy(logits, tw, {.weight = w}).item() ==
        doctest::Approx((0.5 * l0 + 2 * l1) / 2.5).epsilon(1e-14));
  // Label smoothing eps with C classes: (1 - eps) * nll + eps / C * sum_c -logp_c.
  const double eps = 0.3, smooth = (lse - 1) + (lse - 2) + (lse - 3);
  CHECK(fiber::cross_entropy(one, I64::scalar(0), {.label_smoothing = eps}).item() ==
        doctest::Approx((1 - eps) * (lse - 1) + eps / 3 * smooth).epsilon(1e-14));
  // Ignored targets add nothing; all ignored gives NaN with mean (0 / 0), 0 with sum.
  auto ti = I64::from_data({3}, {-100, 1, -100});
  CHECK(fiber::cross_entropy(zeros, ti).item() == doctest::Approx(std::log(4.0)).epsilon(1e-14));
  auto all_ignored = I64::full({3}, -100);
  CHECK(std::isnan(fiber::cross_entropy(zeros, all_ignored).item()));
  CHECK(fiber::cross_entropy(zeros, all_ignored, {.reduction = Reduction::sum}).item() == 0.0);
  // Probability targets: -sum p log q; one-hot probabilities equal class indices.
  auto onehot = Tensor<double>::from_data({2, 3}, {1, 0, 0, 0, 0, 1});
  CHECK(fiber::cross_entropy(logits, onehot).item() == doctest::Approx(fiber::cross_entropy(logits, tw).item()));
}

TEST_CASE("cross_entropy is stable for logits of +-1000 (float32)") {
  auto logits = Tensor<float>::from_data({2, 3}, {1000.f, -1000.f, 0.f, -1000.f, -1000.f, -999.f});
  auto loss = fiber::cross_entropy(logits, I64::from_data({2}, {1, 2}), {.reduction = Reduction::none});
  CHECK(loss.at({0}) == doctest::Approx(2000.0).epsilon(1e-6));
  CHECK(loss.at({1}) == doctest::Approx(std::log(1 + 2 * std::exp(-1.0))).epsilon(1e-5));
}

TEST_CASE("parity with PyTorch (float32): [N, C] for each reduction, with/without weight and smoothing") {
  auto logits = fixture("ce_logits"), w = fixture("ce_weight"), g = fixture("ce_g_none");
  auto target = fixture_i64("ce_target");
  const char* names[] = {"none", "mean", "sum"};
  for (int r = 0; r < 3; ++r) {
    auto losses = fixture(std::string("ce_loss_") + names[r]);
    auto grads = fixture(std::string("ce_grad_") + names[r]);
    for (int k = 0; k < 4; ++k) {
      CrossEntropyOptions<float> opt{.weight = k >= 2 ? w : Tensor<float>(),
                                     .label_smoothing = k % 2 ? 0.1 : 0.0,
                                     .reduction = kReductions[r]};
      const std::string what = std::string("ce [10,7] ") + names[r] + (k >= 2 ? " weight" : "") +
                               (k % 2 ? " smoothing" : "");
      auto [loss, grad] = run(logits, target, opt, g);
      check_parity((what + " loss").c_str(), loss, losses.select(0, k), 1e-5, 1e-5);
      check_parity((what + " grad").c_str(), grad, grads.select(0, k), 1e-4, 1e-6);
      // Transposed storage of the same logits: the same results.
      auto [loss_t, grad_t] = run(fiber::test::noncontiguous(logits), target, opt, g);
      check_parity((what + " non-contig loss").c_str(), loss_t, losses.select(0, k), 1e-5, 1e-5);
      check_parity((what + " non-contig grad").c_str(), grad_t, grads.select(0, k), 1e-4, 1e-6);
    }
  }
}

TEST_CASE("parity with PyTorch (float32): ignore_index a valid class, [N, C, d1, d2] logits") {
  auto logits = fixture("ce_logits"), w = fixture("ce_weight");
  I64 clamped = I64(fiber::maximum(fixture_i64("ce_target"), std::int64_t(0)));
  auto [loss, grad] = run(logits, clamped, {.weight = w, .ignore_index = 3, .label_smoothing = 0.3}, {});
  check_parity("ce ignore_index 3 loss", loss, fixture("ce_ignore3_loss"), 1e-5, 1e-5);
  check_parity("ce ignore_index 3 grad", grad, fixture("ce_ignore3_grad"), 1e-4, 1e-6);

  auto logits4 = fixture("ce4_logits"), w5 = fixture("ce4_weight");
  auto target4 = fixture_i64("ce4_target");
  for (Reduction r : {Reduction::none, Reduction::mean}) {
    const std::string name = fiber::reduction_name(r);
    auto [l4, g4] = run(logits4, target4, {.weight = w5, .label_smoothing = 0.2, .reduction = r},
                        fixture("ce4_g_none"));
    check_parity(("ce [3,5,2,4] " + name + " loss").c_str(), l4, fixture("ce4_loss_" + name), 1e-5, 1e-5);
    check_parity(("ce [3,5,2,4] " + name + " grad").c_str(), g4, fixture("ce4_grad_" + name), 1e-4, 1e-6);
  }
}

TEST_CASE("parity with PyTorch (float32): probability targets, gradients for logits and targets") {
  auto logits = fixture("ce_logits"), w = fixture("ce_weight"), probs = fixture("cep_target");
  const char* names[] = {"none", "mean", "sum"};
  for (int r = 0; r < 3; ++r) {
    Var<float> x = Var<float>::parameter(logits), p = Var<float>::parameter(probs);
    Var<float> loss = fiber::cross_entropy(x, p, {.weight = w, .label_smoothing = 0.1, .reduction = kReductions[r]});
    if (r == 0) loss.backward(fixture("ce_g_none"));
    else loss.backward();
    const std::string what = std::string("ce probabilities ") + names[r];
    check_parity((what + " loss").c_str(), loss.value(), fixture(std::string("cep_loss_") + names[r]), 1e-5, 1e-5);
    check_parity((what + " grad logits").c_str(), x.grad(), fixture(std::string("cep_grad_logits_") + names[r]), 1e-4,
                 1e-6);
    check_parity((what + " grad target").c_str(), p.grad(), fixture(std::string("cep_grad_target_") + names[r]), 1e-4,
                 1e-5);
  }
}

TEST_CASE("gradcheck: cross_entropy with class indices, every reduction, weight, smoothing, ignore_index") {
  auto x = rnd({5, 4}, 50, -3, 3);
  auto t = I64::from_data({5}, {0, 3, -100, 1, 3});
  auto w = rnd({4}, 51, 0.5, 2);
  for (Reduction r : kReductions) {
    for (bool weighted : {false, true}) {
      for (double eps : {0.0, 0.25}) {
        INFO("reduction " << r << ", weight " << weighted << ", smoothing " << eps);
        CrossEntropyOptions<double> opt{.weight = weighted ? w : Tensor<double>(), .label_smoothing = eps, .reduction = r};
        CHECK_GRADCHECK([&](Vars v) { return fiber::cross_entropy(v[0], t, opt); }, x);
      }
    }
  }
  // ignore_index a valid class; a transposed (non-contiguous) and a sliced logits tensor.
  auto t2 = I64::from_data({5}, {0, 2, 2, 1, 3});
  CHECK_GRADCHECK([&](Vars v) { return fiber::cross_entropy(v[0], t2, {.ignore_index = 2, .label_smoothing = 0.1}); },
                  x);
  CHECK_GRADCHECK([&](Vars v) { return fiber::cross_entropy(v[0].t(), t2, {.weight = w}); }, rnd({4, 5}, 52));
  CHECK_GRADCHECK([&](Vars v) { return fiber::cross_entropy(v[0].slice(1, 1, 9, 2), t2); }, rnd({5, 9}, 53));
}

TEST_CASE("gradcheck: cross_entropy with [N, C, d...] logits, one sample, probability targets") {
  auto t3 = I64::from_data({2, 3}, {0, -100, 2, 1, 1, 0});
  auto w = rnd({3}, 54, 0.5, 2);
  for (Reduction r : kReductions)
    CHECK_GRADCHECK(
        [&](Vars v) { return fiber::cross_entropy(v[0], t3, {.weight = w, .label_smoothing = 0.2, .reduction = r}); },
        rnd({2, 3, 3}, 55, -2, 2));
  CHECK_GRADCHECK([&](Vars v) { return fiber::cross_entropy(v[0].permute({0, 2, 1}), t3, {.label_smoothing = 0.1}); },
                  rnd({2, 3, 3}, 56));
  CHECK_GRADCHECK([](Vars v) { return fiber::cross_entropy(v[0], I64::scalar(1), {.label_smoothing = 0.1}); },
                  rnd({4}, 57));
  // Probability targets: gradients for both logits and targets.
  for (Reduction r : kReductions) {
    INFO("reduction " << r);
    CHECK_GRADCHECK([&](Vars v) { return fiber::cross_entropy(v[0], v[1], {.reduction = r}); }, rnd({4, 3}, 58),
                    rnd({4, 3}, 59, 0, 1));
    CHECK_GRADCHECK(
        [&](Vars v) { return fiber::cross_entropy(v[0], v[1], {.weight = w, .label_smoothing = 0.2, .reduction = r}); },
        rnd({2, 3, 2}, 60), rnd({2, 3, 2}, 61, 0, 1));
  }
}

TEST_CASE("cross_entropy: bad inputs name the op, the shapes and the offending target") {
  auto x = Tensor<float>::zeros({4, 5});
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, I64::zeros({3})),
                       doctest::Contains("cross_entropy: target of shape [3] for logits of shape [4, 5]; expected class "
                                         "indices of shape [4]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, I64::from_data({4}, {0, 1, 7, 2})),
                       doctest::Contains("cross_entropy: target 7 at position [2] is out of range [0, 5)"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, I64::from_data({4}, {0, -1, 2, 2})),
                       doctest::Contains("target -1 at position [1] is out of range [0, 5) (target shape [4], "
                                         "ignore_index -100)"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(Tensor<float>::zeros({2, 3, 2}), I64::from_data({2, 2}, {0, 1, 2, 3})),
                       doctest::Contains("target 3 at position [1, 1] is out of range [0, 3)"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, I64::zeros({4}), {.weight = Tensor<float>::ones({4})}),
                       doctest::Contains("cross_entropy: weight of shape [4] for 5 classes (logits [4, 5]); expected [5]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, I64::zeros({4}), {.weight = Tensor<float>::ones({1, 5})}),
                       doctest::Contains("weight of shape [1, 5] for 5 classes"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, I64::zeros({4}), {.label_smoothing = 1.5}),
                       doctest::Contains("cross_entropy: label_smoothing must be in [0, 1], got 1.5"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, Tensor<float>::zeros({4, 4})),
                       doctest::Contains("cross_entropy: probability target of shape [4, 4] for logits of shape [4, 5]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(x, Tensor<float>::zeros({4, 5}), {.ignore_index = 0}),
                       doctest::Contains("cross_entropy: ignore_index 0 is not supported with probability targets"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(Tensor<float>::scalar(1.f), I64::scalar(0)),
                       doctest::Contains("cross_entropy: logits must be [C], [N, C] or [N, C, d1, ...], got shape []"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(Tensor<float>::zeros({3, 0}), I64::zeros({3})),
                       doctest::Contains("cross_entropy: logits of shape [3, 0] have no classes"), fiber::Error);
  Var<double> v = Var<double>::parameter(Tensor<double>::zeros({2, 3}));
  CHECK_THROWS_WITH_AS(fiber::cross_entropy(v, I64::from_data({2}, {3, 0})),
                       doctest::Contains("target 3 at position [0] is out of range [0, 3)"), fiber::Error);
}
