#pragma once
// `fiber train fine`: fine-grained FIBER training on grounding or detection data with the Trainer
// and the official fine-grained recipe (train/fine_grounding_task.hpp, train/fine_recipe.hpp,
// docs/fine-grained.md).
//   fiber train fine --data DIR|FILE --init W --out RUN [--config demo|base] [--v3] [--steps N]
//       [--batch B] [--lr X] [--lang-lr X] [--min-size N]... [--max-size N] [--flip P]
//       [--warmup N] [--milestones F,F] [--ema D] [--clip X] [--seed S] [--save-every N] [--keep K]
//       [--stop-after N] [--resume RUN] [--vocab V --merges M]
// DIR holds train.json (the shapes world's grounding JSON, MDETR-style grounding data or COCO
// instances) and may hold the tokenizer. At the end RUN/model.safetensors holds the trained
// weights and RUN/model_ema.safetensors their EMA (what the official evaluates).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "train_inputs.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/safetensors_writer.hpp"
#include "fiber/models/fiber_fine.hpp"
#include "fiber/nn/state_dict.hpp"
#include "fiber/train/fine_grounding_task.hpp"
#include "fiber/train/trainer.hpp"

namespace fiber::cli {

struct TrainFineArgs {
  std::string data, out, config = "base", init, resume, vocab, merges;
  bool v3 = false;
  std::int64_t steps = 1000, stop_after = 0, batch = 2, save_every = 1000, keep = 3, warmup = -1;
  std::vector<int> min_sizes{800};
  int max_size = 1333;
  double lr = 1e-4, lang_lr = 1e-5, flip = 0, ema = 0.999, clip = 1.0;
  std::vector<double> milestones{0.67, 0.89};
  std::uint64_t seed = 0;
};

namespace detail {

// The EMA values under the parameters' names, as safetensors.
inline void write_named(const std::filesystem::path& path, const std::vector<std::string>& names,
                        const std::vector<Tensor<float>>& values) {
  std::vector<io::NamedBuffer> buffers;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const Tensor<float>& v = values[i];
    buffers.push_back({names[i], DType::f32, std::vector<std::int64_t>(v.shape().begin(), v.shape().end()),
                       std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()),
                                                  std::size_t(v.numel()) * sizeof(float))});
  }
  io::write_safetensors(path, std::span<const io::NamedBuffer>(buffers), {});
}

}  // namespace detail

template <models::FiberFineConfig C>
int train_fine(const TrainFineArgs& a, const char* config_name) {
  const std::filesystem::path run_dir = detail::run_directory(a.out, a.resume);
  FIBER_CHECK(!a.init.empty() || !a.resume.empty(),
              "fiber train fine: give --init W (what `fiber init fine` writes, or fine-grained weights to fine-tune)");
  const std::filesystem::path train_file = detail::training_file(a.data);
  const text::Tokenizer tok = detail::training_tokenizer(a.data, a.vocab, a.merges);
  const train::GroundingDataset data = train::load_grounding_dataset(train_file);

  auto model = std::make_unique<models::FiberFine<float, C>>();
  if (!a.init.empty()) {
    nn::LoadOptions<float> lo = models::FiberFine<float, C>::load_options();
    lo.ignore = [](std::string_view k) { return train::is_trainer_entry(std::string(k)); };
    nn::load_state_dict<float>(*model, io::open_checkpoint(a.init), lo);
  }
  train::FineGroundingOptions topt;
  topt.batch_size = int(a.batch);
  topt.min_sizes = a.min_sizes;
  topt.max_size = a.max_size;
  topt.flip_probability = a.flip;
  topt.ema_decay = a.ema;
  topt.shuffle_seed = a.seed;
  train::FineGroundingTask<C> task(*model, data, tok, topt);

  train::FineSolverConfig recipe;
  recipe.base_lr = a.lr;
  recipe.lang_lr = a.lang_lr;
  recipe.steps = a.milestones;
  recipe.warmup_iters = a.warmup >= 0 ? a.warmup : std::min<std::int64_t>(2000, a.steps / 10);
  recipe.ema_decay = a.ema;
  recipe.clip_grad_norm = a.clip;
  train::TrainerOptions t;
  t.total_steps = a.steps;
  t.save_every = a.save_every;
  t.keep_last = a.keep;
  t.log_every = std::max<std::int64_t>(1, std::min<std::int64_t>(50, a.steps / 20));
  t.run_dir = run_dir;
  t.seed = a.seed;
  t.fine = recipe;
  train::Trainer trainer(task, t);
  const std::int64_t start = detail::resume_if_asked(trainer, a.resume, a.steps);
  std::printf("FIBER fine %s: %zu training images, %lld steps of batch %lld, lr %g (language %g), warmup %lld\n",
              config_name, data.size(), static_cast<long long>(a.steps), static_cast<long long>(a.batch), a.lr, a.lang_lr,
              static_cast<long long>(recipe.warmup_iters));
  if (data.images_left_out > 0)
    std::printf("  %zu images left out: no box over 1 pixel wide and high (as the official data sets)\n", data.images_left_out);
  const bool stopping = a.stop_after > 0 && a.stop_after < a.steps;
  const train::TrainSummary s = stopping ? trainer.run(std::max<std::int64_t>(0, a.stop_after - start)) : trainer.run();
  if (stopping) {
    trainer.save_checkpoint();  // where --resume picks it up
  } else {
    nn::save_safetensors<float>(*model, run_dir / "model.safetensors");
    if (task.ema()) detail::write_named(run_dir / "model_ema.safetensors", task.ema()->names(), task.ema()->values());
  }
  std::printf("step %lld: loss %.4f in %.0f s (%.1f images/s), peak RSS %.0f MiB; run in %s\n",
              static_cast<long long>(s.final_step), s.steps.empty() ? 0.0 : s.steps.back().losses.at("loss"), s.seconds,
              s.images_per_s, s.peak_rss_mb, excerpt(run_dir.string(), 200).c_str());
  return 0;
}

void add_train_fine_command(CLI::App* train, CommandList& commands) {
  auto a = std::make_shared<TrainFineArgs>();
  CLI::App* sub = train->add_subcommand("fine", "Fine-grained FIBER: ATSS grounding losses (token focal, GIoU, centerness), "
                                                "AdamW with the official groups, warmup and step decay, EMA");
  sub->add_option("--data", a->data, "grounding data: DIR (train.json inside) or a COCO-layout .json file")->required();
  sub->add_option("--out", a->out, "the run directory (checkpoints, metrics.jsonl, loss.png, model.safetensors)");
  sub->add_option("--config", a->config, "model: demo (the shapes world's, examples/ground_phrase) or base (FIBER-B)")
      ->check(CLI::IsMember({"demo", "base"}))
      ->capture_default_str();
  sub->add_flag("--v3", a->v3, "fusion v3 (norm_i2t_i; the referring-expression configs), with --config base");
  sub->add_option("--init", a->init, "start from these weights (fiber init fine output, an official fine .pth, a checkpoint)");
  sub->add_option("--steps", a->steps, "total optimiser steps of the run (also when resuming)")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(100'000'000)))
      ->capture_default_str();
  sub->add_option("--stop-after", a->stop_after, "stop after this step (a checkpoint is written there); --resume RUN continues")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(100'000'000)));
  sub->add_option("--batch", a->batch, "images per step")->check(CLI::Range(std::int64_t(1), std::int64_t(4096)))->capture_default_str();
  sub->add_option("--lr", a->lr, "base learning rate (biases x2)")->check(CLI::Range(1e-12, 1.0))->capture_default_str();
  sub->add_option("--lang-lr", a->lang_lr, "learning rate of the language backbone")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--min-size", a->min_sizes, "shorter image side; several: one drawn per image (multi-scale)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  sub->add_option("--max-size", a->max_size, "longer side at most")->check(CLI::Range(1, 8192))->capture_default_str();
  sub->add_option("--flip", a->flip, "horizontal flip probability (official 0.5 flips without swapping left/right in captions)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--warmup", a->warmup, "linear warmup steps (default: a tenth of --steps, at most 2000)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(100'000'000)));
  sub->add_option("--milestones", a->milestones, "lr x0.1 at these fractions of --steps (or step numbers >= 1)")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  sub->add_option("--ema", a->ema, "EMA decay of the weights (0: none)")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--clip", a->clip, "gradient-norm limit of the whole model (0: none)")->check(CLI::Range(0.0, 1e6))->capture_default_str();
  sub->add_option("--seed", a->seed, "seed of data order, augmentation, dropout")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--save-every", a->save_every, "checkpoint every N steps (and at the end)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(100'000'000)))
      ->capture_default_str();
  sub->add_option("--keep", a->keep, "checkpoints kept (0: all)")->check(CLI::Range(std::int64_t(0), std::int64_t(1'000'000)))->capture_default_str();
  sub->add_option("--resume", a->resume, "continue the run in this directory from its newest complete checkpoint");
  sub->add_option("--vocab", a->vocab, "tokenizer vocab.json (default: beside the data)");
  sub->add_option("--merges", a->merges, "tokenizer merges.txt (default: beside the data)");
  commands.add(sub, [a]() -> int {
    FIBER_CHECK(!a->out.empty() || !a->resume.empty(), "fiber train fine: give --out RUN (or --resume RUN)");
    if (a->config == "demo") {
      FIBER_CHECK(!a->v3, "fiber train fine: --v3 is for --config base");
      return train_fine<models::FiberDemoFine>(*a, "demo");
    }
    return a->v3 ? train_fine<models::FiberBaseFineV3>(*a, "base-v3") : train_fine<models::FiberBaseFine>(*a, "base");
  });
}

}  // namespace fiber::cli
