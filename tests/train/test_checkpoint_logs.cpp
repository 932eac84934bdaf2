// The trainer's files: checkpoint layout (model part loadable by the normal loader), metrics log
// truncation on resume, progress text, the loss-curve PNG.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "toy_task.hpp"

namespace fs = std::filesystem;
namespace train = fiber::train;

namespace {
fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("fiber_test_trainio_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
}  // namespace

TEST_CASE("checkpoint layout: plain parameter names, optimizer.* and task.* entries, trainer metadata") {
  const fs::path dir = fresh_dir("layout");
  toy::ToyTask task(1);
  train::TrainerOptions o;
  o.total_steps = 5;
  o.save_every = 2;
  o.keep_last = 0;  // keep all
  o.run_dir = dir;
  o.progress = nullptr;
  train::Trainer(task, o).run(3);
  std::vector<std::int64_t> steps;
  for (const auto& [s, p] : train::list_checkpoints(dir)) steps.push_back(s);
  CHECK(steps == std::vector<std::int64_t>{2});

  const auto file = fiber::io::open_checkpoint(train::checkpoint_path(dir, 2));
  for (const char* key : {"encoder.dense.weight", "encoder.dense.bias", "itm_score.fc.weight",
                          "optimizer.exp_avg.encoder.dense.weight", "optimizer.exp_avg_sq.itm_score.fc.weight",
                          "task.queue"})
    CHECK_MESSAGE(file.contains(key), key);
  const train::TrainerCheckpoint c = train::read_trainer_checkpoint(train::checkpoint_path(dir, 2));
  CHECK(c.step == 2);
  CHECK(c.total_steps == 5);
  CHECK(c.task.json.at("position").get<int>() == 8);
  for (const auto& o2 : c.optimizer) CHECK(o2.step == 2);

  // The model part loads with the normal loader, the trainer entries ignored by name.
  toy::Mlp model{fiber::nn::make_parameter<float>({8, 4}), fiber::nn::make_parameter<float>({8}),
                 fiber::nn::make_parameter<float>({1, 8})};
  fiber::nn::LoadOptions<float> lo;
  lo.ignore = train::is_trainer_entry;
  const auto report = fiber::nn::load_state_dict<float>(model, file, lo);
  CHECK(report.loaded == 3);
  CHECK(report.ignored.size() == 7);  // 3 x exp_avg, 3 x exp_avg_sq, task.queue
  CHECK(model.w1.value().to_vector() == c.parameters[0].second.to_vector());
  fs::remove_all(dir);
}

TEST_CASE("checkpoint names: only checkpoint-<digits>.safetensors counts; pruning keeps the newest") {
  const fs::path dir = fresh_dir("names");
  for (const char* n : {"checkpoint-000003.safetensors", "checkpoint-000010.safetensors", "checkpoint-1.safetensors",
                        "checkpoint-x.safetensors", "checkpoint-000004.safetensors.tmp", "other.safetensors"})
    std::ofstream(dir / n) << "x";
  std::vector<std::int64_t> steps;
  for (const auto& [s, p] : train::list_checkpoints(dir)) steps.push_back(s);
  CHECK(steps == std::vector<std::int64_t>{1, 3, 10});
  train::prune_checkpoints(dir, 1);
  steps.clear();
  for (const auto& [s, p] : train::list_checkpoints(dir)) steps.push_back(s);
  CHECK(steps == std::vector<std::int64_t>{10});
  CHECK(fs::exists(dir / "other.safetensors"));
  CHECK_THROWS_WITH_AS(train::read_trainer_checkpoint(dir / "checkpoint-000010.safetensors"),
                       doctest::Contains("checkpoint-000010"), fiber::Error);
  fs::remove_all(dir);
}

TEST_CASE("a plain weight file is not a trainer checkpoint") {
  const fs::path dir = fresh_dir("plain");
  toy::ToyTask task(1);
  fiber::nn::save_safetensors<float>(task.model, dir / "w.safetensors");
  CHECK_THROWS_WITH_AS(train::read_trainer_checkpoint(dir / "w.safetensors"),
                       doctest::Contains("not a trainer checkpoint"), fiber::Error);
  fs::remove_all(dir);
}

TEST_CASE("metrics log: appended lines, truncation to a step, a torn last line skipped") {
  const fs::path dir = fresh_dir("metrics");
  const fs::path path = dir / "metrics.jsonl";
  {
    train::MetricsLog log(path);
    for (int s = 1; s <= 5; ++s) log.append({{"step", s}, {"loss", 1.0 / s}});
  }
  std::ofstream(path, std::ios::app) << "{\"step\": 6, \"lo";  // a crash mid-line
  CHECK(train::read_metrics(path).size() == 5);
  train::truncate_metrics(path, 3);
  const auto lines = train::read_metrics(path);
  REQUIRE(lines.size() == 3);
  CHECK(lines.back().at("step").get<int>() == 3);
  CHECK(lines.back().at("loss").get<double>() == 1.0 / 3);
  fs::remove_all(dir);
}

TEST_CASE("progress: plain lines off a terminal, a bar on one; durations") {
  train::ProgressBar bar(100, nullptr);
  bar.set_live(false);
  CHECK(bar.render(50, 1.5, 12.0, 30) == "step 50/100  loss 1.5000  12.0 img/s  ETA 30s");
  bar.set_live(true);
  CHECK(bar.render(50, 1.5, 12.0, 30).starts_with("[############............]  50/100"));
  CHECK(train::format_duration(59.4) == "59s");
  CHECK(train::format_duration(725) == "12m05s");
  CHECK(train::format_duration(3 * 3600 + 7 * 60) == "3h07m");
  CHECK(train::format_duration(-1) == "?");
}

TEST_CASE("loss curve: a PNG with the total and each named loss, refused for an empty log") {
  const fs::path dir = fresh_dir("curve");
  {
    train::MetricsLog log(dir / "metrics.jsonl");
    for (int s = 1; s <= 20; ++s)
      log.append({{"step", s}, {"loss", 3.0 / s}, {"itc", 2.0 / s}, {"itm", 1.0 / s}, {"lr", 1e-4}, {"images_per_s", 50}});
  }
  const train::LossCurve curve = train::write_loss_curve(dir / "metrics.jsonl", dir / "loss.png", 320, 200);
  REQUIRE(curve.series.size() == 3);
  CHECK(curve.series[0].name == "loss");
  CHECK(curve.series[1].name == "itc");
  CHECK(curve.series[2].name == "itm");
  CHECK(curve.first_step == 1);
  CHECK(curve.last_step == 20);
  const fiber::io::Image im = fiber::io::read_png(dir / "loss.png");
  CHECK(im.width == 320);
  CHECK(im.height == 200);
  int coloured = 0;  // pixels of the itc colour
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x)
      coloured += im.at(x, y, 0) == curve.series[1].rgb[0] && im.at(x, y, 1) == curve.series[1].rgb[1] &&
                  im.at(x, y, 2) == curve.series[1].rgb[2];
  CHECK(coloured > 100);
  std::ofstream(dir / "empty.jsonl") << "";
  CHECK_THROWS_WITH_AS(train::write_loss_curve(dir / "empty.jsonl", dir / "x.png"), doctest::Contains("no loss values"),
                       fiber::Error);
  fs::remove_all(dir);
}
