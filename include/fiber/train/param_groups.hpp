#pragma once
// Parameter groups of the official coarse recipe (microsoft/FIBER,
// coarse_grained/fiber/modules/fiber_utils.py, set_schedule): parameters are split by plain
// substring tests on their official state-dict names into six groups,
//
//   group                 name contains                          weight decay  lr
//   decay                 no no_decay, no head, no cross_modal   wd            lr
//   no_decay              a no_decay, no head, no cross_modal    0             lr
//   head_decay            no no_decay, a head, no cross_modal    wd            lr * lr_mult_head
//   head_no_decay         a no_decay, a head, no cross_modal     0             lr * lr_mult_head
//   cross_modal_decay     no no_decay, no head, a cross_modal    wd            lr * lr_mult_cross_modal
//   cross_modal_no_decay  a no_decay, no head, a cross_modal     0             lr * lr_mult_cross_modal
//
// The tests are literal substring tests, so "relative_position_bias_table" contains "bias" and
// gets no decay, and a name that contains both a head and a cross-modal substring belongs to NO
// group: the official code never trains it. We keep that rule (parity) but make it visible:
// ParamGroups::excluded lists those names, and the trainer reports them.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/error.hpp"

namespace fiber::train {

// The substring lists of set_schedule, verbatim.
inline constexpr std::array<std::string_view, 9> no_decay_names = {
    "bias",        "LayerNorm.bias", "LayerNorm.weight", "norm.bias",   "norm.weight",
    "norm1.bias",  "norm1.weight",   "norm2.bias",       "norm2.weight"};
inline constexpr std::array<std::string_view, 5> head_names = {"vqa_classifier", "nlvr2_classifier", "mlm_score",
                                                                "itm_score", "snli_classifier"};
inline constexpr std::array<std::string_view, 3> cross_modal_names = {"cross_modal", "i2t", "t2i"};

template <std::size_t N>
bool contains_any(std::string_view name, const std::array<std::string_view, N>& parts) {
  for (std::string_view p : parts)
    if (name.find(p) != std::string_view::npos) return true;
  return false;
}

// The configuration fields of set_schedule (coarse_grained/fiber/config.py defaults).
struct GroupOptions {
  double learning_rate = 1e-4;
  double weight_decay = 0.01;
  double lr_mult_head = 5;
  double lr_mult_cross_modal = 5;
};

// One named parameter as the optimiser sees it.
struct NamedParam {
  std::string name;
  Var<float>* var = nullptr;
};

struct ParamGroup {
  std::string name;     // "decay", "no_decay", "head_decay", ... (ours; the official groups are unnamed)
  double lr = 0;        // the group's initial lr; the schedule multiplies it
  double weight_decay = 0;
  std::vector<NamedParam> params;
};

struct ParamGroups {
  std::vector<ParamGroup> groups;     // always the six, in the official order (some may be empty)
  std::vector<std::string> excluded;  // names matching both a head and a cross-modal substring
};

// The index (0..5) of the official group `name` falls in, or -1 when it is in none.
inline int official_group_index(std::string_view name) {
  const bool nd = contains_any(name, no_decay_names);
  const bool head = contains_any(name, head_names);
  const bool cross = contains_any(name, cross_modal_names);
  if (head && cross) return -1;
  const int base = head ? 2 : cross ? 4 : 0;
  return base + (nd ? 1 : 0);
}

// Splits `params` (official names, in the model's order) into the six official groups; within a
// group, parameters keep their given order (as the official list comprehensions do).
inline ParamGroups make_param_groups(const std::vector<std::pair<std::string, Var<float>*>>& params,
                                     const GroupOptions& options = {}) {
  FIBER_CHECK(options.learning_rate >= 0, "make_param_groups: learning_rate ", options.learning_rate, " is negative");
  FIBER_CHECK(options.weight_decay >= 0, "make_param_groups: weight_decay ", options.weight_decay, " is negative");
  FIBER_CHECK(options.lr_mult_head >= 0 && options.lr_mult_cross_modal >= 0,
              "make_param_groups: lr multipliers must be non-negative");
  const double lr = options.learning_rate, wd = options.weight_decay;
  ParamGroups out;
  out.groups = {{"decay", lr, wd, {}},
                {"no_decay", lr, 0.0, {}},
                {"head_decay", lr * options.lr_mult_head, wd, {}},
                {"head_no_decay", lr * options.lr_mult_head, 0.0, {}},
                {"cross_modal_decay", lr * options.lr_mult_cross_modal, wd, {}},
                {"cross_modal_no_decay", lr * options.lr_mult_cross_modal, 0.0, {}}};
  std::unordered_set<std::string_view> seen;  // names key the optimiser state: they must be unique
  for (const auto& [name, var] : params) {
    FIBER_CHECK(var != nullptr && var->defined(), "make_param_groups: parameter '", name, "' is undefined");
    FIBER_CHECK(seen.insert(name).second, "make_param_groups: parameter name '", name, "' occurs twice");
    const int g = official_group_index(name);
    if (g < 0) out.excluded.push_back(name);
    else out.groups[std::size_t(g)].params.push_back({name, var});
  }
  return out;
}

// The names no group trains (the official rule drops them), for reporting.
inline std::vector<std::string> excluded_parameter_names(const std::vector<std::pair<std::string, Var<float>*>>& params) {
  std::vector<std::string> out;
  for (const auto& [name, var] : params)
    if (official_group_index(name) < 0) out.push_back(name);
  return out;
}

}  // namespace fiber::train
