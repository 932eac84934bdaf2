// One coarse pre-training step (MLM + ITC with a queue of 16 + ITM on 3B pairs with hard negatives,
// then backward and an AdamW update), in training mode, on random weights and inputs, with the
// peak memory of the process and what holds it:
//   weights, gradients, AdamW m and v   from the parameter count (4 bytes each)
//   activations and saved tensors       the rest of the peak RSS over the RSS before the step
// Configurations: base (FIBER-B 384, text 40 tokens, dropout and drop path as the official
// recipe), base224 (the same at 224 px, window 7: batch 8 of base needs ~30 GB), tiny (models::FiberTinyCoarse: the official schedule at small widths, 128 px) and demo (models::FiberDemoCoarse, 64 px, no drop path: also with the image prefix
// shared by the three passes). With --torch PYTHON, bench_train_step_torch.py times the OFFICIAL
// step (objectives.compute_mlm / compute_itc / compute_itm_hardneg + backward) on the same batch
// and threads in its own process (base and tiny; the official code cannot build the demo model).
//
//   build-bench/bench/bench_train_step --config base --batch 8 --torch $PY --threads 2
//   build-bench/bench/bench_train_step --config tiny --batch 8 --torch $PY
//   build-bench/bench/bench_train_step --config demo --batch 32 [--share 0]
// Run one configuration per process: the peak RSS is the process's.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"
#include "fiber/models/coarse_init.hpp"

using namespace fiber;

namespace {

// FIBER-B at 224 x 224 (window 7): the same weights; batch 8 of it fits where 384's does not.
inline constexpr models::FiberCoarseConfig FiberBaseCoarse224 = [] {
  models::FiberCoarseConfig c;
  c.swin.image_size = 224;
  return c;
}();

double rss_mb() {  // current resident set, from /proc/self/statm
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

struct Options {
  std::string config = "base", python;
  int batch = 1, threads = 0, repeats = 3, warmup = 1, share = 1;
};

template <models::FiberCoarseConfig C>
int run(const Options& o, const char* name, const char* torch_config, bool share_prefix) {
  const std::int64_t B = o.batch, L = C.max_text_len, S = C.swin.image_size, V = C.text.vocab_size;
  // The official step first, in its own process, while this one holds nothing yet: FIBER-B's
  // two processes together would not fit where each alone does.
  double torch_t = 0, torch_rss = 0;
  if (!o.python.empty() && torch_config) {
    const std::string cmd = o.python + " " + FIBER_BENCH_DIR + "/bench_train_step_torch.py --config " + torch_config + " --batch " +
                            std::to_string(o.batch) + " --threads " + std::to_string(o.threads ? o.threads : num_threads()) +
                            " --repeats " + std::to_string(o.repeats) + " --warmup " + std::to_string(o.warmup);
    std::FILE* p = popen(cmd.c_str(), "r");
    FIBER_CHECK(p, "bench_train_step: cannot run ", cmd);
    char line[512];
    while (std::fgets(line, sizeof line, p)) {
      std::sscanf(line, "time\t%lf", &torch_t);
      std::sscanf(line, "rss\t%lf", &torch_rss);
    }
    pclose(p);
  }
  auto model = std::make_unique<models::FiberCoarse<float, C>>();
  models::init_coarse(*model, 1);
  std::vector<std::pair<std::string, Var<float>*>> params;
  model->visit("", [&](const std::string& k, nn::Entry<float> e) {
    if (e.role == nn::Role::parameter) params.emplace_back(k, e.var);
  });
  train::AdamW adamw(train::make_param_groups(params, {}));
  std::int64_t n_params = 0;
  for (auto& [k, p] : params) n_params += p->numel();

  Generator gen(3);
  losses::CoarseQueue<float> queue(16, C.hidden, S, L, gen, C.text.pad_token_id);
  queue.total = 16;
  losses::CoarseBatch<float> batch;
  batch.images = randn<float>({B, 3, S, S}, gen);
  batch.ids = Tensor<std::int64_t>::empty({B, L});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < L; ++i) batch.ids.at({b, i}) = i == 0 ? 0 : i == L - 1 ? 2 : 3 + (b * 131 + i * 17) % (V - 4);
  batch.masks = Tensor<std::int64_t>::ones({B, L});
  batch.mlm_ids = batch.ids.clone();
  batch.mlm_labels = Tensor<std::int64_t>::full({B, L}, -100);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 1; i < 7; ++i) batch.mlm_labels.at({b, i}) = batch.ids.at({b, i}), batch.mlm_ids.at({b, i}) = V - 1;

  nn::ForwardContext<float> ctx;
  ctx.training = true;
  ctx.rng = &gen;
  losses::CoarseObjectives which;
  which.share_image_prefix = share_prefix;
  auto step = [&] {
    losses::CoarseQueue<float> q = queue;  // the same queue every repeat (a shallow copy is fine: enqueue writes rows)
    std::function<void(const std::string&, const Var<float>&)> each;
    if (!share_prefix) each = [](const std::string&, const Var<float>& l) { l.backward(); };
    auto out = losses::coarse_pretrain_losses(*model, batch, q, gen, ctx, which, nullptr, each);
    if (share_prefix) out.total.backward();
  };
  // AdamW's state exists from the first update on: allocate it before measuring.
  step();
  adamw.step();
  adamw.zero_grad();
  const double before = rss_mb();
  // One training step as the issue counts it: forward, backward and the AdamW update.
  const double total = bench::median_seconds([&] { step(); adamw.step(); adamw.zero_grad(); }, o.repeats, o.warmup);
  step();
  const double update = bench::median_seconds([&] { adamw.step(); }, 1, 0);
  adamw.zero_grad();
  const double peak = train::peak_rss_mb();
  const double mib = double(n_params) * 4 / (1024.0 * 1024.0);
  std::printf("%s, batch %d (ITM %d pairs), %d threads, %s%s\n", name, o.batch, 3 * o.batch, num_threads(), bench::cpu_name().c_str(),
              share_prefix ? ", image prefix shared" : ", per-loss backward");
  std::printf("  fiber  step (forward + backward + AdamW)  %8.3f s   %7.1f images/s   (the update alone %.3f s, %lld parameters)\n",
              total, double(B) / total, update, static_cast<long long>(n_params));
  std::printf("  memory: peak RSS %.0f MiB = weights %.0f + gradients %.0f + AdamW m, v %.0f + activations and saved "
              "tensors %.0f + the rest (queue, inputs, code) %.0f MiB\n",
              peak, mib, mib, 2 * mib, peak - before, before - 4 * mib);
  if (torch_t > 0)
    std::printf("  torch  step (forward + backward + AdamW)  %8.3f s   %7.1f images/s   peak RSS %.0f MiB   fiber speed-up %.2fx\n",
                torch_t, double(B) / torch_t, torch_rss, torch_t / total);
  else if (!o.python.empty() && torch_config)
    std::printf("  torch  failed (see its stderr above)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    FIBER_CHECK(i + 1 < argc, "bench_train_step: ", a, " needs a value");
    const std::string v = argv[++i];
    if (a == "--config") o.config = v;
    else if (a == "--batch") o.batch = std::atoi(v.c_str());
    else if (a == "--threads") o.threads = std::atoi(v.c_str());
    else if (a == "--repeats") o.repeats = std::atoi(v.c_str());
    else if (a == "--torch") o.python = v;
    else if (a == "--share") o.share = std::atoi(v.c_str());
    else FIBER_CHECK(false, "bench_train_step: unknown option ", a);
  }
  FIBER_CHECK(o.batch >= 1 && o.batch <= 4096 && o.repeats >= 1, "bench_train_step: bad --batch or --repeats");
  if (o.threads) set_num_threads(o.threads);
  if (o.config == "base") return run<models::FiberBaseCoarse384>(o, "base (FIBER-B 384)", "base", false);
  if (o.config == "base224") return run<FiberBaseCoarse224>(o, "base224 (FIBER-B 224)", "base224", false);
  if (o.config == "tiny") return run<models::FiberTinyCoarse>(o, "tiny (FiberTinyCoarse, 128 px)", "tiny", false);
  FIBER_CHECK(o.config == "demo", "bench_train_step: --config base, base224, tiny or demo");
  return run<models::FiberDemoCoarse>(o, "demo", nullptr, o.share != 0);
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_train_step: %s\n", e.what());
  return 1;
}
