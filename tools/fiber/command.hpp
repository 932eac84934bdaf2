#pragma once
// How commands plug into the `fiber` binary: each cmd_<name>.hpp defines
//   void add_<name>_command(CLI::App& app, CommandList& commands);
// which adds a subcommand with its options and registers the function that runs it. Each
// cmd_<name>.hpp is included by exactly one translation unit (tools/fiber/commands_*.cpp).
#include <CLI/CLI.hpp>

#include <functional>
#include <utility>
#include <vector>

namespace fiber::cli {

class CommandList {
 public:
  void add(CLI::App* sub, std::function<int()> run) { entries_.emplace_back(sub, std::move(run)); }
  int run_selected() const {
    for (const auto& [sub, run] : entries_)
      if (sub->parsed()) return run();
    return 2;
  }

 private:
  std::vector<std::pair<CLI::App*, std::function<int()>>> entries_;
};

// The commands, each defined by its cmd_<name>.hpp, compiled in the translation units listed in
// tools/CMakeLists.txt (one unit per model family, so that they build in parallel). Keep sorted.
void add_convert_command(CLI::App& app, CommandList& commands);
void add_data_command(CLI::App& app, CommandList& commands);
void add_embed_command(CLI::App& app, CommandList& commands);
void add_ground_command(CLI::App& app, CommandList& commands);
void add_init_command(CLI::App& app, CommandList& commands);
void add_inspect_command(CLI::App& app, CommandList& commands);
void add_match_command(CLI::App& app, CommandList& commands);
void add_resize_command(CLI::App& app, CommandList& commands);
void add_retrieve_command(CLI::App& app, CommandList& commands);
void add_tokenize_command(CLI::App& app, CommandList& commands);
void add_train_command(CLI::App& app, CommandList& commands);
void add_train_fine_command(CLI::App* train, CommandList& commands);  // `fiber train fine`, under `train`

inline void add_all_commands(CLI::App& app, CommandList& commands) {
  add_convert_command(app, commands);
  add_data_command(app, commands);
  add_embed_command(app, commands);
  add_ground_command(app, commands);
  add_init_command(app, commands);
  add_inspect_command(app, commands);
  add_match_command(app, commands);
  add_resize_command(app, commands);
  add_retrieve_command(app, commands);
  add_tokenize_command(app, commands);
  add_train_command(app, commands);
}

}  // namespace fiber::cli
