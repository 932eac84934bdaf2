#pragma once
// `fiber ground`: phrase grounding with fine-grained FIBER.
//   fiber ground --weights W --vocab V --merges M --image IMG --text T [--phrase P]... [--threshold X]
//                [--min-size 800] [--max-size 1333] [--ema] [--threads N] [--json] [--draw OUT.png]
// Each --phrase must occur in T; without any, T is a detection prompt ("cat. dog. traffic light").
// JSON: {"image_size": [w, h], "detections": [{"box": [x1, y1, x2, y2], "score": s, "label": i,
// "phrase": "..."}]} with boxes in the image's pixels, labels 1-based phrase indices, by score.
// Text: one line per detection, "label score x1 y1 x2 y2 phrase". --draw writes the image (PNG)
// with each box in its phrase's colour and a "label score" plate.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/io/draw.hpp"
#include "fiber/io/image_decode.hpp"
#include "fiber/io/png.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/fine_variants.hpp"
#include "fiber/models/grounder.hpp"

namespace fiber::cli {

// The image with each box in its label's colour and a "label score" plate above it (inside the
// box where there is no room above), lowest scores first so the best stay on top.
inline void draw_groundings(io::Image image, const Grounding& g, const std::string& path) {
  for (auto it = g.detections.rbegin(); it != g.detections.rend(); ++it) {
    const io::Rgb c = io::label_colour(it->label);
    io::draw_rectangle(image, it->box[0], it->box[1], it->box[2], it->box[3], c, 2);
    char text[32];
    std::snprintf(text, sizeof text, "%lld %.2f", static_cast<long long>(it->label), double(it->score));
    const int plate = 7 * 2, x = int(std::lround(it->box[0])), top = int(std::lround(it->box[1]));
    io::draw_label(image, x, top - plate >= 0 ? top - plate : top, text, io::Rgb{255, 255, 255}, c, 2);
  }
  io::write_png(image, path);
}

void add_ground_command(CLI::App& app, CommandList& commands) {
  struct Args {
    std::string weights, vocab, merges, image, text, draw;
    std::vector<std::string> phrases;
    double threshold = 0.05;
    int min_size = 800, max_size = 1333, threads = 0;
    bool ema = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("ground", "Phrase grounding (boxes for phrases of a text) with fine-grained FIBER");
  sub->add_option("--weights", a->weights, "fine-grained FIBER weights: the official .pth or safetensors")->required();
  sub->add_option("--vocab", a->vocab, "roberta-base vocab.json")->required();
  sub->add_option("--merges", a->merges, "roberta-base merges.txt")->required();
  sub->add_option("--image", a->image, "an image file (PNG or JPEG)")->required();
  sub->add_option("--text", a->text, "the caption, or a detection prompt 'cat. dog. ...' (UTF-8)")->required();
  sub->add_option("--phrase", a->phrases, "a phrase of --text to ground (repeat for several; default: split --text at '.')");
  sub->add_option("--threshold", a->threshold, "minimum phrase score of a candidate box (INFERENCE_TH)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--min-size", a->min_size, "the resized image's shorter side")->check(CLI::Range(32, 4096))->capture_default_str();
  sub->add_option("--max-size", a->max_size, "the resized image's longer side at most")->check(CLI::Range(32, 8192))->capture_default_str();
  sub->add_option("--threads", a->threads, "worker threads (default: all cores)")->check(CLI::Range(1, 1024));
  sub->add_flag("--ema", a->ema, "use the checkpoint's model_ema weights (a maskrcnn_benchmark .pth)");
  sub->add_flag("--json", a->json, "print JSON");
  sub->add_option("--draw", a->draw, "write the image with the boxes drawn on it (PNG)");
  commands.add(sub, [a]() -> int {
    FIBER_CHECK(a->min_size <= a->max_size, "fiber ground: --min-size ", a->min_size, " is above --max-size ", a->max_size);
    if (a->threads > 0) set_num_threads(a->threads);
    io::OpenOptions open;
    if (a->ema) open.state_dict_key = "model_ema";
    const io::Checkpoint checkpoint = io::open_checkpoint(a->weights, open);
    return models::with_fine_config(checkpoint, [&]<models::FiberFineConfig C>() -> int {
      using G = Grounder<C>;
      auto model = std::make_shared<typename G::Model>();
      nn::load_state_dict<float>(*model, checkpoint, G::Model::load_options());
      GroundOptions opt;
      opt.min_size = a->min_size;
      opt.max_size = a->max_size;
      opt.postprocess.score_threshold = a->threshold;
      G grounder(std::move(model), text::Tokenizer::from_files(a->vocab, a->merges), opt);
      grounder.set_prompt(a->text, a->phrases);
      const io::Image image = io::read_image(a->image);
      const Grounding g = grounder.ground(image);
      if (!a->draw.empty()) draw_groundings(image, g, a->draw);
      if (a->json) {
        nlohmann::json out;
        out["image_size"] = {g.image_width, g.image_height};
        out["detections"] = nlohmann::json::array();
        for (const GroundedBox& d : g.detections)
          out["detections"].push_back({{"box", d.box}, {"score", d.score}, {"label", d.label}, {"phrase", d.phrase}});
        std::cout << out.dump() << "\n";
      } else {
        for (const GroundedBox& d : g.detections)
          std::printf("%lld %.4f %.1f %.1f %.1f %.1f %s\n", static_cast<long long>(d.label), d.score, d.box[0], d.box[1],
                      d.box[2], d.box[3], d.phrase.c_str());
      }
      return 0;
    });
  });
}

}  // namespace fiber::cli
