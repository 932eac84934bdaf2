#pragma once
// fiber convert IN OUT.safetensors [--dtype f32|f16|bf16] [--drop REGEX]... [--keep-queues]
//                                  [--max-output-bytes N]:
// any supported checkpoint to safetensors, streamed tensor by tensor. Everything that can be
// checked is checked before the first byte is written: the output path, that it is not the input,
// that no entry would be lost silently (entries fiber cannot represent must be dropped by name),
// and the output size (a stride-0 view of a few bytes may expand to gigabytes).
#include <CLI/CLI.hpp>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/atomic_file.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/safetensors_writer.hpp"
#include "name_filter.hpp"

namespace fiber::cli {

namespace convert_detail {

// The default output bound: 4x the input (room for f16 -> f32), at least 1 GiB.
inline std::uint64_t default_max_output(std::uint64_t input_bytes) {
  return std::max<std::uint64_t>(std::uint64_t(1) << 30, input_bytes * 4);
}

// Refuses an output that is the input itself (same path, a hard link or a symlink to it): the
// atomic rename would replace the input with the output.
inline void check_not_same_file(const std::string& input, const std::string& output) {
  struct stat in {}, out {};
  if (::stat(input.c_str(), &in) != 0 || ::stat(output.c_str(), &out) != 0) return;
  FIBER_CHECK(!(in.st_dev == out.st_dev && in.st_ino == out.st_ino), "convert: the output '", excerpt(output, 200),
              "' is the input file", output == input ? "" : " (a link to it)",
              "; converting in place would replace the checkpoint: write to another path");
}

// "'a', 'b', ... and 7 more" of bounded length.
inline std::string name_list(const std::vector<std::string>& names, std::size_t shown = 10) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i) s += (i ? ", '" : "'") + excerpt(names[i]) + "'";
  if (names.size() > shown) s += " and " + std::to_string(names.size() - shown) + " more";
  return s;
}

}  // namespace convert_detail

void add_convert_command(CLI::App& app, CommandList& commands) {
  struct Options {
    std::string input, output, dtype;
    std::vector<std::string> drop;
    std::uint64_t max_output_bytes = 0;
    bool keep_queues = false;
    bool quiet = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "convert", "Convert a checkpoint (safetensors, .pt, .pth, Lightning .ckpt) to safetensors, one tensor at a time; "
                 "the ITC queue buffers are dropped unless --keep-queues");
  sub->add_option("IN", options->input, "the checkpoint to read")->required();
  sub->add_option("OUT", options->output, "the safetensors file to write (atomically; never the input)")->required();
  sub->add_option("--dtype", options->dtype, "convert floating tensors to this type (integer tensors keep theirs)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  sub->add_option("--drop", options->drop,
                  "also drop tensors whose name matches this regular expression (RE2 syntax, repeatable); entries "
                  "fiber cannot convert (complex, quantized, unknown classes) must be dropped this way");
  sub->add_option("--max-output-bytes", options->max_output_bytes,
                  "refuse to write more tensor data than this (bytes; suffixes KiB, MiB, GiB, KB, MB, GB); default: "
                  "4 times the input's size, at least 1 GiB (a stride-0 view may expand a small file enormously)")
      ->transform(CLI::AsSizeValue(false));
  sub->add_flag("--keep-queues", options->keep_queues,
                "keep image_queue, text_queue, image_input_queue, text_input_queue, text_input_mask_queue, queue_ptr, "
                "queue_total");
  sub->add_flag("-q,--quiet", options->quiet, "print nothing on success");
  commands.add(sub, [options] {
    NameFilter explicit_drops, queues;
    for (const auto& p : options->drop) explicit_drops.add(p);
    if (!options->keep_queues) queues.add(itc_queue_pattern);
    std::optional<DType> as;
    if (options->dtype == "f32") as = DType::f32;
    if (options->dtype == "f16") as = DType::f16;
    if (options->dtype == "bf16") as = DType::bf16;

    // The output first: a bad path fails in a moment, not after the conversion.
    io::check_output_path(options->output, "convert: output");
    convert_detail::check_not_same_file(options->input, options->output);
    const io::Checkpoint ck = io::open_checkpoint(options->input);

    std::vector<std::string> keep, dropped, refused;
    std::uint64_t bytes = 0, largest = 0;
    std::string largest_name;
    for (const auto& name : ck.names()) {
      if (explicit_drops.matches(name) || queues.matches(name)) {
        dropped.push_back(name);
        continue;
      }
      keep.push_back(name);
      const auto& info = ck.info(name);
      const std::uint64_t n = std::uint64_t(info.numel()) * dtype_size(as && is_floating(info.dtype) ? *as : info.dtype);
      bytes += n;
      if (n > largest) largest = n, largest_name = name;
    }
    std::string why;  // of the first refused entry
    for (const auto& [name, reason] : ck.unreadable()) {
      if (explicit_drops.matches(name) || queues.matches(name)) {
        dropped.push_back(name);
      } else {
        if (refused.empty()) why = reason;
        refused.push_back(name);
      }
    }
    FIBER_CHECK(refused.empty(), "convert: ", refused.size(), refused.size() == 1 ? " entry" : " entries", " of ",
                excerpt(options->input, 200), " cannot be converted to safetensors: ",
                convert_detail::name_list(refused), " ('", excerpt(refused.empty() ? "" : refused[0]), "': ",
                why, "); drop ", refused.size() == 1 ? "it" : "them",
                " explicitly (--drop '^NAME$') to convert the rest, or convert it with torch");

    struct stat st {};
    const std::uint64_t input_bytes = ::stat(options->input.c_str(), &st) == 0 ? std::uint64_t(st.st_size) : 0;
    const std::uint64_t limit =
        options->max_output_bytes ? options->max_output_bytes : convert_detail::default_max_output(input_bytes);
    FIBER_CHECK(bytes <= limit, "convert: the output would hold ", bytes, " bytes of tensor data, more than the limit of ",
                limit, " bytes (", options->max_output_bytes ? "--max-output-bytes" : "default: 4 times the input's ",
                options->max_output_bytes ? "" : std::to_string(input_bytes) + " bytes, at least 1 GiB",
                "); the largest tensor, '", excerpt(largest_name), "', alone is ", largest,
                " bytes (a view with stride 0 repeats its storage and is written out in full); pass"
                " --max-output-bytes to allow it");

    if (!options->quiet)
      std::cout << "writing " << keep.size() << " tensors (" << bytes << " bytes of data) to "
                << printable(options->output) << std::endl;
    io::write_safetensors(options->output, ck, keep, as);
    if (!options->quiet) {
      std::cout << "wrote " << keep.size() << " tensors (" << bytes << " bytes of data) to " << printable(options->output)
                << '\n';
      if (!dropped.empty()) {
        std::cout << "dropped " << dropped.size() << ":";
        for (const auto& d : dropped) std::cout << ' ' << printable(d);
        std::cout << '\n';
      }
    }
    return 0;
  });
}

}  // namespace fiber::cli
