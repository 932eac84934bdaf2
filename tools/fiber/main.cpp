// The `fiber` command line. Each command lives in its own header under tools/fiber/ and adds
// itself to the app; errors print one line to stderr and exit non-zero.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "fiber/fiber.hpp"
#include "command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"fiber: FIBER vision-language model tools"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fiber 0.1.0");
  fiber::cli::CommandList commands;
  fiber::cli::add_all_commands(app, commands);
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
