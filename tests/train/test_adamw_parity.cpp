// AdamW + official parameter groups + polynomial schedule + clip_grad_norm_ against the
// reference run of tests/reference/make_adamw.py (HF AdamW restated in torch, the pinned
// transformers' schedule): every parameter after every step within 1e-6 relative.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/train/adamw.hpp"
#include "fiber/train/grad_clip.hpp"
#include "fiber/train/lr_schedule.hpp"
#include "fiber/train/param_groups.hpp"

using fiber::Tensor;
using fiber::Var;
namespace train = fiber::train;

namespace {

std::string metadata(const fiber::io::Checkpoint& c, const std::string& key) {
  for (const auto& [k, v] : c.metadata())
    if (k == key) return v;
  FAIL("fixture metadata lacks ", key);
  return {};
}

// max |a-b| / (|b| + 1e-6) over all elements
double relative_error(const Tensor<float>& a, const Tensor<float>& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i)
    worst = std::max(worst, std::abs(double(va[i]) - double(vb[i])) / (std::abs(double(vb[i])) + 1e-6));
  return worst;
}

}  // namespace

TEST_CASE("AdamW, groups, schedule and clipping match the official recipe step by step") {
  const auto fixture = fiber::io::open_checkpoint(std::string(FIBER_TEST_DATA_DIR) + "/train/adamw.safetensors");
  const int steps = std::stoi(metadata(fixture, "steps"));
  const std::int64_t total = std::stoll(metadata(fixture, "total"));
  const double lr = std::stod(metadata(fixture, "lr")), wd = std::stod(metadata(fixture, "weight_decay"));
  const double warmup_fraction = std::stod(metadata(fixture, "warmup_fraction"));
  const double max_norm = std::stod(metadata(fixture, "max_norm"));

  // Parameters in the fixture's (file) order of their init.* entries; the order inside a group
  // does not change any result.
  std::vector<std::string> names;
  for (const std::string& n : fixture.names())
    if (n.rfind("init.", 0) == 0) names.push_back(n.substr(5));
  std::map<std::string, Var<float>> vars;
  std::vector<std::pair<std::string, Var<float>*>> named;
  for (const std::string& n : names) vars[n] = Var<float>::parameter(fiber::io::load_tensor<float>(fixture, "init." + n));
  for (const std::string& n : names) named.emplace_back(n, &vars[n]);
  std::vector<Var<float>*> all;
  for (auto& [n, v] : named) all.push_back(v);

  train::ParamGroups groups = train::make_param_groups(named, {lr, wd, 5, 5});
  REQUIRE(groups.excluded == std::vector<std::string>{"cross_modal_itm_score.weight"});
  train::AdamW adamw(groups, {0.9, 0.98, 1e-8});
  const train::PolynomialDecaySchedule schedule = train::linear_warmup_decay(total, warmup_fraction, lr);

  double worst = 0, worst_lr = 0, worst_norm = 0;
  for (int k = 0; k < steps; ++k) {
    for (auto& [n, v] : vars) {
      const std::string key = "grad." + std::to_string(k) + "." + n;
      if (fixture.contains(key)) v.set_grad(fiber::io::load_tensor<float>(fixture, key));
      else v.zero_grad();
    }
    adamw.set_lr_factor(schedule.factor(k));
    const auto lrs = fiber::io::load_tensor<double>(fixture, "lr." + std::to_string(k)).to_vector();
    REQUIRE(lrs.size() == 6);
    for (std::size_t g = 0; g < 6; ++g)
      worst_lr = std::max(worst_lr, std::abs(adamw.lr(g) - lrs[g]) / (std::abs(lrs[g]) + 1e-30));
    const double norm = train::clip_grad_norm(all, max_norm);
    const double ref_norm = fiber::io::load_tensor<float>(fixture, "norm." + std::to_string(k)).item();
    worst_norm = std::max(worst_norm, std::abs(norm - ref_norm) / ref_norm);
    adamw.step();
    for (auto& [n, v] : vars) {
      const double e = relative_error(v.value(), fiber::io::load_tensor<float>(fixture, "after." + std::to_string(k) + "." + n));
      INFO("step ", k, " parameter ", n, " relative error ", e);
      CHECK(e <= 1e-6);
      worst = std::max(worst, e);
    }
  }
  MESSAGE("AdamW parity over ", steps, " steps: parameters ", worst, ", lr ", worst_lr, ", clip norm ", worst_norm,
          " (max relative error)");
  CHECK(worst_lr <= 1e-12);
  CHECK(worst_norm <= 1e-6);
  // The parameter that had no gradient for two steps has had only the later updates.
  CHECK(adamw.state("itm_score.fc.bias").step == steps - 2);
  CHECK(adamw.state("itm_score.fc.weight").step == steps);
}
