#pragma once
// fiber init coarse --swin SWIN --roberta ROBERTA --out W.safetensors [--seed N] [--image-size 384|576]
//                   [--config base|tiny]:
// a coarse FIBER model started from public backbones (Swin-B/384 22k, roberta-base), every other
// parameter initialised as the official code does, written under the official keys.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "command.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/coarse_backbones.hpp"

namespace fiber::cli {

template <models::FiberCoarseConfig C>
int init_coarse_from_backbones(const std::string& swin, const std::string& roberta, const std::string& out,
                               std::uint64_t seed, const std::string& name, bool quiet) {
  const io::Checkpoint swin_ck = io::open_checkpoint(swin);
  const io::Checkpoint roberta_ck = io::open_checkpoint(roberta);
  auto model = std::make_unique<models::FiberCoarse<float, C>>();
  const models::BackboneReport r = models::init_from_backbones(*model, swin_ck, roberta_ck, seed);
  nn::save_safetensors<float>(*model, out,
                              {{"format", "pt"},
                               {"fiber.model", name},
                               {"fiber.init", "seed " + std::to_string(seed) + "; swin " + swin + " (" +
                                                  models::swin_layout_name(r.swin_layout) + " layout); roberta " + roberta}});
  if (!quiet) {
    std::cout << "FIBER coarse " << name << " (image " << C.swin.image_size << ", window " << C.swin.window() << ")\n"
              << "  " << r.swin_loaded << " tensors from " << swin << " (" << models::swin_layout_name(r.swin_layout)
              << " layout)";
    if (!r.adapted.empty()) std::cout << ", " << r.adapted.size() << " relative-position tables resized";
    std::cout << "\n  " << r.roberta_loaded << " tensors from " << roberta
              << (r.roberta_prefixed ? " ('roberta.' prefix)" : "") << "\n  " << r.initialised.size()
              << " initialised (seed " << seed << "), " << r.ignored.size() << " file entries not used\n"
              << "wrote " << out << '\n';
  }
  return 0;
}

inline void add_init_command(CLI::App& app, CommandList& commands) {
  struct Options {
    std::string swin, roberta, out, config = "base";
    std::uint64_t seed = 0;
    int image_size = 0;
    bool quiet = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* init = app.add_subcommand("init", "Initialise a model from public backbones");
  init->require_subcommand(1);
  CLI::App* sub = init->add_subcommand(
      "coarse", "Coarse FIBER from Swin (Microsoft .pth or timm safetensors) and RoBERTa (transformers) weights; every "
                "other parameter initialised as the official code does");
  sub->add_option("--swin", o->swin, "Swin-B/384 ImageNet-22k weights (Microsoft's .pth or timm's safetensors)")
      ->required();
  sub->add_option("--roberta", o->roberta, "roberta-base weights (model.safetensors or pytorch_model.bin)")->required();
  sub->add_option("--out", o->out, "the safetensors file to write (atomically)")->required();
  sub->add_option("--seed", o->seed, "seed of the new parameters' initialisation (default 0)");
  sub->add_option("--image-size", o->image_size, "384 (pre-training) or 576 (fine-tuning; window 18); default 384")
      ->check(CLI::IsMember({384, 576}));
  sub->add_option("--config", o->config, "base (FIBER-B) or tiny (the test model, image 128)")
      ->check(CLI::IsMember({"base", "tiny"}));
  sub->add_flag("-q,--quiet", o->quiet, "print nothing on success");
  commands.add(sub, [o] {
    if (o->config == "tiny") {
      FIBER_CHECK(o->image_size == 0, "fiber init coarse: --image-size is for --config base; the tiny model is 128 x 128");
      return init_coarse_from_backbones<models::FiberTinyCoarse>(o->swin, o->roberta, o->out, o->seed, "tiny", o->quiet);
    }
    if (o->image_size == 576)
      return init_coarse_from_backbones<models::FiberBaseCoarse576>(o->swin, o->roberta, o->out, o->seed, "base-576",
                                                                    o->quiet);
    return init_coarse_from_backbones<models::FiberBaseCoarse384>(o->swin, o->roberta, o->out, o->seed, "base-384",
                                                                  o->quiet);
  });
}

}  // namespace fiber::cli
