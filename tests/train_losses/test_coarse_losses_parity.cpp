// Parity of one coarse pre-training step (MLM + ITC + ITM with hard negatives) with the official
// objectives.py (fixtures: tests/reference/make_coarse_losses.py). The random choices (masked
// tokens, drawn negatives) are fed in; the queue starts 4 of 6 entries full, so both its valid and
// its never-filled part are exercised, and temp starts at 1.3 so that the clamp is too.
//
// Tolerances: each loss within 1e-5 relative of the official float64 step; each parameter's
// gradient within 1e-4 of its largest element (floored at 1e-3 of the largest gradient of all, for
// gradients that are 0 in exact arithmetic), against the official float64 step. The official
// float32 step is itself 1.6e-5 from float64 by this measure.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/losses/coarse_pretrain.hpp"
#include "fiber/nn/state_dict.hpp"

using namespace fiber;

namespace {

// The official infer() hard-codes stage-3 depth 18, stage-4 depth 2 and 12 text layers; the widths
// are the smallest that keep every head dimension >= 4.
inline constexpr models::FiberCoarseConfig FiberLossTinyCoarse{
    .swin = {.image_size = 64, .embed_dim = 4, .depths = {2, 2, 18, 2}, .num_heads = {1, 1, 1, 2}, .drop_path_rate = 0.0},
    .text = {.vocab_size = 200, .hidden = 16, .heads = 2, .layers = 12, .intermediate = 64, .max_positions = 20, .dropout = 0.0},
    .num_fuse_block = 6,
    .hidden = 16,
    .mlm_vocab = 200,
    .max_text_len = 16,
};
using Model = models::FiberCoarse<float, FiberLossTinyCoarse>;

std::string fixture(const std::string& name) { return std::string(FIBER_TEST_DATA_DIR) + "/coarse_losses/" + name; }
const io::Checkpoint& step() {
  static const io::Checkpoint c = io::open_checkpoint(fixture("step.safetensors"));
  return c;
}
template <class T>
Tensor<T> ref(const std::string& name) { return io::load_tensor<T>(step(), name); }

struct Step {
  Model model;
  losses::CoarseQueue<float> queue;
  losses::CoarseBatch<float> batch;
  losses::FedNegatives fed;
  losses::CoarseLosses<float> out;
};

// Loads the weights and the queue, runs the step with the fed choices, backward; with `share`, the
// image blocks before fusion run once for the three passes (CoarseObjectives::share_image_prefix).
Step* make_step(bool share) {
  auto* st = new Step;
  nn::load_state_dict<float>(st->model, io::open_checkpoint(fixture("weights.safetensors")), Model::load_options());
  st->model.temp.value().fill_(1.3f);
  auto& q = st->queue;
  q.image_feats = ref<float>("before.image_queue");
  q.text_feats = ref<float>("before.text_queue");
  q.images = ref<float>("before.image_input_queue");
  q.text_ids = ref<std::int64_t>("before.text_input_queue");
  q.text_masks = ref<std::int64_t>("before.text_input_mask_queue");
  q.ptr = ref<std::int64_t>("before.queue_ptr").data()[0];
  q.total = ref<std::int64_t>("before.queue_total").data()[0];
  st->batch = {ref<float>("image"), ref<std::int64_t>("text_ids"), ref<std::int64_t>("text_masks"),
               ref<std::int64_t>("mlm_ids"), ref<std::int64_t>("mlm_labels")};
  st->fed = {ref<std::int64_t>("image_negatives"), ref<std::int64_t>("text_negatives")};
  Generator gen(1);
  nn::ForwardContext<float> ctx;
  ctx.training = true;  // dropout and drop path are 0 in this configuration, as in the fixture
  ctx.rng = &gen;
  losses::CoarseObjectives which;
  which.share_image_prefix = share;
  st->out = losses::coarse_pretrain_losses(st->model, st->batch, st->queue, gen, ctx, which, &st->fed);
  st->out.total.backward();
  return st;
}
Step& run_step() {
  static Step* s = make_step(false);
  return *s;
}
Step& run_shared_step() {
  static Step* s = make_step(true);
  return *s;
}

std::string metadata(const std::string& key) {
  for (const auto& [k, v] : step().metadata())
    if (k == key) return v;
  FIBER_CHECK(false, "coarse_losses/step.safetensors: no metadata entry ", key);
  return {};
}

double loss_of(const Var<float>& v) { return double(v.value().item()); }

}  // namespace

static void check_losses(Step& s) {
  const std::pair<const char*, const Var<float>*> losses[] = {
      {"mlm", &s.out.mlm}, {"itc", &s.out.itc}, {"itm", &s.out.itm}, {"total", &s.out.total}};
  for (auto [name, v] : losses) {
    const double want = ref<double>(std::string("loss64.") + name).item();
    INFO(name << ": ours " << loss_of(*v) << ", official " << want);
    CHECK(std::abs(loss_of(*v) - want) <= 1e-5 * std::abs(want));
  }
  CHECK(s.model.temp.value().item() == 1.0f);  // clamped from 1.3
  CHECK(s.out.mlm_tokens > 0);
}

static void check_gradients(Step& s) {
  const auto no_gradient = nlohmann::json::parse(metadata("no_gradient")).get<std::set<std::string>>();
  double global = 0;
  for (const std::string& name : step().names())
    if (name.rfind("grad.", 0) == 0) {
      const Tensor<double> g = ref<double>(name);
      for (std::int64_t i = 0; i < g.numel(); ++i) global = std::max(global, std::abs(g.data()[i]));
    }
  REQUIRE(global > 0);
  int compared = 0;
  double worst = 0;
  std::string worst_name;
  for (auto& [name, p] : nn::named_parameters<float>(s.model)) {
    const bool reached = p->grad().defined() && p->grad().numel() > 0;
    if (no_gradient.count(name)) {
      // Unused by the official step; ours may hold zeros (a tied view, a bypassed norm) but nothing else.
      if (reached) {
        const Tensor<float> g = p->grad().contiguous();
        double m = 0;
        for (std::int64_t i = 0; i < g.numel(); ++i) m = std::max(m, double(std::abs(g.data()[i])));
        INFO(name);
        CHECK(m == 0.0);
      }
      continue;
    }
    INFO(name);
    REQUIRE(reached);
    const Tensor<double> want = ref<double>("grad." + name);
    const Tensor<float> got = p->grad().contiguous();
    REQUIRE(got.shape() == want.shape());
    double diff = 0, scale = 0;
    for (std::int64_t i = 0; i < want.numel(); ++i) {
      diff = std::max(diff, std::abs(double(got.data()[i]) - want.data()[i]));
      scale = std::max(scale, std::abs(want.data()[i]));
    }
    const double err = diff / std::max(scale, 1e-3 * global);
    if (err > worst) worst = err, worst_name = name;
    CHECK(err <= 1e-4);
    ++compared;
  }
  MESSAGE("gradients compared: " << compared << ", worst " << worst << " (" << worst_name << ")");
  CHECK(compared + int(no_gradient.size()) >= int(nn::named_parameters<float>(s.model).size()));
}

static void check_queue(Step& s) {
  const auto& q = s.queue;
  CHECK(q.ptr == ref<std::int64_t>("after.queue_ptr").data()[0]);
  CHECK(q.total == ref<std::int64_t>("after.queue_total").data()[0]);
  for (const char* which : {"image_queue", "text_queue"}) {
    const Tensor<double> want = ref<double>(std::string("after.") + which);
    const Tensor<float> got = (std::string(which) == "image_queue" ? q.image_feats : q.text_feats).contiguous();
    REQUIRE(got.shape() == want.shape());
    double diff = 0;
    for (std::int64_t i = 0; i < want.numel(); ++i) diff = std::max(diff, std::abs(double(got.data()[i]) - want.data()[i]));
    INFO(which);
    CHECK(diff <= 1e-5);
  }
  const Tensor<std::int64_t> ids = ref<std::int64_t>("after.text_input_queue"), masks = ref<std::int64_t>("after.text_input_mask_queue");
  CHECK(q.text_ids.to_vector() == ids.to_vector());
  CHECK(q.text_masks.to_vector() == masks.to_vector());
  // The batch's pixels went to the rows [ptr_before, ptr_before + B) modulo the size; the others kept theirs.
  const Tensor<float> before = ref<float>("before.image_input_queue");
  const std::int64_t B = s.batch.size(), Q = q.size(), p0 = ref<std::int64_t>("before.queue_ptr").data()[0];
  for (std::int64_t r = 0; r < Q; ++r) {
    const std::int64_t k = (r - p0 + Q) % Q;
    const Tensor<float> want = k < B ? s.batch.images.select(0, k) : before.select(0, r);
    CHECK(q.images.select(0, r).contiguous().to_vector() == want.contiguous().to_vector());
  }
}

TEST_CASE("coarse pre-training: each loss equals the official step's") { check_losses(run_step()); }
TEST_CASE("coarse pre-training: the gradient of every parameter equals the official step's") { check_gradients(run_step()); }
TEST_CASE("coarse pre-training: the queue after the step equals the official one") { check_queue(run_step()); }
TEST_CASE("coarse pre-training with the image prefix shared by the three passes: the same losses, gradients, queue") {
  Step& s = run_shared_step();
  check_losses(s);
  check_gradients(s);
  check_queue(s);
}
