// `fiber data shapes` end to end: it writes a loadable world, refuses absurd values and a
// non-empty directory (unless --force), with one clear line on stderr.
#include <doctest/doctest.h>

#include <string>

#include "cli_runner.hpp"
#include "data_fixtures.hpp"
#include "fiber/train/caption_dataset.hpp"

using namespace fiber;

TEST_CASE("fiber data shapes writes the world and refuses a non-empty directory without --force") {
  const auto root = test::fresh_dir("cli");
  const std::string out = (root / "world").string();
  const test::CliResult r = test::run_cli({"data", "shapes", "--out", out, "--train", "5", "--val", "2", "--seed", "3"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("wrote 5 train and 2 val scenes (64x64, seed 3)") != std::string::npos);
  CHECK(train::load_caption_dataset(root / "world/train.json").size() == 5);
  CHECK(train::load_caption_dataset(root / "world/val.jsonl").size() == 2);
  const std::string first = test::file_text(root / "world/train.json");

  const test::CliResult again = test::run_cli({"data", "shapes", "--out", out, "--train", "5", "--val", "2"});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("fiber: error: shapes world: '" + out + "' is not empty") == 0);
  const test::CliResult forced =
      test::run_cli({"data", "shapes", "--out", out, "--train", "5", "--val", "2", "--seed", "3", "--force"});
  CHECK(forced.exit_code == 0);
  CHECK(test::file_text(root / "world/train.json") == first);  // same seed, same bytes
  std::filesystem::remove_all(root);
}

TEST_CASE("fiber data shapes: absurd values are clear errors") {
  const auto root = test::fresh_dir("cli_bad");
  const std::string out = (root / "w").string();
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"--train", "-1"}, "--train: Value -1 not in range"},
      {{"--train", "20000000"}, "--train: Value 20000000 not in range"},
      {{"--val", "x"}, "--val"},
      {{"--seed", "-1"}, "--seed"},
      {{"--size", "16"}, "--size: Value 16 not in range 32 to 1024"},
      {{"--size", "4096"}, "--size: Value 4096 not in range"},
      {{"--max-shapes", "5"}, "--max-shapes: Value 5 not in range"},
      {{"--min-shapes", "3", "--max-shapes", "2"}, "is not a range within [1, 3]"},
      {{"--train", "0", "--val", "0"}, "nothing to write"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"data", "shapes", "--out", out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const test::CliResult r = test::run_cli(args);
    INFO(c.message, " | stderr: ", r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.signal == 0);
    CHECK(r.err.find(c.message) != std::string::npos);
  }
  CHECK(!std::filesystem::exists(root / "w"));
  const test::CliResult no_out = test::run_cli({"data", "shapes"});
  CHECK(no_out.exit_code != 0);
  CHECK(no_out.err.find("--out is required") != std::string::npos);
  const test::CliResult help = test::run_cli({"data", "shapes", "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--force") != std::string::npos);
  std::filesystem::remove_all(root);
}
