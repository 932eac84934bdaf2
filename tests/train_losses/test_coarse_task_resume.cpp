// Coarse pre-training through the Trainer (the demo model on a small shapes world): a run stopped
// after step 3, everything destroyed, and resumed from its checkpoint reproduces the losses of an
// uninterrupted run bit for bit (MLM masks, hard negatives, the queue with its pixels and ids, the
// data position and AdamW all continue exactly); the checkpoint's model part loads strictly into a
// fresh model.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/coarse_init.hpp"
#include "fiber/train/coarse_pretrain_task.hpp"
#include "fiber/train/shapes_world.hpp"
#include "fiber/train/trainer.hpp"

namespace fs = std::filesystem;
using namespace fiber;

namespace {

constexpr models::FiberCoarseConfig kConfig = models::FiberDemoCoarse;
using Model = models::FiberCoarse<float, kConfig>;

// The data and runs of this file, removed at exit.
struct World {
  fs::path dir;
  ~World() { fs::remove_all(dir); }
};
const fs::path& world() {
  static const World w{[] {
    const fs::path d = fs::temp_directory_path() / ("fiber_test_coarse_task_" + std::to_string(::getpid()));
    fs::remove_all(d);
    train::ShapesWorldOptions o;
    o.train = 48;
    o.val = 12;
    o.seed = 5;
    train::write_shapes_world(d / "data", o);
    return d;
  }()};
  return w.dir;
}

train::TrainerOptions trainer_options(const fs::path& run) {
  train::TrainerOptions o;
  o.total_steps = 6;
  o.learning_rate = 1e-3;
  o.log_every = 1;
  o.save_every = 3;
  o.run_dir = run;
  o.seed = 21;
  o.progress = nullptr;
  o.write_curve = false;
  return o;
}

// Runs the coarse task for up to `updates` steps of a 6-step run in `run` (resuming first when
// asked); returns the losses of each update.
std::vector<std::map<std::string, double>> run(const fs::path& run_dir, std::int64_t updates, bool resume) {
  const text::Tokenizer tok = text::Tokenizer::from_files(world() / "data/vocab.json", world() / "data/merges.txt");
  Model model;
  models::init_coarse(model, 3);
  train::PrefetchOptions lo;
  lo.batch_size = 4;
  lo.image_size = kConfig.swin.image_size;
  lo.max_text_len = 40;
  lo.seed = 8;
  lo.drop_last = true;
  train::PrefetchLoader loader(train::load_caption_dataset(world() / "data/train.json"), tok, lo);
  train::CoarsePretrainOptions to;
  to.queue_size = 6;  // wraps within the run: pointer, total and the never-filled part all matter
  to.queue_seed = 4;
  to.masking = train::masking_for(tok);
  train::CoarsePretrainTask<kConfig> task(model, loader, to);
  train::Trainer trainer(task, trainer_options(run_dir));
  if (resume) REQUIRE(trainer.resume().step == 3);
  const train::TrainSummary s = trainer.run(updates);
  std::vector<std::map<std::string, double>> out;
  for (const auto& r : s.steps) out.push_back(r.losses);
  return out;
}

}  // namespace

TEST_CASE("coarse pre-training task: a run stopped at step 3 and resumed reproduces the uninterrupted run bit for bit") {
  const fs::path straight = world() / "straight", split = world() / "split";
  const auto all = run(straight, 6, false);
  REQUIRE(all.size() == 6);
  for (const auto& l : all) {
    CHECK(l.count("itc") == 1);
    CHECK(l.count("itm") == 1);
    CHECK(l.count("mlm") == 1);
  }
  const auto first = run(split, 3, false);
  const auto rest = run(split, 6, true);
  REQUIRE(first.size() == 3);
  REQUIRE(rest.size() == 3);
  for (std::size_t i = 0; i < 6; ++i) {
    const auto& got = i < 3 ? first[i] : rest[i - 3];
    INFO("step " << i + 1);
    CHECK(got == all[i]);  // every named loss, exactly
  }
  // The last checkpoint's model part loads strictly (tied rank_output included) into a fresh model.
  Model loaded;
  nn::LoadOptions<float> lo = Model::load_options();
  lo.ignore = [](std::string_view k) { return train::is_trainer_entry(std::string(k)); };
  const nn::LoadReport r = nn::load_state_dict<float>(loaded, io::open_checkpoint(train::checkpoint_path(split, 6)), lo);
  CHECK(r.missing.empty());
}

TEST_CASE("coarse pre-training task: a checkpoint of another queue size is refused by name") {
  const fs::path run_dir = world() / "queue";
  run(run_dir, 3, false);
  const text::Tokenizer tok = text::Tokenizer::from_files(world() / "data/vocab.json", world() / "data/merges.txt");
  Model model;
  train::PrefetchOptions lo;
  lo.batch_size = 4;
  lo.image_size = kConfig.swin.image_size;
  train::PrefetchLoader loader(train::load_caption_dataset(world() / "data/train.json"), tok, lo);
  train::CoarsePretrainOptions to;
  to.queue_size = 5;
  to.masking = train::masking_for(tok);
  train::CoarsePretrainTask<kConfig> task(model, loader, to);
  train::Trainer trainer(task, trainer_options(run_dir));
  CHECK_THROWS_WITH_AS(trainer.resume(), doctest::Contains("queue has 6 entries, this run 5"), Error);
}
