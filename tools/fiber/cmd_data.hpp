#pragma once
// `fiber data`: data sets for training.
//   fiber data shapes --out DIR [--train 1000] [--val 100] [--seed 0] [--size 64]
//                     [--min-shapes 2] [--max-shapes 2] [--antialias] [--force]
// writes the shapes world (include/fiber/train/shapes_world.hpp, docs/data.md) into DIR. A DIR
// that exists and is not empty is refused unless --force (then files of the same names are
// replaced and other files are left alone).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "command.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/train/shapes_world.hpp"

namespace fiber::cli {

void add_data_command(CLI::App& app, CommandList& commands) {
  struct Args {
    std::string out;
    train::ShapesWorldOptions world;
  };
  auto args = std::make_shared<Args>();
  CLI::App* data = app.add_subcommand("data", "Make data sets for training (fiber data shapes --help)");
  data->require_subcommand(1);
  CLI::App* shapes = data->add_subcommand(
      "shapes", "Write the shapes world: captioned, box-annotated scenes of coloured shapes (COCO + JSONL + vocab)");
  const auto max = train::ShapesWorldOptions::max_images;
  shapes->add_option("--out", args->out, "output directory (made if missing; must be empty unless --force)")->required();
  shapes->add_option("--train", args->world.train, "training scenes")->check(CLI::Range(std::int64_t(0), max))->capture_default_str();
  shapes->add_option("--val", args->world.val, "validation scenes (captions unseen in train where possible)")
      ->check(CLI::Range(std::int64_t(0), max))
      ->capture_default_str();
  shapes->add_option("--seed", args->world.seed, "random seed: same seed, same files")
      ->check(CLI::NonNegativeNumber)  // an unsigned parse would take -1 as 2^64 - 1
      ->capture_default_str();
  shapes->add_option("--size", args->world.size, "image side in pixels")->check(CLI::Range(32, 1024))->capture_default_str();
  shapes->add_option("--min-shapes", args->world.min_shapes, "fewest shapes in a scene")->check(CLI::Range(1, 3))->capture_default_str();
  shapes->add_option("--max-shapes", args->world.max_shapes, "most shapes in a scene")->check(CLI::Range(1, 3))->capture_default_str();
  shapes->add_flag("--antialias", args->world.antialias, "anti-aliased edges (4x4 samples a pixel)");
  shapes->add_flag("--force", args->world.overwrite, "write into a directory that is not empty");
  commands.add(shapes, [args]() -> int {
    const train::ShapesWorldSummary s = train::write_shapes_world(args->out, args->world);
    std::printf("wrote %lld train and %lld val scenes (%dx%d, seed %llu) to %s; vocabulary %lld tokens\n",
                static_cast<long long>(s.train), static_cast<long long>(s.val), args->world.size, args->world.size,
                static_cast<unsigned long long>(args->world.seed), excerpt(args->out, 200).c_str(),
                static_cast<long long>(train::shapes_world_vocab_size));
    if (s.val_captions_seen_in_train > 0 || s.val_captions_repeated > 0)
      std::printf("note: %lld val captions also occur in train and %lld repeat within val (the caption space is small "
                  "for these options)\n",
                  static_cast<long long>(s.val_captions_seen_in_train), static_cast<long long>(s.val_captions_repeated));
    return 0;
  });
}

}  // namespace fiber::cli
