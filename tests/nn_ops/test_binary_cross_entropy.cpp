// binary_cross_entropy_with_logits and log_sigmoid: hand-checked values, stability, PyTorch
// parity (float32) for every reduction with/without weight and pos_weight, gradcheck (float64)
// for logits and targets, errors.
#include "nn_test_util.hpp"

using fiber::BinaryCrossEntropyOptions;
using fiber::Reduction;
using fiber::Tensor;
using fiber::Var;
using fiber::test::check_parity;
using fiber::test::fixture;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("log_sigmoid: values, both tails, and its gradient") {
  auto x = Tensor<double>::from_data({5}, {-800, -20, 0, 20, 800});
  Tensor<double> y = fiber::log_sigmoid(x);
  CHECK(y.at({0}) == -800.0);
  CHECK(y.at({1}) == doctest::Approx(-20 - std::log1p(std::exp(-20.0))).epsilon(1e-15));
  CHECK(y.at({2}) == doctest::Approx(-std::log(2.0)).epsilon(1e-15));
  CHECK(y.at({3}) == doctest::Approx(-std::exp(-20.0)).epsilon(1e-9));  // not rounded to 0
  CHECK(y.at({4}) == 0.0);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::log_sigmoid(v[0])); }, rnd({3, 4}, 70, -6, 6));
}

TEST_CASE("binary_cross_entropy_with_logits: hand-checked values") {
  // x = 0: log 2 whatever the target.
  auto x0 = Tensor<double>::zeros({2, 2});
  auto t = Tensor<double>::from_data({2, 2}, {0, 1, 0.3, 1});
  CHECK(fiber::binary_cross_entropy_with_logits(x0, t).item() == doctest::Approx(std::log(2.0)).epsilon(1e-14));
  // -[pw * t * log s(x) + (1 - t) * log(1 - s(x))] * w
  auto x = Tensor<double>::from_data({3}, {0.5, -1.5, 2});
  auto tt = Tensor<double>::from_data({3}, {1, 0, 0.25});
  auto w = Tensor<double>::from_data({3}, {2, 1, 0.5});
  auto pw = Tensor<double>::from_data({3}, {3, 3, 3});
  auto loss = fiber::binary_cross_entropy_with_logits(x, tt, {.weight = w, .pos_weight = pw, .reduction = Reduction::none});
  auto s = [](double v) { return 1 / (1 + std::exp(-v)); };
  double expected_sum = 0;
  for (int i = 0; i < 3; ++i) {
    const double xi = x.at({i}), ti = tt.at({i});
    const double expected = -w.at({i}) * (3 * ti * std::log(s(xi)) + (1 - ti) * std::log(1 - s(xi)));
    CHECK(loss.at({i}) == doctest::Approx(expected).epsilon(1e-13));
    expected_sum += expected;
  }
  auto sum = fiber::binary_cross_entropy_with_logits(x, tt, {.weight = w, .pos_weight = pw, .reduction = Reduction::sum});
  CHECK(sum.item() == doctest::Approx(expected_sum).epsilon(1e-13));
  // No input: mean is NaN (0 / 0), sum is 0, as in PyTorch.
  auto e = Tensor<double>::zeros({0, 3});
  CHECK(std::isnan(fiber::binary_cross_entropy_with_logits(e, e).item()));
  CHECK(fiber::binary_cross_entropy_with_logits(e, e, {.reduction = Reduction::sum}).item() == 0.0);
}

TEST_CASE("binary_cross_entropy_with_logits is stable for logits of +-1000 (float32)") {
  auto x = Tensor<float>::from_data({4}, {1000.f, -1000.f, 1000.f, -1000.f});
  auto t = Tensor<float>::from_data({4}, {1.f, 0.f, 0.f, 1.f});
  auto loss = fiber::binary_cross_entropy_with_logits(x, t, {.reduction = Reduction::none});
  CHECK(loss.at({0}) == 0.f);
  CHECK(loss.at({1}) == 0.f);
  CHECK(loss.at({2}) == 1000.f);
  CHECK(loss.at({3}) == 1000.f);
}

TEST_CASE("parity with PyTorch (float32): every reduction with/without weight and pos_weight") {
  auto x = fixture("bce_logits"), t = fixture("bce_target"), w = fixture("bce_weight"), pw = fixture("bce_pos_weight");
  const char* names[] = {"none", "mean", "sum"};
  const Reduction reductions[] = {Reduction::none, Reduction::mean, Reduction::sum};
  for (int r = 0; r < 3; ++r) {
    auto losses = fixture(std::string("bce_loss_") + names[r]);
    auto grad_x = fixture(std::string("bce_grad_logits_") + names[r]);
    auto grad_t = fixture(std::string("bce_grad_target_") + names[r]);
    for (int k = 0; k < 4; ++k) {
      BinaryCrossEntropyOptions<float> opt{.weight = k >= 2 ? w : Tensor<float>(),
                                           .pos_weight = k % 2 ? pw : Tensor<float>(),
                                           .reduction = reductions[r]};
      const std::string what = std::string("bce [6,9] ") + names[r] + (k >= 2 ? " weight" : "") +
                               (k % 2 ? " pos_weight" : "");
      for (bool contiguous : {true, false}) {
        Var<float> vx = Var<float>::parameter(contiguous ? x : fiber::test::noncontiguous(x));
        Var<float> vt = Var<float>::parameter(t);
        Var<float> loss = fiber::binary_cross_entropy_with_logits(vx, vt, opt);
        if (r == 0) loss.backward(fixture("bce_g_none"));
        else loss.backward();
        const std::string label = what + (contiguous ? "" : " non-contig");
        check_parity((label + " loss").c_str(), loss.value(), losses.select(0, k), 1e-5, 1e-5);
        check_parity((label + " grad logits").c_str(), vx.grad(), grad_x.select(0, k), 1e-4, 1e-6);
        check_parity((label + " grad target").c_str(), vt.grad(), grad_t.select(0, k), 1e-4, 1e-5);
      }
      // The tensor overload gives the same values as the Var one.
      check_parity((what + " tensor loss").c_str(), fiber::binary_cross_entropy_with_logits(x, t, opt),
                   losses.select(0, k), 1e-5, 1e-5);
    }
  }
}

TEST_CASE("gradcheck: binary_cross_entropy_with_logits for logits and targets") {
  auto x = rnd({4, 5}, 80, -4, 4), t = rnd({4, 5}, 81, 0, 1);
  auto w = rnd({4, 1}, 82, 0.5, 2), pw = rnd({5}, 83, 0.5, 3);
  for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
    for (int k = 0; k < 4; ++k) {
      INFO("reduction " << r << ", combo " << k);
      BinaryCrossEntropyOptions<double> opt{.weight = k >= 2 ? w : Tensor<double>(),
                                            .pos_weight = k % 2 ? pw : Tensor<double>(),
                                            .reduction = r};
      CHECK_GRADCHECK([&](Vars v) { return fiber::binary_cross_entropy_with_logits(v[0], v[1], opt); }, x, t);
    }
  }
  // Non-contiguous logits and a plain-tensor target.
  CHECK_GRADCHECK([&](Vars v) { return fiber::binary_cross_entropy_with_logits(v[0].t(), t, {.pos_weight = pw}); },
                  rnd({5, 4}, 84, -4, 4));
}

TEST_CASE("binary_cross_entropy_with_logits: bad shapes name the op and the operands") {
  auto x = Tensor<float>::zeros({3, 4});
  CHECK_THROWS_WITH_AS(fiber::binary_cross_entropy_with_logits(x, Tensor<float>::zeros({4, 3})),
                       doctest::Contains("binary_cross_entropy_with_logits: targets of shape [4, 3] for logits of shape "
                                         "[3, 4]; they must have the same shape"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::binary_cross_entropy_with_logits(x, Tensor<float>::zeros({4})),
                       doctest::Contains("targets of shape [4] for logits of shape [3, 4]"), fiber::Error);
  CHECK_THROWS_WITH_AS(
      fiber::binary_cross_entropy_with_logits(x, x, {.weight = Tensor<float>::ones({3})}),
      doctest::Contains("binary_cross_entropy_with_logits: weight of shape [3] does not broadcast to the logits' shape "
                        "[3, 4]"),
      fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::binary_cross_entropy_with_logits(x, x, {.pos_weight = Tensor<float>::ones({5})}),
                       doctest::Contains("pos_weight of shape [5] does not broadcast to the logits' shape [3, 4]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::binary_cross_entropy_with_logits(x, x, {.pos_weight = Tensor<float>::ones({2, 3, 4})}),
                       doctest::Contains("pos_weight of shape [2, 3, 4] does not broadcast"), fiber::Error);
  Var<double> v = Var<double>::parameter(Tensor<double>::zeros({2, 2}));
  CHECK_THROWS_WITH_AS(fiber::binary_cross_entropy_with_logits(v, Tensor<double>::zeros({2, 3})),
                       doctest::Contains("targets of shape [2, 3] for logits of shape [2, 2]"), fiber::Error);
}
