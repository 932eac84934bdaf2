#pragma once
// `fiber match`: how well a text matches an image, by the fused model (ITM) and by the ITC
// embeddings.
//   fiber match --weights W --vocab V --merges M --image IMG --text T [--json]
// JSON: {"itm_probability": p, "itm_logits": [no, yes], "itc_similarity": s, "rank_score": r}.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "coarse_cli.hpp"

namespace fiber::cli {

void add_match_command(CLI::App& app, CommandList& commands) {
  struct Args : CoarseArgs {
    std::string image, text;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("match", "Image-text matching (ITM probability, ITC similarity) with coarse FIBER");
  add_coarse_options(sub, *args);
  sub->add_option("--image", args->image, "an image file (PNG or JPEG)")->required();
  sub->add_option("--text", args->text, "a text (UTF-8)")->required();
  commands.add(sub, [args]() -> int {
    return with_coarse_pipeline(*args, [&](const auto& fiber) {
      const std::filesystem::path path = args->image;
      const MatchScores s = fiber.match(fiber.load_images({path}), {args->text});
      const double p = s.itm_probability.data()[0], sim = s.itc_similarity.data()[0], rank = s.rank_score.data()[0];
      if (args->json) {
        nlohmann::json out;
        out["itm_probability"] = p;
        out["itm_logits"] = json_row(s.itm_logits, 0);
        out["itc_similarity"] = sim;
        out["rank_score"] = rank;
        std::cout << out.dump() << "\n";
      } else {
        std::printf("itm_probability %.6f\nitc_similarity %.6f\nrank_score %.6f\n", p, sim, rank);
      }
      return 0;
    });
  });
}

}  // namespace fiber::cli
