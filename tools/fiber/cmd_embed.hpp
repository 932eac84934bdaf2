#pragma once
// `fiber embed`: the ITC embedding of one image or one text (unit norm; compare by dot product).
//   fiber embed --weights W --vocab V --merges M (--image IMG | --text T) [--json]
// Prints the values on one line, or with --json {"embedding": [...]}.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "coarse_cli.hpp"

namespace fiber::cli {

void add_embed_command(CLI::App& app, CommandList& commands) {
  struct Args : CoarseArgs {
    std::string image, text;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("embed", "ITC embedding of an image or a text with coarse FIBER");
  add_coarse_options(sub, *args);
  auto* image = sub->add_option("--image", args->image, "an image file (PNG or JPEG)");
  auto* text = sub->add_option("--text", args->text, "a text (UTF-8)");
  image->excludes(text);
  text->excludes(image);
  commands.add(sub, [args]() -> int {
    FIBER_CHECK(!args->image.empty() || !args->text.empty(), "embed: give --image or --text");
    return with_coarse_pipeline(*args, [&](const auto& fiber) {
      const std::filesystem::path path = args->image;
      const Tensor<float> e = args->image.empty() ? fiber.embed_texts({args->text})
                                                  : fiber.embed_images(fiber.load_images({path}));
      if (args->json) {
        std::cout << nlohmann::json{{"embedding", json_row(e, 0)}}.dump() << "\n";
      } else {
        for (std::int64_t i = 0; i < e.size(1); ++i) std::printf(i ? " %.8g" : "%.8g", double(e.data()[i]));
        std::printf("\n");
      }
      return 0;
    });
  });
}

}  // namespace fiber::cli
