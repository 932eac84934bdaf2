#pragma once
// fiber convert IN OUT.safetensors [--dtype f32|f16|bf16] [--drop REGEX]... [--keep-queues]:
// any supported checkpoint to safetensors, streamed tensor by tensor.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "command.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/safetensors_writer.hpp"

namespace fiber::cli {

// The coarse FIBER checkpoints' ITC queue buffers (up to 7 GB): training state, not weights.
inline constexpr const char* itc_queue_pattern =
    R"((^|\.)(image_queue|text_queue|image_input_queue|text_input_queue|text_input_mask_queue|queue_ptr|queue_total)$)";

inline void add_convert_command(CLI::App& app, CommandList& commands) {
  struct Options {
    std::string input, output, dtype;
    std::vector<std::string> drop;
    bool keep_queues = false;
    bool quiet = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "convert", "Convert a checkpoint (safetensors, .pt, .pth, Lightning .ckpt) to safetensors, one tensor at a time; "
                 "the ITC queue buffers are dropped unless --keep-queues");
  sub->add_option("IN", options->input, "the checkpoint to read")->required();
  sub->add_option("OUT", options->output, "the safetensors file to write (atomically)")->required();
  sub->add_option("--dtype", options->dtype, "convert floating tensors to this type (integer tensors keep theirs)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  sub->add_option("--drop", options->drop, "also drop tensors whose name matches this regular expression (repeatable)");
  sub->add_flag("--keep-queues", options->keep_queues,
                "keep image_queue, text_queue, image_input_queue, text_input_queue, text_input_mask_queue, queue_ptr, "
                "queue_total");
  sub->add_flag("-q,--quiet", options->quiet, "print nothing on success");
  commands.add(sub, [options] {
    std::vector<std::regex> drops;
    std::vector<std::string> patterns = options->drop;
    if (!options->keep_queues) patterns.insert(patterns.begin(), itc_queue_pattern);
    for (const auto& p : patterns) {
      try {
        drops.emplace_back(p, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail("--drop '", p, "': not a valid regular expression (", e.what(), ")");
      }
    }
    std::optional<DType> as;
    if (options->dtype == "f32") as = DType::f32;
    if (options->dtype == "f16") as = DType::f16;
    if (options->dtype == "bf16") as = DType::bf16;

    const io::Checkpoint ck = io::open_checkpoint(options->input);
    std::vector<std::string> keep, dropped;
    std::uint64_t bytes = 0;
    for (const auto& name : ck.names()) {
      bool drop = false;
      for (const auto& re : drops) drop = drop || std::regex_search(name, re);
      if (drop) {
        dropped.push_back(name);
        continue;
      }
      keep.push_back(name);
      const auto& info = ck.info(name);
      bytes += std::uint64_t(info.numel()) * dtype_size(as && is_floating(info.dtype) ? *as : info.dtype);
    }
    io::write_safetensors(options->output, ck, keep, as);
    if (!options->quiet) {
      std::cout << "wrote " << keep.size() << " tensors (" << bytes << " bytes of data) to " << options->output << '\n';
      if (!dropped.empty()) {
        std::cout << "dropped " << dropped.size() << ":";
        for (const auto& d : dropped) std::cout << ' ' << d;
        std::cout << '\n';
      }
    }
    return 0;
  });
}

}  // namespace fiber::cli
