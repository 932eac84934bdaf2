// The `fiber` command line. Each command lives in its own header under tools/fiber/ and adds
// itself to the app; errors print one line to stderr and exit non-zero.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "fiber/core/printable.hpp"
#include "fiber/fiber.hpp"
#include "command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"fiber: FIBER vision-language model tools"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fiber 0.1.0");
  fiber::cli::CommandList commands;
  fiber::cli::add_all_commands(app, commands);
  // A first argument that is no option and no command: say so (CLI11 would say "A subcommand is
  // required", which misleads).
  if (argc > 1 && argv[1][0] != '-') {
    std::string known;
    bool found = false;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      known += (known.empty() ? "" : ", ") + sub->get_name();
      found = found || sub->get_name() == argv[1];
    }
    if (!found) {
      std::fprintf(stderr, "fiber: error: unknown command '%s' (commands: %s; fiber --help)\n",
                   fiber::excerpt(argv[1]).c_str(), known.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return commands.run_selected();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fiber: error: %s\n", e.what());
    return 1;
  }
}
