// Phrase grounding learnt on the CPU: a tiny fine-grained FIBER (models::FiberDemoFine) made from
// a coarse one as `fiber init fine` makes it, trained on the shapes world's boxes with the official
// fine-grained objectives (ATSS, token focal loss, GIoU, centerness) and recipe (AdamW groups,
// warmup and step decay, weight-decay drops, gradient clipping, EMA), then grounding every phrase
// of held-out captions through the Grounder: R@1 and R@5 (IoU >= 0.5) of each phrase's top boxes.
//
//   build/examples/ground_phrase/ground_phrase [--steps N] [--batch B] [--lr X] [--lang-lr X]
//       [--seed S] [--train N] [--val M] [--size PX] [--scale PX] [--coarse FILE] [--threads T]
//       [--draw K] [--out DIR] [--json]
//
// --coarse starts from a trained coarse demo model (examples/train_coarse's or `fiber train
// coarse --config demo`'s checkpoint); without it the coarse model is a fresh one with the
// official initialisation. Everything else is generated here; nothing is downloaded. The first K
// held-out scenes are written as PNGs with each phrase's best box (phrase number and score). With
// --json the last line of stdout is one JSON object with the figures.
#include <fiber/fiber.hpp>
#include <fiber/models/coarse_init.hpp>

#include <nlohmann/json.hpp>

#include "../common/example_options.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace train = fiber::train;
namespace models = fiber::models;
namespace fs = std::filesystem;

namespace {

constexpr models::FiberFineConfig kConfig = models::FiberDemoFine;
using Model = models::FiberFine<float, kConfig>;

struct Options {
  long long steps = 1200, batch = 8, seed = 0, train = 4000, val = 100, size = 64, scale = 128, threads = 0, draw = 4;
  double lr = 1e-3, lang_lr = -1;  // lang_lr < 0: the same as lr (the text backbone learns from scratch too)
  std::string out, coarse;
  bool json = false;
};

constexpr const char* kUsage =
    "usage: ground_phrase [--steps N] [--batch B] [--lr X] [--lang-lr X] [--seed S] [--train N] [--val M]\n"
    "                     [--size PX] [--scale PX] [--coarse FILE] [--threads T] [--draw K] [--out DIR] [--json]\n"
    "  --steps 1200      optimiser updates          --batch 8        images per step\n"
    "  --lr 1e-3         base learning rate         --lang-lr X      text backbone's (default: --lr)\n"
    "  --train 4000      training scenes            --val 100        held-out scenes\n"
    "  --size 64         scene size in pixels       --scale 128      size the model sees (resized)\n"
    "  --coarse FILE     start from a trained coarse demo checkpoint (default: a fresh one)\n"
    "  --threads T       worker threads (default: all cores)\n"
    "  --draw 4          held-out scenes written as PNGs with each phrase's best box\n"
    "  --out DIR         where data, run and pictures go (default: a temporary directory)\n"
    "  --json            last line of stdout: one JSON object with r1, r5, seconds, ...\n";

Options parse(int argc, char** argv) {
  const fiber_examples::OptionReader read("ground_phrase");
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (a == "--steps") o.steps = read.integer("--steps", v, 1, 10'000'000);
    else if (a == "--batch") o.batch = read.integer("--batch", v, 1, 4096);
    else if (a == "--seed") o.seed = read.integer("--seed", v, 0, (1LL << 53));
    else if (a == "--train") o.train = read.integer("--train", v, 1, 10'000'000);
    else if (a == "--val") o.val = read.integer("--val", v, 1, 100'000);
    else if (a == "--size") o.size = read.integer("--size", v, 32, 1024);
    else if (a == "--scale") o.scale = read.integer("--scale", v, 32, 1024);
    else if (a == "--threads") o.threads = read.integer("--threads", v, 1, 1024);
    else if (a == "--draw") o.draw = read.integer("--draw", v, 0, 1000);
    else if (a == "--lr") o.lr = read.number("--lr", v, 0, 1);
    else if (a == "--lang-lr") o.lang_lr = read.number("--lang-lr", v, 0, 1);
    else if (a == "--coarse") o.coarse = read.path("--coarse", v);
    else if (a == "--out") o.out = read.path("--out", v);
    else read.fail("unknown option " + a);
    ++i;
  }
  if (o.batch > o.train) read.fail("--batch " + std::to_string(o.batch) + " is larger than --train " + std::to_string(o.train));
  if (o.lang_lr < 0) o.lang_lr = o.lr;
  return o;
}

// maskrcnn_benchmark's boxlist_iou: inclusive pixel boxes (the +1 convention).
double iou(const std::array<double, 4>& a, const std::array<float, 4>& b) {
  const double w = std::min<double>(a[2], b[2]) - std::max<double>(a[0], b[0]) + 1;
  const double h = std::min<double>(a[3], b[3]) - std::max<double>(a[1], b[1]) + 1;
  if (w <= 0 || h <= 0) return 0;
  const double area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), area_b = (double(b[2]) - b[0] + 1) * (double(b[3]) - b[1] + 1);
  return w * h / (area_a + area_b - w * h);
}

void write_picture(const fiber::io::Image& frame, const fiber::Grounding& g, std::size_t phrases, int scale,
                   const fs::path& path) {
  // Enlarged (each pixel a scale x scale block) so that the plates are readable; one box per
  // phrase: its best.
  fiber::io::Image im;
  im.width = frame.width * scale;
  im.height = frame.height * scale;
  im.pixels.resize(std::size_t(im.width) * std::size_t(im.height) * 3);
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x)
      std::memcpy(&im.pixels[(std::size_t(y) * std::size_t(im.width) + std::size_t(x)) * 3],
                  &frame.pixels[(std::size_t(y / scale) * std::size_t(frame.width) + std::size_t(x / scale)) * 3], 3);
  for (std::size_t p = 1; p <= phrases; ++p) {
    const auto best = std::find_if(g.detections.begin(), g.detections.end(),
                                   [&](const fiber::GroundedBox& d) { return d.label == std::int64_t(p); });
    if (best == g.detections.end()) continue;
    const fiber::io::Rgb c = fiber::io::label_colour(best->label);
    fiber::io::draw_rectangle(im, best->box[0] * scale, best->box[1] * scale, (best->box[2] + 1) * scale - 1,
                              (best->box[3] + 1) * scale - 1, c, 2);
    char text[32];
    std::snprintf(text, sizeof text, "%zu %.2f", p, double(best->score));
    fiber::io::draw_label(im, int(best->box[0] * scale), std::max(0, int(best->box[1] * scale) - 12), text,
                          fiber::io::Rgb{255, 255, 255}, c, 2);
  }
  const std::vector<std::uint8_t> png = fiber::io::encode_png(im, path.string());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(png.data()), std::streamsize(png.size()));
  f.close();
  FIBER_CHECK(f.good(), "ground_phrase: could not write ", path.string());
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (o.threads) fiber::set_num_threads(int(o.threads));
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::FILE* log = o.json ? stderr : stdout;  // with --json, stdout holds only the JSON line

  // 1. The data: a shapes world (two shapes a scene, each a phrase of the caption with its box).
  const fs::path dir = o.out.empty() ? fs::temp_directory_path() / ("fiber_ground_phrase_" + std::to_string(o.seed)) : fs::path(o.out);
  train::ShapesWorldOptions world;
  world.train = o.train;
  world.val = o.val;
  world.seed = std::uint64_t(o.seed);
  world.size = int(o.size);
  world.overwrite = true;
  train::write_shapes_world(dir / "data", world);
  const fiber::text::Tokenizer tokenizer =
      fiber::text::Tokenizer::from_files(dir / "data" / "vocab.json", dir / "data" / "merges.txt");
  const train::GroundingDataset train_set = train::load_grounding_dataset(dir / "data" / "train.json");
  const train::GroundingDataset val_set = train::load_grounding_dataset(dir / "data" / "val.json");
  std::fprintf(log, "shapes world: %zu train and %zu held-out scenes of %lld px in %s (%.1f s)\n", train_set.size(),
               val_set.size(), o.size, (dir / "data").c_str(), seconds());

  // 2. The fine model from a coarse one by the official suffix rule (as `fiber init fine`).
  fs::path coarse_file = o.coarse;
  if (coarse_file.empty()) {
    models::FiberCoarse<float, models::FiberDemoCoarse> coarse;
    models::init_coarse(coarse, std::uint64_t(o.seed));
    coarse_file = dir / "coarse_init.safetensors";
    fiber::nn::save_safetensors<float>(coarse, coarse_file);
  }
  auto model = std::make_shared<Model>();
  const models::FineInitReport init = models::init_fine_from_coarse(*model, fiber::io::open_checkpoint(coarse_file), std::uint64_t(o.seed));
  std::fprintf(log, "model: FiberDemoFine, %lld parameters; %lld tensors from %s, %zu initialised\n",
               static_cast<long long>(fiber::nn::parameter_count<float>(*model)), static_cast<long long>(init.copied),
               o.coarse.empty() ? "a fresh coarse model" : o.coarse.c_str(), init.initialised.size());

  // 3. Train with the official fine-grained task and recipe; images resized to --scale.
  train::FineGroundingOptions task_options;
  task_options.batch_size = int(o.batch);
  task_options.min_sizes = {int(o.scale)};
  task_options.max_size = int(o.scale);
  task_options.shuffle_seed = std::uint64_t(o.seed);
  train::FineGroundingTask<kConfig> task(*model, train_set, tokenizer, task_options);
  train::FineSolverConfig recipe;
  recipe.base_lr = o.lr;
  recipe.lang_lr = o.lang_lr;
  recipe.warmup_iters = std::min<long long>(200, o.steps / 10);
  train::TrainerOptions t;
  t.total_steps = o.steps;
  t.log_every = std::max<long long>(1, o.steps / 20);
  t.save_every = o.steps;  // one checkpoint, at the end
  t.keep_last = 1;
  t.run_dir = dir / "run";
  t.seed = std::uint64_t(o.seed);
  t.progress = stderr;
  t.fine = recipe;
  fs::remove_all(t.run_dir);
  std::fprintf(log, "training: %lld steps of batch %lld at %lld px, lr %g (language %g), warmup %lld, %d threads\n", o.steps,
               o.batch, o.scale, o.lr, o.lang_lr, static_cast<long long>(recipe.warmup_iters), fiber::num_threads());
  train::Trainer trainer(task, t);
  const train::TrainSummary summary = trainer.run();

  // 4. Held-out grounding: every phrase of every caption, its detections ranked by score.
  fiber::GroundOptions g;
  g.min_size = g.max_size = int(o.scale);
  g.postprocess.score_threshold = 0;  // rank every phrase's boxes, however unsure
  fiber::Grounder<kConfig> grounder(model, tokenizer, g);
  std::int64_t phrases = 0, hit1 = 0, hit5 = 0, drawn = 0;
  const fs::path pictures = dir / "pictures";
  fs::create_directories(pictures);
  for (std::size_t i = 0; i < val_set.size(); ++i) {
    const train::GroundingImage& im = val_set.images[i];
    std::vector<std::string> names;
    for (const train::GroundingBox& b : im.boxes)
      names.push_back(im.prompt.substr(b.spans.at(0).begin, b.spans.at(0).end - b.spans.at(0).begin));
    grounder.set_prompt(im.prompt, names);
    const fiber::io::Image frame = fiber::io::read_image(im.file);
    const fiber::Grounding r = grounder.ground(frame);
    for (std::size_t p = 0; p < im.boxes.size(); ++p) {
      const auto& b = im.boxes[p].xywh;
      const std::array<double, 4> truth{b[0], b[1], b[0] + b[2] - 1, b[1] + b[3] - 1};
      int rank = 0;
      bool found1 = false, found5 = false;
      for (const fiber::GroundedBox& d : r.detections) {
        if (d.label != std::int64_t(p + 1)) continue;
        const bool good = iou(truth, d.box) >= 0.5;
        found1 = found1 || (good && rank < 1);
        found5 = found5 || (good && rank < 5);
        if (++rank == 5) break;
      }
      ++phrases;
      hit1 += found1;
      hit5 += found5;
    }
    if (drawn < o.draw) {
      write_picture(frame, r, im.boxes.size(), 4, pictures / ("val_" + std::to_string(i) + ".png"));
      ++drawn;
    }
  }
  const double r1 = double(hit1) / double(phrases), r5 = double(hit5) / double(phrases);
  const double total = seconds();
  const auto& last = summary.steps.back().losses;
  std::fprintf(log, "\nheld-out grounding (%zu scenes, %lld phrases; a hit: IoU >= 0.5 with the phrase's box):\n",
               val_set.size(), static_cast<long long>(phrases));
  std::fprintf(log, "  R@1 %.3f   R@5 %.3f\n", r1, r5);
  std::fprintf(log, "training: %.0f s (%.1f images/s), final loss %.3f (token %.3f, box %.3f, centerness %.3f); total %.0f s; "
               "peak RSS %.0f MiB\npictures: %s; run directory: %s\n",
               summary.seconds, summary.images_per_s, last.at("loss"), last.at("token"), last.at("box"), last.at("centerness"),
               total, summary.peak_rss_mb, pictures.c_str(), t.run_dir.c_str());
  if (o.json) {
    nlohmann::json j;
    j["r1"] = r1;
    j["r5"] = r5;
    j["phrases"] = phrases;
    j["pictures"] = drawn;
    j["seconds"] = total;
    j["train_seconds"] = summary.seconds;
    j["steps"] = o.steps;
    j["batch"] = o.batch;
    j["seed"] = o.seed;
    j["final_loss"] = last.at("loss");
    j["peak_rss_mb"] = summary.peak_rss_mb;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ground_phrase: error: %s\n", e.what());
  return 1;
}
