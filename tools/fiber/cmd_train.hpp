#pragma once
// `fiber train coarse`: coarse FIBER pre-training (ITC + ITM with hard negatives + MLM) with the
// Trainer (include/fiber/train/, docs/training.md).
//   fiber train coarse --data DIR|FILE --out RUN [--config demo|tiny|base] [--init W] [--steps N]
//       [--batch B] [--lr X] [--seed S] [--save-every N] [--stop-after N] [--resume RUN] [--val FILE]
//       [--eval-every N] [--queue Q] [--accumulate N] [--clip X] [--lr-mult M] [--gate-init A]
//       [--uniform-negatives S] [--vocab V --merges M]
// DIR holds train.json (COCO captions or the shapes world) or train.jsonl, and may hold val.json /
// val.jsonl and the tokenizer (vocab.json, merges.txt). --steps is the run's total, also when
// resuming. Metrics go to RUN/metrics.jsonl, checkpoints to RUN/checkpoint-*.safetensors.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "command.hpp"
#include "train_inputs.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/coarse_init.hpp"
#include "fiber/nn/state_dict.hpp"
#include "fiber/train/coarse_pretrain_task.hpp"
#include "fiber/train/trainer.hpp"

namespace fiber::cli {

struct TrainCoarseArgs {
  std::string data, out, config = "base", init, resume, val, vocab, merges;
  std::int64_t steps = 1000, stop_after = 0, batch = 32, save_every = 1000, eval_every = 0, queue = 4096, accumulate = 1, keep = 3;
  double lr = 1e-5, clip = 0, lr_mult = 5, gate_init = 0;  // the official recipe (from pre-trained backbones)
  double uniform_negatives = 0;                             // 0: the official ITM negatives
  std::uint64_t seed = 0;
  int loader_threads = 1;
};

namespace detail {

// The held-out file: --val, else DIR/val.json(l) when --data is a directory holding one, else none.
inline std::filesystem::path validation_file(const TrainCoarseArgs& a) {
  if (!a.val.empty()) return a.val;
  const std::filesystem::path d = a.data;
  if (std::filesystem::is_directory(d))
    for (const char* name : {"val.json", "val.jsonl"})
      if (std::filesystem::exists(d / name)) return d / name;
  return {};
}

}  // namespace detail

template <models::FiberCoarseConfig C>
int train_coarse(const TrainCoarseArgs& a, const char* config_name) {
  const std::filesystem::path run_dir = detail::run_directory(a.out, a.resume);
  const std::filesystem::path train_file = detail::training_file(a.data);
  const text::Tokenizer tok = detail::training_tokenizer(a.data, a.vocab, a.merges);
  FIBER_CHECK(std::int64_t(tok.vocab_size()) <= C.text.vocab_size, "fiber train: the tokenizer has ", tok.vocab_size(),
              " tokens, the ", config_name, " model's embedding ", C.text.vocab_size);
  const train::CaptionDataset train_set = train::load_caption_dataset(train_file);
  FIBER_CHECK(std::int64_t(train_set.size()) >= a.batch, "fiber train: ", train_set.size(), " training captions, fewer than --batch ",
              a.batch);

  auto model = std::make_unique<models::FiberCoarse<float, C>>();
  if (!a.init.empty()) {
    // What `fiber init coarse` writes, the official .ckpt (queues ignored), or a trainer checkpoint.
    nn::LoadOptions<float> lo = models::FiberCoarse<float, C>::load_options();
    lo.ignore = [](std::string_view k) {
      return models::FiberCoarse<float, C>::is_queue_key(k) || train::is_trainer_entry(std::string(k));
    };
    nn::load_state_dict<float>(*model, io::open_checkpoint(a.init), lo);
  } else {
    models::init_coarse(*model, a.seed, {.gate = a.gate_init});
  }

  train::PrefetchOptions lopt;
  lopt.batch_size = int(a.batch);
  lopt.image_size = C.swin.image_size;
  lopt.max_text_len = std::size_t(C.max_text_len);
  lopt.threads = a.loader_threads;
  lopt.seed = a.seed;
  lopt.drop_last = true;
  train::PrefetchLoader loader(train_set, tok, lopt);
  train::CoarsePretrainOptions topt;
  topt.queue_size = a.queue;
  topt.queue_seed = a.seed;
  topt.masking = train::masking_for(tok);
  topt.objectives.uniform_negative_share = a.uniform_negatives;
  train::CoarsePretrainTask<C> task(*model, loader, topt);
  const std::filesystem::path val = detail::validation_file(a);
  if (!val.empty())
    task.set_evaluation(train::load_eval_set(train::load_caption_dataset(val), tok, C.swin.image_size, std::size_t(C.max_text_len)));

  train::TrainerOptions t;
  t.total_steps = a.steps;
  t.accumulate = a.accumulate;
  t.learning_rate = a.lr;
  t.lr_mult_head = t.lr_mult_cross_modal = a.lr_mult;
  t.clip_norm = a.clip;
  t.save_every = a.save_every;
  t.keep_last = a.keep;
  t.eval_every = val.empty() ? 0 : a.eval_every;
  t.log_every = std::max<std::int64_t>(1, std::min<std::int64_t>(50, a.steps / 20));
  t.run_dir = run_dir;
  t.seed = a.seed;
  train::Trainer trainer(task, t);
  const std::int64_t start = detail::resume_if_asked(trainer, a.resume, a.steps);
  const std::string gates = !a.init.empty()     ? "gates from --init"
                            : start > 0          ? "gates from the checkpoint"
                                                 : fiber::detail::concat("cross-attention gates from ", a.gate_init);
  std::printf("FIBER coarse %s: %zu training captions, %lld steps of batch %lld x %lld, lr %g (x%g for cross-modal parts and "
              "heads), %s, queue %lld, uniform share of ITM negatives %g%s\n",
              config_name, train_set.size(), static_cast<long long>(a.steps), static_cast<long long>(a.batch),
              static_cast<long long>(a.accumulate), a.lr, a.lr_mult, gates.c_str(), static_cast<long long>(a.queue),
              a.uniform_negatives,
              val.empty() ? "" : (", evaluation on " + excerpt(val.string(), 200)).c_str());
  const bool stopping = a.stop_after > 0 && a.stop_after < a.steps;
  const train::TrainSummary s =
      stopping ? trainer.run(std::max<std::int64_t>(0, a.stop_after - start)) : trainer.run();
  if (stopping) trainer.save_checkpoint();  // where --resume picks it up
  std::printf("step %lld: loss %.4f in %.0f s (%.1f images/s), peak RSS %.0f MiB; run in %s\n",
              static_cast<long long>(s.final_step), s.steps.empty() ? 0.0 : s.steps.back().losses.at("loss"), s.seconds,
              s.images_per_s, s.peak_rss_mb, excerpt(run_dir.string(), 200).c_str());
  if (!val.empty()) {
    for (const auto& [k, v] : task.evaluate()) std::printf("  %s %.3f\n", k.c_str(), v);
  }
  return 0;
}

void add_train_command(CLI::App& app, CommandList& commands) {
  auto a = std::make_shared<TrainCoarseArgs>();
  CLI::App* trainer = app.add_subcommand("train", "Train a model (fiber train coarse --help, fiber train fine --help)");
  trainer->require_subcommand(1);
  CLI::App* sub = trainer->add_subcommand("coarse", "Coarse FIBER pre-training: ITC + ITM (hard negatives) + MLM, "
                                                    "AdamW with the official groups, 10% warmup, linear decay");
  sub->add_option("--data", a->data, "training captions: DIR (train.json / train.jsonl inside) or a .json / .jsonl file")
      ->required();
  sub->add_option("--out", a->out, "the run directory (checkpoints, metrics.jsonl, loss.png)");
  sub->add_option("--config", a->config, "model: demo (64 px, examples/train_coarse), tiny (the test model), base (FIBER-B 384)")
      ->check(CLI::IsMember({"demo", "tiny", "base"}))
      ->capture_default_str();
  sub->add_option("--init", a->init, "start from these weights (fiber init coarse output, an official .ckpt, a checkpoint)");
  sub->add_option("--steps", a->steps, "total optimiser steps of the run (also when resuming)")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(100'000'000)))
      ->capture_default_str();
  sub->add_option("--stop-after", a->stop_after,
                  "stop after this step (a checkpoint is written there); --resume RUN continues to --steps")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(100'000'000)));
  sub->add_option("--batch", a->batch, "images per micro-batch")->check(CLI::Range(std::int64_t(1), std::int64_t(65536)))->capture_default_str();
  sub->add_option("--accumulate", a->accumulate, "micro-batches per step")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(65536)))
      ->capture_default_str();
  sub->add_option("--lr", a->lr, "base learning rate (x--lr-mult for cross-modal parts and heads)")
      ->check(CLI::Range(1e-12, 1.0))
      ->capture_default_str();
  sub->add_option("--lr-mult", a->lr_mult,
                  "learning-rate multiplier for cross-modal parts and heads (official 5; 1 trains from scratch better)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  sub->add_option("--gate-init", a->gate_init,
                  "start of the cross-attention gates alpha_i2t / alpha_t2i of a fresh model (official 0; 1 trains from scratch "
                  "better); not with --init")
      ->check(CLI::Range(-10.0, 10.0))
      ->capture_default_str();
  sub->add_option("--uniform-negatives", a->uniform_negatives,
                  "share of uniform weight mixed into the ITM negatives' draw (official 0: by ITC similarity only; 0.5 trains "
                  "from scratch better)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--clip", a->clip, "gradient-norm limit (0: none, as the official recipe)")->check(CLI::Range(0.0, 1e6));
  sub->add_option("--seed", a->seed, "seed of initialisation, data order, masking, negatives")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--queue", a->queue, "ITC queue entries (official 4096; it keeps pixels: 4096 at 384 px is 7 GB)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 20))
      ->capture_default_str();
  sub->add_option("--save-every", a->save_every, "checkpoint every N steps (and at the end)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(100'000'000)))
      ->capture_default_str();
  sub->add_option("--keep", a->keep, "checkpoints kept (0: all)")->check(CLI::Range(std::int64_t(0), std::int64_t(1'000'000)))->capture_default_str();
  sub->add_option("--resume", a->resume, "continue the run in this directory from its newest complete checkpoint");
  sub->add_option("--val", a->val, "held-out captions for retrieval evaluation (default DIR/val.json if present)");
  sub->add_option("--eval-every", a->eval_every, "evaluate every N steps (0: at the end only)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(100'000'000)));
  sub->add_option("--vocab", a->vocab, "tokenizer vocab.json (default: beside the data)");
  sub->add_option("--merges", a->merges, "tokenizer merges.txt (default: beside the data)");
  sub->add_option("--loader-threads", a->loader_threads, "image decoding threads")->check(CLI::Range(1, 64))->capture_default_str();
  commands.add(sub, [a]() -> int {
    FIBER_CHECK(!a->out.empty() || !a->resume.empty(), "fiber train coarse: give --out RUN (or --resume RUN)");
    FIBER_CHECK(a->init.empty() || a->gate_init == 0.0, "fiber train coarse: --gate-init ", a->gate_init,
                " sets up a fresh model; with --init the gates come from ", a->init);
    if (a->config == "demo") return train_coarse<models::FiberDemoCoarse>(*a, "demo");
    if (a->config == "tiny") return train_coarse<models::FiberTinyCoarse>(*a, "tiny");
    return train_coarse<models::FiberBaseCoarse384>(*a, "base-384");
  });
  add_train_fine_command(trainer, commands);  // cmd_train_fine.hpp
}

}  // namespace fiber::cli
