#pragma once
// fiber init coarse --swin SWIN --roberta ROBERTA --out W.safetensors [--seed N] [--image-size 384|576]
//                   [--config base|tiny]:
// a coarse FIBER model started from public backbones (Swin-B/384 22k, roberta-base), every other
// parameter initialised as the official code does, written under the official keys.
// fiber init fine --coarse W --out F.safetensors [--seed N] [--config base|tiny|demo] [--v3]:
// a fine-grained FIBER started from a coarse one by the official suffix rule (fine_init.hpp), the
// FPN, DyHead and stage norms initialised as the official constructors do.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "command.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/coarse_backbones.hpp"
#include "fiber/models/fine_init.hpp"

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

template <models::FiberFineConfig C>
int init_fine_from_coarse(const std::string& coarse, const std::string& out, std::uint64_t seed, const std::string& name,
                          bool quiet) {
  const io::Checkpoint ck = io::open_checkpoint(coarse);
  auto model = std::make_unique<models::FiberFine<float, C>>();
  const models::FineInitReport r = models::init_fine_from_coarse(*model, ck, seed);
  nn::save_safetensors<float>(*model, out,
                              {{"format", "pt"},
                               {"fiber.model", name},
                               {"fiber.init", "seed " + std::to_string(seed) + "; coarse " + coarse}});
  if (!quiet) {
    std::cout << "FIBER fine-grained " << name << " (window " << C.window << ", fusion "
              << (C.i2t_query_norm ? "v3" : "v2") << ")\n"
              << "  " << r.copied << " tensors from " << coarse << " by suffix";
    if (!r.adapted.empty()) std::cout << ", " << r.adapted.size() << " relative-position tables resized";
    std::cout << "\n  " << r.initialised.size() << " initialised (FPN, DyHead, stage norms; seed " << seed << "), "
              << r.unused.size() << " coarse entries not used\n"
              << "wrote " << out << '\n';
  }
  return 0;
}

void add_init_command(CLI::App& app, CommandList& commands) {
  struct Options {
    std::string swin, roberta, out, config = "base";
    std::uint64_t seed = 0;
    int image_size = 0;
    bool quiet = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* init = app.add_subcommand("init", "Initialise a model from public backbones or a coarse model");
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

  struct FineOptions {
    std::string coarse, out, config = "base";
    std::uint64_t seed = 0;
    bool v3 = false, quiet = false;
  };
  auto f = std::make_shared<FineOptions>();
  CLI::App* fine = init->add_subcommand(
      "fine", "Fine-grained FIBER from a coarse one (fiber init coarse / fiber train coarse output, or an official "
              "coarse .ckpt) by the official suffix rule; FPN and DyHead initialised as the official code does");
  fine->add_option("--coarse", f->coarse, "the coarse FIBER weights")->required();
  fine->add_option("--out", f->out, "the safetensors file to write (atomically)")->required();
  fine->add_option("--seed", f->seed, "seed of the new parameters' initialisation (default 0)");
  fine->add_option("--config", f->config, "base (FIBER-B), tiny (the test model) or demo (the shapes world's, from a demo coarse)")
      ->check(CLI::IsMember({"base", "tiny", "demo"}));
  fine->add_flag("--v3", f->v3, "fusion v3 (norm_i2t_i on the i2t queries: the referring-expression configs)");
  fine->add_flag("-q,--quiet", f->quiet, "print nothing on success");
  commands.add(fine, [f] {
    if (f->config == "demo") {
      FIBER_CHECK(!f->v3, "fiber init fine: --v3 is for --config base or tiny");
      return init_fine_from_coarse<models::FiberDemoFine>(f->coarse, f->out, f->seed, "demo", f->quiet);
    }
    if (f->config == "tiny")
      return f->v3 ? init_fine_from_coarse<models::FiberTinyFineV3>(f->coarse, f->out, f->seed, "tiny-v3", f->quiet)
                   : init_fine_from_coarse<models::FiberTinyFine>(f->coarse, f->out, f->seed, "tiny", f->quiet);
    return f->v3 ? init_fine_from_coarse<models::FiberBaseFineV3>(f->coarse, f->out, f->seed, "base-v3", f->quiet)
                 : init_fine_from_coarse<models::FiberBaseFine>(f->coarse, f->out, f->seed, "base", f->quiet);
  });
}

}  // namespace fiber::cli
