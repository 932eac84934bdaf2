#pragma once
// Trainer: the training loop over a Task (task.hpp) with the official coarse optimiser recipe
// (AdamW, six parameter groups, linear warmup/decay) or the official fine-grained one
// (fine_recipe.hpp: its groups, WarmupMultiStepLR, weight-decay drops; TrainerOptions::fine),
// gradient accumulation and clipping, checkpoints every N steps, exact resume, a metrics log, a
// progress bar and a loss curve.
//
//   MyTask task(...);
//   fiber::train::TrainerOptions o;
//   o.total_steps = 10000; o.learning_rate = 1e-4; o.run_dir = "runs/coarse";
//   fiber::train::Trainer trainer(task, o);
//   trainer.resume();                  // continues from runs/coarse if it holds a checkpoint
//   auto summary = trainer.run();      // until step total_steps
//
// One update ("step"): the lr factor of the schedule at the current position is set; the task
// runs `accumulate` micro-batches (forward_backward, gradients summed); the summed gradients are
// divided by `accumulate` and clipped to `clip_norm` in one pass (grad_clip.hpp); AdamW updates;
// all gradients are dropped; task.after_update(); the step counter advances. The reported losses
// of a step are the means over its micro-batches.
//
// Resume is exact: a checkpoint holds the parameters, AdamW's m, v and per-parameter step
// counts, the step (= scheduler position), the generator's seed and offset and the task's state,
// so a run stopped after step k and resumed reproduces, bit for bit, the losses of a run that
// never stopped (on the same machine and thread count). total_steps must be the run's total
// also when resuming (it fixes the schedule); a checkpoint of another total is refused.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/train/adamw.hpp"
#include "fiber/train/checkpoint_file.hpp"
#include "fiber/train/fine_recipe.hpp"
#include "fiber/train/grad_clip.hpp"
#include "fiber/train/loss_curve.hpp"
#include "fiber/train/lr_schedule.hpp"
#include "fiber/train/metrics_log.hpp"
#include "fiber/train/param_groups.hpp"
#include "fiber/train/progress_bar.hpp"
#include "fiber/train/task.hpp"

namespace fiber::train {

// Field names follow FIBER's configuration (config.py) where it has them.
struct TrainerOptions {
  std::int64_t total_steps = 1000;  // max_steps: the run's total, also when resuming
  std::int64_t accumulate = 1;      // micro-batches per update (accumulate_grad_batches)
  double learning_rate = 1e-4;
  double warmup_fraction = 0.1;     // warmup_steps = int(total_steps * warmup_fraction)
  double weight_decay = 0.01;
  double lr_mult_head = 5;
  double lr_mult_cross_modal = 5;
  double clip_norm = 0;             // total gradient L2 norm limit; 0 = off
  AdamWOptions adamw;               // betas (0.9, 0.98), eps 1e-8
  std::int64_t log_every = 10;      // metrics line + plain progress line every N steps (0 = only the last)
  std::int64_t eval_every = 0;      // task.evaluate() every N steps (0 = never), if the task has it
  std::int64_t save_every = 1000;   // checkpoint every N steps and at the end (0 = never)
  std::int64_t keep_last = 3;       // checkpoints kept (0 = all)
  std::filesystem::path run_dir = "run";
  std::uint64_t seed = 0;           // the generator handed to the task
  bool stop_on_nonfinite = true;    // a NaN/inf loss is an error naming the step
  bool write_curve = true;          // RUN/loss.png at the end of run()
  std::FILE* progress = stderr;     // nullptr: silent
  // The official fine-grained recipe instead of the coarse one: its parameter groups and AdamW
  // (base_lr, lang_lr, bias factors, betas 0.9/0.999), WarmupMultiStepLR with max_iter =
  // total_steps (its `max_iter` is ignored), the weight-decay drops and its clip_grad_norm. Then
  // learning_rate, warmup_fraction, weight_decay, lr_mult_*, clip_norm and adamw are unused. The
  // EMA (ema_decay) is kept by the task (FineGroundingTask), which owns the model.
  std::optional<FineSolverConfig> fine;
};

// One update as the trainer saw it.
struct StepRecord {
  std::int64_t step = 0;                  // 1-based: the number of updates done after it
  std::map<std::string, double> losses;   // means over the micro-batches
  double lr = 0;                          // the base group's lr used by this update
  double grad_norm = 0;                   // the mean gradient's norm before clipping
  std::int64_t samples = 0;
};

struct TrainSummary {
  std::vector<StepRecord> steps;  // every update this run() made, in order
  std::int64_t final_step = 0;
  double seconds = 0;
  double images_per_s = 0;
  double peak_rss_mb = 0;  // getrusage(RUSAGE_SELF).ru_maxrss
  std::vector<std::string> excluded;  // parameters no optimiser group trains (official rule)
};

struct ResumeReport {
  bool resumed = false;
  std::int64_t step = 0;
  std::filesystem::path file;         // the checkpoint loaded
  std::vector<std::string> skipped;   // newer checkpoint files that could not be read, with why
};

// The peak resident set of this process, in MiB.
inline double peak_rss_mb() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

template <Task T>
class Trainer {
 public:
  Trainer(T& task, TrainerOptions options)
      : task_(task), options_(with_recipe(std::move(options))), named_(task_.parameters()),
        groups_(options_.fine ? make_fine_param_groups(named_, *options_.fine)
                              : make_param_groups(named_, {options_.learning_rate, options_.weight_decay,
                                                           options_.lr_mult_head, options_.lr_mult_cross_modal})),
        optimizer_(groups_, options_.fine ? options_.fine->adamw() : options_.adamw),
        schedule_(make_schedule(options_)), generator_(options_.seed), bar_(options_.total_steps, options_.progress) {
    if (options_.fine && options_.fine->weight_decay_schedule)
      weight_decay_drops_.emplace(step_milestones(), options_.fine->weight_decay_schedule_ratio, 0);
    FIBER_CHECK(options_.accumulate >= 1, "Trainer: accumulate ", options_.accumulate, " must be at least 1");
    FIBER_CHECK(options_.clip_norm >= 0, "Trainer: clip_norm ", options_.clip_norm, " is negative");
    FIBER_CHECK(options_.log_every >= 0 && options_.eval_every >= 0 && options_.save_every >= 0 &&
                    options_.keep_last >= 0,
                "Trainer: log_every, eval_every, save_every and keep_last must be non-negative");
    FIBER_CHECK(!options_.run_dir.empty(), "Trainer: run_dir is empty");
    for (auto& [name, var] : named_) all_.push_back(var);
    if (!groups_.excluded.empty()) {
      std::string list;
      for (const std::string& n : groups_.excluded) list += "\n  " + n;
      bar_.message("trainer: " + std::to_string(groups_.excluded.size()) +
                   " parameter(s) match both a head and a cross-modal name and are in no optimiser group"
                   " (as the official set_schedule); they are not trained:" + list);
    }
  }

  std::int64_t step() const { return step_; }
  const TrainerOptions& options() const { return options_; }
  AdamW& optimizer() { return optimizer_; }
  Generator& generator() { return generator_; }
  const ParamGroups& param_groups() const { return groups_; }
  // The factor of every group's initial lr for the update after `step` updates.
  double lr_factor(std::int64_t step) const {
    return std::visit([step](const auto& schedule) { return schedule.factor(step); }, schedule_);
  }
  std::filesystem::path metrics_path() const { return options_.run_dir / "metrics.jsonl"; }

  // Loads the newest readable checkpoint of options().run_dir (nothing when there is none).
  // Newer files that cannot be read (damaged, truncated, not a checkpoint) are skipped and
  // reported; a readable checkpoint that does not fit the task (missing parameter, other shape,
  // other total_steps) is an error, not skipped. Lines of metrics.jsonl after the resumed step
  // are removed.
  ResumeReport resume() {
    ResumeReport report;
    auto all = list_checkpoints(options_.run_dir);
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      std::optional<TrainerCheckpoint> c;
      try {
        c = read_trainer_checkpoint(it->second);
      } catch (const Error& e) {
        report.skipped.push_back(it->second.string() + ": " + e.what());
        bar_.message("trainer: skipping unreadable checkpoint " + it->second.string() + ": " + e.what());
        continue;
      }
      apply(*c, it->second);
      report.resumed = true;
      report.step = step_;
      report.file = it->second;
      truncate_metrics(metrics_path(), step_);
      bar_.message("trainer: resumed from " + it->second.string() + " at step " + std::to_string(step_));
      break;
    }
    return report;
  }

  // Runs updates until total_steps, or at most `max_updates` more (then stops as if killed after
  // a step: use it to stop and resume later).
  TrainSummary run(std::int64_t max_updates = std::numeric_limits<std::int64_t>::max()) {
    std::filesystem::create_directories(options_.run_dir);
    MetricsLog log(metrics_path());
    TrainSummary summary;
    summary.excluded = groups_.excluded;
    const auto start = std::chrono::steady_clock::now();
    std::int64_t images = 0, done = 0;
    const double inv = 1.0 / double(options_.accumulate);
    while (step_ < options_.total_steps && done < max_updates) {
      optimizer_.set_lr_factor(lr_factor(step_));
      StepRecord rec;
      rec.lr = optimizer_.lr(0);
      for (std::int64_t a = 0; a < options_.accumulate; ++a) {
        StepOutput out = task_.forward_backward(generator_);
        FIBER_CHECK(out.losses.count("loss"), "Trainer: the task's forward_backward returned no \"loss\" at step ",
                    step_ + 1);
        for (const auto& [name, v] : out.losses) rec.losses[name] += v;
        rec.samples += out.samples;
      }
      for (auto& [name, v] : rec.losses) v *= inv;
      if (options_.stop_on_nonfinite)
        FIBER_CHECK(std::isfinite(rec.losses["loss"]), "Trainer: the loss is ", rec.losses["loss"], " at step ",
                    step_ + 1, " (set stop_on_nonfinite = false to continue anyway)");
      rec.grad_norm = scale_and_clip_grads(all_, options_.clip_norm, inv);
      optimizer_.step();
      for (Var<float>* p : all_) p->zero_grad();
      task_.after_update();
      rec.step = ++step_;
      if (weight_decay_drops_ && weight_decay_drops_->drop(step_)) optimizer_.scale_weight_decay(options_.fine->gamma);
      ++done;
      images += rec.samples;

      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double ips = elapsed > 0 ? double(images) / elapsed : 0.0;
      const double eta = elapsed / double(done) * double(options_.total_steps - step_);
      const bool last = step_ == options_.total_steps;
      const bool log_step = last || (options_.log_every > 0 && step_ % options_.log_every == 0);
      bool eval_step = false;
      nlohmann::json line = nlohmann::json::object();
      if constexpr (EvaluableTask<T>) {
        if (options_.eval_every > 0 && (step_ % options_.eval_every == 0 || last)) {
          eval_step = true;
          for (const auto& [name, v] : task_.evaluate()) line["eval." + name] = v;
        }
      }
      if (log_step || eval_step) {
        line["step"] = step_;
        for (const auto& [name, v] : rec.losses) line[name] = v;
        line["lr"] = rec.lr;
        line["images_per_s"] = ips;
        line["grad_norm"] = rec.grad_norm;
        line["peak_rss_mb"] = peak_rss_mb();
        log.append(line);
      }
      bar_.update(step_, rec.losses["loss"], ips, eta, log_step);
      summary.steps.push_back(std::move(rec));
      if (options_.save_every > 0 && (step_ % options_.save_every == 0 || last)) save_checkpoint();
    }
    bar_.finish();
    summary.final_step = step_;
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary.images_per_s = summary.seconds > 0 ? double(images) / summary.seconds : 0.0;
    summary.peak_rss_mb = peak_rss_mb();
    if (options_.write_curve && !read_metrics(metrics_path()).empty()) write_loss_curve();
    char text[200];
    std::snprintf(text, sizeof text, "trainer: step %lld/%lld, %lld updates in %s, %.1f img/s, peak RSS %.1f MiB",
                  static_cast<long long>(step_), static_cast<long long>(options_.total_steps),
                  static_cast<long long>(done), format_duration(summary.seconds).c_str(), summary.images_per_s,
                  summary.peak_rss_mb);
    bar_.message(text);
    return summary;
  }

  // Writes RUN/checkpoint-<step>.safetensors now (atomically), then deletes checkpoints beyond
  // keep_last. Returns its path.
  std::filesystem::path save_checkpoint() {
    std::filesystem::create_directories(options_.run_dir);
    TrainerCheckpoint c;
    c.step = step_;
    c.total_steps = options_.total_steps;
    c.seed = generator_.seed();
    c.generator_offset = generator_.offset();
    for (const auto& [name, var] : named_) c.parameters.emplace_back(name, var->value());
    for (const ParamGroup& g : groups_.groups)
      for (const NamedParam& p : g.params) {
        const AdamWState& s = optimizer_.state(p.name);
        c.optimizer.push_back({p.name, s.exp_avg, s.exp_avg_sq, s.step});
      }
    task_.save_state(c.task);
    const std::filesystem::path path = checkpoint_path(options_.run_dir, step_);
    write_trainer_checkpoint(path, c);
    prune_checkpoints(options_.run_dir, options_.keep_last);
    return path;
  }

  // RUN/loss.png from RUN/metrics.jsonl; prints the legend (colours are in the returned curve).
  LossCurve write_loss_curve() {
    LossCurve curve = train::write_loss_curve(metrics_path(), options_.run_dir / "loss.png");
    std::string legend = "trainer: wrote " + (options_.run_dir / "loss.png").string() + " (";
    for (std::size_t i = 0; i < curve.series.size(); ++i) {
      const auto& s = curve.series[i];
      char c[48];
      std::snprintf(c, sizeof c, "%s%s #%02x%02x%02x", i ? ", " : "", s.name.c_str(), s.rgb[0], s.rgb[1], s.rgb[2]);
      legend += c;
    }
    bar_.message(legend + ")");
    return curve;
  }

 private:
  // Loads `c` into the task and optimiser; everything is checked before anything is changed.
  void apply(const TrainerCheckpoint& c, const std::filesystem::path& file) {
    const std::string where = file.string();
    FIBER_CHECK(c.total_steps == options_.total_steps, where, ": written by a run of total_steps ", c.total_steps,
                ", this run has ", options_.total_steps, " (the schedule depends on it; use the run's total)");
    FIBER_CHECK(c.step <= options_.total_steps, where, ": step ", c.step, " is past total_steps ", options_.total_steps);
    std::unordered_map<std::string, const Tensor<float>*> stored;
    for (const auto& [name, t] : c.parameters) stored.emplace(name, &t);
    for (const auto& [name, var] : named_) {
      auto it = stored.find(name);
      FIBER_CHECK(it != stored.end(), where, ": has no parameter '", name, "' (written for another model?)");
      FIBER_CHECK(it->second->shape() == var->shape(), where, ": parameter '", name, "' has shape ",
                  it->second->shape(), ", the model ", var->shape());
    }
    FIBER_CHECK(stored.size() == named_.size(), where, ": has ", stored.size(), " parameters, the model ",
                named_.size(), " (written for another model?)");
    for (const OptimizerEntry& o : c.optimizer) {
      optimizer_.state(o.name);  // throws for a name the optimiser does not hold
      FIBER_CHECK(!o.exp_avg.defined() ||
                      (o.exp_avg.shape() == stored.at(o.name)->shape() && o.exp_avg_sq.shape() == o.exp_avg.shape()),
                  where, ": optimiser state of '", o.name, "' has the wrong shape");
    }
    for (const auto& [name, var] : named_) var->value().copy_(*stored.at(name));
    for (const ParamGroup& g : groups_.groups)
      for (const NamedParam& p : g.params) optimizer_.state(p.name) = AdamWState{};
    for (const OptimizerEntry& o : c.optimizer)
      optimizer_.state(o.name) = AdamWState{o.exp_avg.defined() ? o.exp_avg.clone() : Tensor<float>(),
                                            o.exp_avg_sq.defined() ? o.exp_avg_sq.clone() : Tensor<float>(), o.step};
    task_.load_state(c.task);
    for (Var<float>* p : all_) p->zero_grad();
    generator_ = Generator(c.seed);
    generator_.advance(c.generator_offset);
    step_ = c.step;
    if (weight_decay_drops_) {  // the drops made before step_, as the official optimizer state holds them
      weight_decay_drops_.emplace(step_milestones(), options_.fine->weight_decay_schedule_ratio, step_);
      optimizer_.reset_weight_decay();
      for (std::size_t i = 0; i < weight_decay_drops_->drops_done(); ++i) optimizer_.scale_weight_decay(options_.fine->gamma);
    }
  }

  // The fine recipe's max_iter is the run's total; its clip is the trainer's.
  static TrainerOptions with_recipe(TrainerOptions o) {
    if (o.fine) {
      o.fine->max_iter = o.total_steps;
      o.clip_norm = o.fine->clip_grad_norm;
    }
    return o;
  }

  // The coarse recipe's linear warmup and decay, or the fine recipe's warmup and step decay.
  using Schedule = std::variant<PolynomialDecaySchedule, WarmupMultiStepSchedule>;
  static Schedule make_schedule(const TrainerOptions& o) {
    if (o.fine) return WarmupMultiStepSchedule::from(*o.fine);
    return linear_warmup_decay(o.total_steps, o.warmup_fraction, o.learning_rate);
  }
  const std::vector<std::int64_t>& step_milestones() const {
    return std::get<WarmupMultiStepSchedule>(schedule_).milestones;
  }

  T& task_;
  TrainerOptions options_;
  std::vector<std::pair<std::string, Var<float>*>> named_;
  std::vector<Var<float>*> all_;
  ParamGroups groups_;
  AdamW optimizer_;
  Schedule schedule_;
  std::optional<WeightDecaySchedule> weight_decay_drops_;
  Generator generator_;
  ProgressBar bar_;
  std::int64_t step_ = 0;
};

}  // namespace fiber::train
