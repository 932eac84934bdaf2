#pragma once
// How commands plug into the `fiber` binary: each cmd_<name>.hpp defines
//   void add_<name>_command(CLI::App& app, CommandList& commands);
// which adds a subcommand with its options and registers the function that runs it.
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

}  // namespace fiber::cli

// The commands. Keep this list sorted.
#include "cmd_convert.hpp"
#include "cmd_data.hpp"
#include "cmd_embed.hpp"
#include "cmd_ground.hpp"
#include "cmd_init.hpp"
#include "cmd_inspect.hpp"
#include "cmd_match.hpp"
#include "cmd_resize.hpp"
#include "cmd_retrieve.hpp"
#include "cmd_tokenize.hpp"
#include "cmd_train.hpp"

namespace fiber::cli {
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
