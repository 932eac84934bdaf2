// Exact resume: a run stopped after step k, destroyed and resumed from its checkpoint reproduces
// the losses of an uninterrupted run bit for bit; damaged newer checkpoints are skipped and
// reported, never loaded; the metrics log is not duplicated.
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

fs::path fresh_run_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("fiber_test_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

train::TrainerOptions options(const fs::path& dir) {
  train::TrainerOptions o;
  o.total_steps = 12;
  o.accumulate = 2;
  o.learning_rate = 2e-2;
  o.warmup_fraction = 0.2;
  o.clip_norm = 0.5;
  o.log_every = 1;
  o.save_every = 3;
  o.keep_last = 2;
  o.run_dir = dir;
  o.seed = 99;
  o.progress = nullptr;
  return o;
}

std::vector<std::map<std::string, double>> losses(const train::TrainSummary& s) {
  std::vector<std::map<std::string, double>> out;
  for (const auto& r : s.steps) out.push_back(r.losses);
  return out;
}

std::vector<std::vector<float>> params(toy::ToyTask& t) {
  return {t.model.w1.value().to_vector(), t.model.b1.value().to_vector(), t.model.w2.value().to_vector()};
}

}  // namespace

TEST_CASE("stopped after k steps and resumed, the run reproduces the uninterrupted losses bit for bit") {
  const fs::path straight_dir = fresh_run_dir("straight"), split_dir = fresh_run_dir("split");
  toy::ToyTask straight_task(1);
  train::Trainer straight(straight_task, options(straight_dir));
  const train::TrainSummary full = straight.run();
  REQUIRE(full.steps.size() == 12);
  CHECK(full.steps.back().losses.at("loss") < full.steps.front().losses.at("loss"));  // it learns

  {
    toy::ToyTask first(1);
    train::Trainer t(first, options(split_dir));
    CHECK_FALSE(t.resume().resumed);  // an empty run directory: a fresh start
    const train::TrainSummary part = t.run(6);
    REQUIRE(part.steps.size() == 6);
    for (int i = 0; i < 6; ++i) CHECK(part.steps[std::size_t(i)].losses == full.steps[std::size_t(i)].losses);
  }  // everything destroyed
  toy::ToyTask second(12345);  // other initial weights: all of them must come from the checkpoint
  train::Trainer t(second, options(split_dir));
  const train::ResumeReport report = t.resume();
  REQUIRE(report.resumed);
  CHECK(report.step == 6);
  CHECK(report.skipped.empty());
  const train::TrainSummary rest = t.run();
  REQUIRE(rest.steps.size() == 6);
  const auto all = losses(full);
  CHECK(losses(rest) == std::vector<std::map<std::string, double>>(all.begin() + 6, all.end()));
  for (std::size_t i = 0; i < 6; ++i) CHECK(rest.steps[i].grad_norm == full.steps[i + 6].grad_norm);
  CHECK(params(second) == params(straight_task));

  // the metrics log holds each step once, with the same losses
  const auto a = train::read_metrics(straight_dir / "metrics.jsonl"), b = train::read_metrics(split_dir / "metrics.jsonl");
  REQUIRE(a.size() == 12);
  REQUIRE(b.size() == 12);
  for (std::size_t i = 0; i < 12; ++i) {
    CHECK(b[i].at("step").get<int>() == int(i) + 1);
    CHECK(b[i].at("loss").get<double>() == a[i].at("loss").get<double>());
    CHECK(b[i].at("mse").get<double>() == a[i].at("mse").get<double>());
  }
  // keep_last = 2: only the two newest checkpoints remain
  std::vector<std::int64_t> kept;
  for (const auto& [step, path] : train::list_checkpoints(split_dir)) kept.push_back(step);
  CHECK(kept == std::vector<std::int64_t>{9, 12});
  CHECK(fs::exists(split_dir / "loss.png"));
  fs::remove_all(straight_dir);
  fs::remove_all(split_dir);
}

TEST_CASE("a damaged newer checkpoint is skipped and reported; nothing already saved is lost") {
  const fs::path dir = fresh_run_dir("damaged"), ref_dir = fresh_run_dir("damaged_ref");
  toy::ToyTask ref_task(1);
  const train::TrainSummary full = train::Trainer(ref_task, options(ref_dir)).run();
  {
    toy::ToyTask first(1);
    train::Trainer(first, options(dir)).run(6);  // checkpoints 3 and 6
  }
  // A save interrupted mid-write, as a crash of a non-atomic writer would leave it: the first
  // half of a real checkpoint under a newer step; and a file of garbage under a newer one still.
  {
    std::ifstream in(train::checkpoint_path(dir, 6), std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), {}};
    std::ofstream(train::checkpoint_path(dir, 9), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    std::ofstream(train::checkpoint_path(dir, 12), std::ios::binary) << "this is not a checkpoint";
  }
  toy::ToyTask second(5);
  train::Trainer t(second, options(dir));
  const train::ResumeReport report = t.resume();
  REQUIRE(report.resumed);
  CHECK(report.step == 6);
  CHECK(report.file == train::checkpoint_path(dir, 6));
  REQUIRE(report.skipped.size() == 2);
  CHECK(report.skipped[0].find("checkpoint-000012") != std::string::npos);
  CHECK(report.skipped[1].find("checkpoint-000009") != std::string::npos);
  const train::TrainSummary rest = t.run();
  REQUIRE(rest.steps.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) CHECK(rest.steps[i].losses == full.steps[i + 6].losses);
  fs::remove_all(dir);
  fs::remove_all(ref_dir);
}

TEST_CASE("a checkpoint of another run length or another model is refused, not skipped") {
  const fs::path dir = fresh_run_dir("refuse");
  {
    toy::ToyTask task(1);
    train::Trainer(task, options(dir)).run(3);
  }
  toy::ToyTask task(1);
  train::TrainerOptions o = options(dir);
  o.total_steps = 20;
  train::Trainer other_total(task, o);
  CHECK_THROWS_WITH_AS(other_total.resume(), doctest::Contains("total_steps 12"), fiber::Error);

  toy::ToyTask wider(1);
  wider.model.w1 = fiber::Var<float>::parameter(fiber::Tensor<float>::zeros({8, 5}));
  train::Trainer other_model(wider, options(dir));
  CHECK_THROWS_WITH_AS(other_model.resume(), doctest::Contains("encoder.dense.weight"), fiber::Error);
  fs::remove_all(dir);
}

TEST_CASE("the trainer calls after_update once per update and refuses a task without a total loss") {
  const fs::path dir = fresh_run_dir("contract");
  toy::ToyTask task(1);
  train::TrainerOptions o = options(dir);
  o.save_every = 0;
  train::Trainer t(task, o);
  t.run(4);
  CHECK(task.after_updates == 4);
  task.emit_loss = false;
  CHECK_THROWS_WITH_AS(t.run(1), doctest::Contains("no \"loss\""), fiber::Error);
  fs::remove_all(dir);
}
