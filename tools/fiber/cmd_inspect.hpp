#pragma once
// fiber inspect FILE [--json] [--all]: what a weight file holds, without reading tensor data.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/open_checkpoint.hpp"

namespace fiber::cli {

namespace inspect_detail {

inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

inline std::string human_bytes(std::uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream s;
  s << std::setprecision(u ? 3 : 0) << std::fixed << v << ' ' << units[u];
  if (u) {  // trim "1.500" to "1.5"
    std::string t = s.str();
    const auto space = t.find(' ');
    std::string number = t.substr(0, space);
    while (number.back() == '0') number.pop_back();
    if (number.back() == '.') number.pop_back();
    return number + t.substr(space);
  }
  return s.str();
}

// One tensor or placeholder per line, so the output reads well and greps well.
inline void print_json(const io::Checkpoint& ck) {
  using json = nlohmann::ordered_json;
  const auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
  json metadata = json::object();
  for (const auto& [k, v] : ck.metadata()) metadata[k] = v;
  std::cout << "{\n  \"file\": " << dump(ck.file()) << ",\n  \"format\": " << dump(std::string(io::format_name(ck.format())))
            << ",\n  \"layout\": " << dump(std::string(io::layout_name(ck.layout()))) << ",\n  \"tensors\": [";
  const auto& infos = ck.infos();
  for (std::size_t i = 0; i < infos.size(); ++i) {
    const auto& t = infos[i];
    json item = {{"name", t.name}, {"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape}, {"bytes", t.nbytes()}};
    std::cout << (i ? ",\n    " : "\n    ") << dump(item);
  }
  std::cout << (infos.empty() ? "],\n" : "\n  ],\n") << "  \"placeholders\": [";
  const auto& ps = ck.placeholders();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    json item = {{"path", ps[i].path}, {"type", ps[i].type}, {"note", ps[i].note}};
    std::cout << (i ? ",\n    " : "\n    ") << dump(item);
  }
  std::cout << (ps.empty() ? "],\n" : "\n  ],\n") << "  \"metadata\": " << dump(metadata) << "\n}\n";
}

// Names, metadata and placeholder texts come from the file: control characters in them are
// escaped (fiber::printable), so a name holding "\n" cannot forge rows and escape sequences
// cannot drive the terminal. (JSON output escapes them by itself.)
inline void print_text(const io::Checkpoint& ck) {
  std::uint64_t total = 0;
  std::size_t name_width = 4, dtype_width = 5, shape_width = 5;
  std::vector<std::string> names;
  names.reserve(ck.infos().size());
  for (const auto& t : ck.infos()) {
    total += t.nbytes();
    names.push_back(printable(t.name));
    name_width = std::max(name_width, names.back().size());
    dtype_width = std::max(dtype_width, dtype_name(t.dtype).size());
    shape_width = std::max(shape_width, shape_text(t.shape).size());
  }
  std::cout << "file:    " << printable(ck.file()) << '\n'
            << "format:  " << io::format_name(ck.format()) << " (" << io::layout_name(ck.layout()) << " layout)\n"
            << "tensors: " << ck.size() << " (" << human_bytes(total) << ")\n";
  std::cout << "  " << std::left << std::setw(int(name_width)) << "name" << "  " << std::setw(int(dtype_width)) << "dtype"
            << "  " << std::setw(int(shape_width)) << "shape" << "  bytes\n";
  for (std::size_t i = 0; i < ck.infos().size(); ++i) {
    const auto& t = ck.infos()[i];
    std::cout << "  " << std::left << std::setw(int(name_width)) << names[i] << "  " << std::setw(int(dtype_width))
              << dtype_name(t.dtype) << "  " << std::setw(int(shape_width)) << shape_text(t.shape) << "  " << t.nbytes()
              << '\n';
  }
  if (!ck.placeholders().empty()) {
    std::cout << "placeholders: " << ck.placeholders().size() << " (parts fiber does not interpret)\n";
    for (const auto& p : ck.placeholders())
      std::cout << "  " << (p.path.empty() ? "<top>" : printable(p.path)) << "  " << printable(p.type)
                << (p.note.empty() ? "" : "  (" + printable(p.note) + ")") << '\n';
  }
  if (!ck.metadata().empty()) {
    std::cout << "metadata:\n";
    for (const auto& [k, v] : ck.metadata()) std::cout << "  " << printable(k) << " = " << printable(v) << '\n';
  }
}

}  // namespace inspect_detail

void add_inspect_command(CLI::App& app, CommandList& commands) {
  struct Options {
    std::string file;
    bool json = false;
    bool all = false;
    bool verify = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "inspect", "List the tensors (name, dtype, shape, bytes) of a safetensors file or PyTorch checkpoint "
                 "(.pt, .pth, Lightning .ckpt) and the parts fiber does not interpret, without reading tensor data");
  sub->add_option("FILE", options->file, "the weight file")->required();
  sub->add_flag("--json", options->json, "print JSON: {\"format\", \"layout\", \"tensors\": [{\"name\", \"dtype\", \"shape\", "
                                         "\"bytes\"}], \"placeholders\", \"metadata\"}");
  sub->add_flag("--all", options->all, "list every tensor of the file by its full path (optimizer state too), not just "
                                       "the state dict");
  sub->add_flag("--verify", options->verify, "also read every tensor and check its storage's CRC-32 (torch files)");
  commands.add(sub, [options] {
    io::OpenOptions open;
    open.everything = options->all;
    open.verify_checksums = options->verify;
    const io::Checkpoint ck = io::open_checkpoint(options->file, open);
    if (options->verify)
      for (const auto& name : ck.names()) ck.release(ck.record(name));  // record() checks the CRC
    if (options->json) inspect_detail::print_json(ck);
    else inspect_detail::print_text(ck);
    if (options->verify && !options->json) std::cout << "verified: every tensor's storage reads back intact\n";
    return 0;
  });
}

}  // namespace fiber::cli
