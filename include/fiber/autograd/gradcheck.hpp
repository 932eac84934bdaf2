#pragma once
// gradcheck: compares the gradients backward computes with central finite differences, in
// float64. The function's output is reduced to a scalar with fixed random weights,
// L = sum(w * f(x)), so one backward gives dL/dx for every input element, and each element's
// numerical derivative needs two evaluations of f.
#include <cmath>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber {

struct GradcheckOptions {
  double eps = 1e-6;    // finite-difference step
  double atol = 1e-5;   // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  std::uint64_t seed = 12345;  // of the output weights
};

struct GradcheckResult {
  bool ok = true;
  double worst = 0;     // largest |analytic - numeric| / (atol + rtol |numeric|)
  std::string message;  // the first mismatch, when !ok
};

using GradcheckFunction = std::function<Var<double>(std::span<const Var<double>>)>;

inline GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                                 const GradcheckOptions& opt = {}) {
  std::vector<Var<double>> vars;
  for (const auto& x : inputs) vars.emplace_back(x.clone(), true);
  Var<double> out = f(vars);
  Generator gen(opt.seed);
  const Tensor<double> w = randn<double>(out.shape(), gen);
  Var<double> loss = sum(Var<double>(out * w));
  loss.backward();

  auto objective = [&]() {
    NoGrad no_grad;
    return sum(f(vars).value() * w).item();
  };
  GradcheckResult result;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const Tensor<double>& x = vars[i].value();
    const Tensor<double> analytic = vars[i].grad().defined() ? vars[i].grad() : Tensor<double>::zeros(x.shape());
    FIBER_CHECK(analytic.shape() == x.shape(), "gradcheck: input ", i, " has shape ", x.shape(), " but its gradient ",
                analytic.shape());
    const auto a = analytic.to_vector();
    double* data = x.data();  // a fresh contiguous clone, so element j is data[j]
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      const double saved = data[j];
      data[j] = saved + opt.eps;
      const double plus = objective();
      data[j] = saved - opt.eps;
      const double minus = objective();
      data[j] = saved;
      const double numeric = (plus - minus) / (2 * opt.eps);
      const double ratio = std::abs(a[j] - numeric) / (opt.atol + opt.rtol * std::abs(numeric));
      result.worst = std::max(result.worst, std::isnan(ratio) ? 1e300 : ratio);
      if (result.ok && !(ratio <= 1.0)) {
        result.ok = false;
        std::ostringstream m;
        m << "input " << i << " (shape " << x.shape() << ") element " << j << ": analytic " << a[j] << ", numeric "
          << numeric;
        result.message = m.str();
      }
    }
  }
  return result;
}

}  // namespace fiber
