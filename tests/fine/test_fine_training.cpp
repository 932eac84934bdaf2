// Fine-grained training on the shapes world: the batches as the official training pipeline makes
// them (boxes converted, resized and flipped; positive maps from the phrases' spans), one step's
// losses and gradients, a short run that learns, and exact resume through the Trainer with the
// fine recipe (WarmupMultiStepLR, weight-decay drops, EMA). The losses themselves are checked
// against the official code in test_head_loss_parity.cpp and tests/detection.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../data_pipeline/data_fixtures.hpp"
#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/coarse_init.hpp"
#include "fiber/models/fine_init.hpp"
#include "fiber/nn/state_dict.hpp"
#include "fiber/train/fine_grounding_task.hpp"
#include "fiber/train/shapes_world.hpp"
#include "fiber/train/trainer.hpp"

using namespace fiber;
namespace fs = std::filesystem;
using Demo = models::FiberFine<float, models::FiberDemoFine>;
using DemoTask = train::FineGroundingTask<models::FiberDemoFine>;

namespace {

// A shapes world of `n` training scenes (64 x 64) and its tokenizer, written once per process.
struct World {
  fs::path dir;
  train::GroundingDataset data;
  text::Tokenizer tokenizer;
};
World make_world() {
  const fs::path dir = test::fresh_dir("fine_training");
  train::ShapesWorldOptions o;
  o.train = 6;
  o.val = 1;
  o.seed = 5;
  train::write_shapes_world(dir, o);
  return {dir, train::load_grounding_dataset(dir / "train.json"),
          text::Tokenizer::from_files(dir / "vocab.json", dir / "merges.txt")};
}
const World& world() {
  static const World w = make_world();
  return w;
}

// The demo fine model as a user makes it: a fresh demo coarse model, `fiber init fine` from it.
std::unique_ptr<Demo> demo_model(std::uint64_t seed) {
  static const fs::path coarse_file = [] {
    models::FiberCoarse<float, models::FiberDemoCoarse> coarse;
    models::init_coarse(coarse, 11);
    const fs::path f = world().dir / "coarse.safetensors";
    nn::save_safetensors<float>(coarse, f);
    return f;
  }();
  auto m = std::make_unique<Demo>();
  models::init_fine_from_coarse(*m, io::open_checkpoint(coarse_file), seed);
  return m;
}

train::FineSolverConfig recipe() {
  train::FineSolverConfig c;
  c.base_lr = 1e-3;
  c.lang_lr = 1e-4;
  c.warmup_iters = 2;
  c.steps = {0.5};
  c.ema_decay = 0.9;
  return c;
}

}  // namespace

TEST_CASE("fine training: boxes and positive maps of a batch follow the official pipeline") {
  // One image, one box [10, 20, 30, 40] (xywh) grounding "red": official xyxy [10, 20, 39, 59];
  // shorter side 128: x2 -> [20, 40, 78, 118]; flipped in the 128-px image: x1' = 128 − 78 − 1.
  const fs::path dir = test::fresh_dir("fine_batch");
  fs::copy_file(world().dir / "images/train_000000.png", dir / "a.png");
  test::write_text(dir / "g.json", R"({"images": [{"id": 1, "file_name": "a.png", "caption": "a red circle"}],
    "annotations": [{"image_id": 1, "bbox": [10, 20, 30, 40], "tokens_positive": [[2, 5]]},
                    {"image_id": 1, "bbox": [70, 0, 5, 5], "tokens_positive": [[6, 12]]}]})");
  const train::GroundingDataset data = train::load_grounding_dataset(dir / "g.json");
  auto model = demo_model(1);
  train::FineGroundingOptions o;
  o.batch_size = 2;
  o.min_sizes = {128};
  o.flip_probability = 0.5;
  DemoTask task(*model, data, world().tokenizer, o);
  // <s> a Ġred Ġcircle </s>: "red" is token 2.
  REQUIRE(task.prepared()[0].box_tokens.size() == 2);
  CHECK(task.prepared()[0].box_tokens[0] == std::vector<std::int64_t>{2});
  CHECK(task.prepared()[0].box_tokens[1] == std::vector<std::int64_t>{3});
  Generator gen(3);
  bool seen[2] = {false, false};
  for (int round = 0; round < 8 && !(seen[0] && seen[1]); ++round) {
    const train::GroundingBatch b = task.next_batch(gen);
    REQUIRE(b.images.shape() == Shape{2, 3, 128, 128});
    for (std::size_t i = 0; i < 2; ++i) {
      CAPTURE(b.flipped[i]);
      // The second box starts past the 64-px image: clamped to nothing and dropped with its phrase.
      REQUIRE(b.boxes[i].shape() == Shape{1, 4});
      const std::vector<float> want = b.flipped[i] ? std::vector<float>{49, 40, 107, 118} : std::vector<float>{20, 40, 78, 118};
      CHECK(b.boxes[i].to_vector() == want);
      const std::vector<float> map = b.positive_maps[i].to_vector();
      for (std::size_t t = 0; t < map.size(); ++t) CHECK(map[t] == (t == 2 ? 1.0f : 0.0f));
      CHECK(b.ids.at({std::int64_t(i), 2}) == world().tokenizer.encode("a red circle").ids[2]);
      CHECK(b.valid.at({std::int64_t(i), 4}) == 1);
      CHECK(b.valid.at({std::int64_t(i), 5}) == 0);
      seen[b.flipped[i] ? 1 : 0] = true;
    }
  }
  CHECK(seen[0]);
  CHECK(seen[1]);
}

TEST_CASE("fine training: batches equal the official pipeline's (ModulatedDataset, transforms, BatchCollator)") {
  // tests/reference/make_fine_batches.py ran the official data set, transforms and collator on
  // tests/data/fine/batches/grounding.json: boxes clamped or dropped with their spans, a span
  // starting on a space, two spans on a box, a crowd box, an image left out, resized (the longer
  // side's limit acting in run 2), flipped in run 1, normalised, padded to the batch.
  const fs::path dir = fs::path(FIBER_TEST_DATA_DIR) / "fine/batches";
  const auto bytes = [](const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // The fixture's tokenizer files are the shapes world's, as the library writes them.
  REQUIRE(bytes(dir / "vocab.json") == bytes(world().dir / "vocab.json"));
  REQUIRE(bytes(dir / "merges.txt") == bytes(world().dir / "merges.txt"));
  const text::Tokenizer tok = text::Tokenizer::from_files(dir / "vocab.json", dir / "merges.txt");
  const train::GroundingDataset data = train::load_grounding_dataset(dir / "grounding.json");
  CHECK(data.images_left_out == 1);
  REQUIRE(data.size() == 2);
  const io::Checkpoint ref = io::open_checkpoint(dir / "batches.safetensors");
  auto model = demo_model(1);
  struct Run {
    int min_size;
    double flip;
  };
  const Run runs[] = {{64, 0.0}, {64, 1.0}, {80, 0.0}};
  for (int r = 0; r < 3; ++r) {
    CAPTURE(r);
    train::FineGroundingOptions o;
    o.batch_size = 2;
    o.min_sizes = {runs[r].min_size};
    o.max_size = 100;
    o.flip_probability = runs[r].flip;
    DemoTask task(*model, data, tok, o);
    Generator gen(7);
    const train::GroundingBatch b = task.next_batch(gen);
    REQUIRE(b.indices.size() == 2);
    for (std::size_t k = 0; k < 2; ++k) {
      const std::string i = std::to_string(b.indices[k]);
      CAPTURE(i);
      // Pixels: the same resampling and normalisation; 1e-4 of values up to ~2.6.
      const Tensor<float> image = io::load_tensor<float>(ref, "r" + std::to_string(r) + ".image" + i);
      const Tensor<float> ours = b.images.select(0, std::int64_t(k)).contiguous();
      REQUIRE(ours.shape() == image.shape());
      const auto a = ours.to_vector(), e = image.to_vector();
      double worst = 0;
      for (std::size_t t = 0; t < a.size(); ++t) worst = std::max(worst, double(std::abs(a[t] - e[t])));
      CHECK(worst <= 1e-4);
      // Boxes: the official computes in float32 (resize, transpose), we in double: 1e-4 px.
      const Tensor<float> boxes = io::load_tensor<float>(ref, "r" + std::to_string(r) + ".boxes" + i);
      REQUIRE(b.boxes[k].shape() == boxes.shape());
      const auto ab = b.boxes[k].to_vector(), eb = boxes.to_vector();
      for (std::size_t t = 0; t < ab.size(); ++t) CHECK(std::abs(ab[t] - eb[t]) <= 1e-4f);
      // Positive maps: exactly the collator's (binarised, 256 columns; ours stop at max_query_len 32).
      const Tensor<float> map = io::load_tensor<float>(ref, "r" + std::to_string(r) + ".map" + i);
      REQUIRE(map.size(0) == b.positive_maps[k].size(0));
      for (std::int64_t q = 0; q < map.size(0); ++q)
        for (std::int64_t t = 0; t < map.size(1); ++t)
          CHECK(map.at({q, t}) == (t < 32 ? b.positive_maps[k].at({q, t}) : 0.0f));
      // The text: ids and attention mask as the official language backbone pads them.
      const Tensor<std::int64_t> ids = io::load_tensor<std::int64_t>(ref, "ids" + i);
      const Tensor<std::int64_t> mask = io::load_tensor<std::int64_t>(ref, "mask" + i);
      for (std::int64_t t = 0; t < 32; ++t) {
        CHECK(b.ids.at({std::int64_t(k), t}) == ids.at({t}));
        CHECK(b.valid.at({std::int64_t(k), t}) == mask.at({t}));
      }
    }
  }
}

TEST_CASE("fine training: a detection image lists its categories in a new order each time, its boxes follow their names") {
  // COCO instances without captions: the official COCO fine-tuning shuffles the category list of
  // every image it reads (convert_od_to_grounding_simple, DISABLE_SHUFFLE false).
  const fs::path dir = test::fresh_dir("fine_categories");
  fs::copy_file(world().dir / "images/train_000000.png", dir / "a.png");
  test::write_text(dir / "instances.json", R"({"images": [{"id": 1, "file_name": "a.png"}],
    "annotations": [{"image_id": 1, "bbox": [2, 2, 20, 20], "category_id": 5},
                    {"image_id": 1, "bbox": [30, 30, 20, 20], "category_id": 9}],
    "categories": [{"id": 2, "name": "circle"}, {"id": 5, "name": "square"}, {"id": 9, "name": "triangle"}]})");
  const train::GroundingDataset data = train::load_grounding_dataset(dir / "instances.json");
  REQUIRE(data.categories == std::vector<std::string>{"circle", "square", "triangle"});
  REQUIRE(data.images[0].detection);
  CHECK(data.images[0].boxes[0].category == 1);
  CHECK(data.images[0].boxes[1].category == 2);
  auto model = demo_model(1);
  train::FineGroundingOptions o;
  o.batch_size = 1;
  o.min_sizes = {64};
  // A name's token, first in the prompt or after ". " (one token each in the shapes vocabulary).
  const text::Tokenizer& tok = world().tokenizer;
  const auto word_ids = [&](const std::string& w) {
    const auto first = tok.encode(w).ids, later = tok.encode("x " + w).ids;
    REQUIRE(first.size() == 3);  // <s> w </s>
    REQUIRE(later.size() == 4);  // <s> x Ġw </s>
    return std::vector<std::int64_t>{first[1], later[2]};
  };
  const std::vector<std::int64_t> names[3] = {word_ids("circle"), word_ids("square"), word_ids("triangle")};
  const auto category_at = [&](std::int64_t id) {
    for (int c = 0; c < 3; ++c)
      if (id == names[c][0] || id == names[c][1]) return c;
    return -1;
  };
  const auto check_batch = [&](const train::GroundingBatch& b) {
    // <s> n1 . n2 . n3 </s>: the names at columns 1, 3, 5, each category once.
    std::vector<int> order;
    for (std::int64_t t : {1, 3, 5}) order.push_back(category_at(b.ids.at({0, t})));
    std::vector<int> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int>{0, 1, 2});
    CHECK(b.valid.at({0, 6}) == 1);
    CHECK(b.valid.at({0, 7}) == 0);
    // Box k (square, then triangle) is 1 exactly on its category's column.
    REQUIRE(b.positive_maps[0].shape() == Shape{2, 32});
    for (std::int64_t k = 0; k < 2; ++k)
      for (std::int64_t t = 0; t < 32; ++t) {
        const bool name = (t == 1 || t == 3 || t == 5) && order[std::size_t(t / 2)] == int(k) + 1;
        CHECK(b.positive_maps[0].at({k, t}) == (name ? 1.0f : 0.0f));
      }
    return order;
  };
  {
    DemoTask task(*model, data, tok, o);
    Generator gen(4);
    std::set<std::vector<int>> orders;
    bool first_seen[3] = {false, false, false};
    for (int round = 0; round < 30; ++round) {
      const std::vector<int> order = check_batch(task.next_batch(gen));
      orders.insert(order);
      first_seen[order[0]] = true;
    }
    CHECK(orders.size() >= 4);  // of the 6 orders
    CHECK((first_seen[0] && first_seen[1] && first_seen[2]));
  }
  {
    o.shuffle_categories = false;  // the file's order every time
    DemoTask task(*model, data, tok, o);
    Generator gen(4);
    for (int round = 0; round < 5; ++round) CHECK(check_batch(task.next_batch(gen)) == std::vector<int>{0, 1, 2});
  }
}

TEST_CASE("fine training: a hand-built detection image naming a category the data set lacks is an error") {
  const fs::path dir = test::fresh_dir("fine_bad_category");
  test::write_text(dir / "instances.json", R"({"images": [{"id": 1, "file_name": "a.png"}],
    "annotations": [{"image_id": 1, "bbox": [2, 2, 20, 20], "category_id": 5}],
    "categories": [{"id": 2, "name": "circle"}, {"id": 5, "name": "square"}]})");
  train::GroundingDataset data = train::load_grounding_dataset(dir / "instances.json");
  REQUIRE(data.images[0].boxes[0].category == 1);
  auto model = demo_model(1);
  data.images[0].boxes[0].category = 2;  // past the two categories
  CHECK_THROWS_WITH_AS(DemoTask(*model, data, world().tokenizer),
                       doctest::Contains("a.png: a box's category 2 is not one of the data set's 2 categories"), Error);
  data.images[0].boxes[0].category = -1;
  CHECK_THROWS_WITH_AS(DemoTask(*model, data, world().tokenizer), doctest::Contains("a box's category -1"), Error);
}

TEST_CASE("fine training: a prompt past max_query_len is an error naming the image") {
  const fs::path dir = test::fresh_dir("fine_long");
  std::string caption;
  for (int i = 0; i < 40; ++i) caption += "red ";
  caption += "circle";
  test::write_text(dir / "g.json", R"({"images": [{"id": 1, "file_name": "x.png", "caption": ")" + caption +
                                       R"("}], "annotations": [{"image_id": 1, "bbox": [0, 0, 9, 9], "tokens_positive": [[0, 3]]}]})");
  const train::GroundingDataset data = train::load_grounding_dataset(dir / "g.json");
  auto model = demo_model(1);
  CHECK_THROWS_WITH_AS(DemoTask(*model, data, world().tokenizer), doctest::Contains("x.png: its prompt is 43 tokens, over the model's 32"),
                       Error);
}

TEST_CASE("fine training: one step's losses are finite and reach the backbone, the text and the head") {
  auto model = demo_model(2);
  train::FineGroundingOptions o;
  o.batch_size = 2;
  o.min_sizes = {64};
  DemoTask task(*model, world().data, world().tokenizer, o);
  Generator gen(0);
  const train::StepOutput s = task.forward_backward(gen);
  for (const char* k : {"loss", "token", "box", "centerness"}) {
    CAPTURE(k);
    CHECK(std::isfinite(s.losses.at(k)));
    CHECK(s.losses.at(k) > 0);
  }
  CHECK(s.losses.at("positives") >= 2);
  CHECK(s.losses.at("loss") == doctest::Approx(s.losses.at("token") + s.losses.at("box") + s.losses.at("centerness")));
  int reached = 0;
  for (auto& [name, var] : task.parameters())
    for (const char* part : {"backbone.body.patch_embed.proj.weight", "language_backbone.body.model.embeddings.word_embeddings",
                             "rpn.head.dyhead_tower", "rpn.head.dot_product_projection_text.weight", "rpn.head.bbox_pred.weight"})
      if (name.find(part) != std::string::npos) {
        CAPTURE(name);
        REQUIRE(var->grad().defined());
        double norm = 0;
        const Tensor<float> g = var->grad().contiguous();
        for (std::int64_t i = 0; i < g.numel(); ++i) norm += double(g.data()[i]) * g.data()[i];
        if (norm > 0) ++reached;
      }
  CHECK(reached >= 5);
}

TEST_CASE("fine training: a short run lowers the loss, and a resumed run repeats it bit for bit") {
  const fs::path full_dir = test::fresh_dir("fine_full"), split_dir = test::fresh_dir("fine_split");
  train::FineGroundingOptions o;
  o.batch_size = 2;
  o.min_sizes = {64};
  o.ema_decay = 0.9;
  auto options = [&](const fs::path& dir) {
    train::TrainerOptions t;
    t.total_steps = 16;
    t.save_every = 4;
    t.log_every = 1;
    t.run_dir = dir;
    t.seed = 4;
    t.progress = nullptr;
    t.write_curve = false;
    t.fine = recipe();
    return t;
  };
  auto model = demo_model(3);
  DemoTask task(*model, world().data, world().tokenizer, o);
  train::Trainer trainer(task, options(full_dir));
  CHECK(trainer.lr_factor(0) == doctest::Approx(0.001));  // warmup from warmup_factor
  CHECK(trainer.lr_factor(5) == doctest::Approx(1.0));
  CHECK(trainer.lr_factor(8) == doctest::Approx(0.1));  // milestone round(0.5 · 16)
  const train::TrainSummary full = trainer.run();
  REQUIRE(full.steps.size() == 16);
  const double first = (full.steps[0].losses.at("loss") + full.steps[1].losses.at("loss")) / 2;
  const double last = (full.steps[14].losses.at("loss") + full.steps[15].losses.at("loss")) / 2;
  MESSAGE("loss ", first, " -> ", last);
  CHECK(last < 0.8 * first);
  // The weight decay dropped once, at step ceil(0.667 · 8) = 6.
  CHECK(trainer.optimizer().weight_decay(0) == doctest::Approx(recipe().weight_decay * 0.1));

  // The same run stopped after 6 steps and resumed by a fresh process (model, task, trainer).
  std::vector<train::StepRecord> split;
  {
    auto m = demo_model(3);
    DemoTask t(*m, world().data, world().tokenizer, o);
    train::Trainer tr(t, options(split_dir));
    for (auto& r : tr.run(6).steps) split.push_back(r);
    tr.save_checkpoint();
  }
  auto m = demo_model(99);  // other weights: all of them come from the checkpoint
  DemoTask t(*m, world().data, world().tokenizer, o);
  train::Trainer tr(t, options(split_dir));
  REQUIRE(tr.resume().step == 6);
  CHECK(tr.optimizer().weight_decay(0) == doctest::Approx(recipe().weight_decay * 0.1));  // the drop at step 6 replayed
  for (auto& r : tr.run().steps) split.push_back(r);
  REQUIRE(split.size() == full.steps.size());
  for (std::size_t i = 0; i < split.size(); ++i) {
    CAPTURE(i);
    CHECK(split[i].losses.at("loss") == full.steps[i].losses.at("loss"));
    CHECK(split[i].lr == full.steps[i].lr);
  }
  const auto& a = task.ema()->values();
  const auto& b = t.ema()->values();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector() == b[i].to_vector());
}
