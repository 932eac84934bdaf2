// Macro hygiene on the preprocessor's own macro lists (libjpeg_macro_dump.cpp, preprocessed with
// -dM -E by tests/image/CMakeLists.txt), so that it holds for whatever libjpeg is installed,
// not just for the names fiber/io/libjpeg_macros.hpp lists.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <string>

#ifdef FIBER_MACRO_DUMP_0
namespace {

// name -> its whole "#define NAME..." line.
std::map<std::string, std::string> read_macro_dump(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "macro dump missing: ", path);
  std::map<std::string, std::string> macros;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("#define ", 0) != 0) continue;
    const std::size_t end = line.find_first_of(" (", 8);
    macros[line.substr(8, end - 8)] = line;
  }
  return macros;
}

}  // namespace

TEST_CASE("macro dumps: fiber leaves no libjpeg macro behind, and keeps each one defined before it") {
  const auto baseline = read_macro_dump(FIBER_MACRO_DUMP_0);
  const auto libjpeg = read_macro_dump(FIBER_MACRO_DUMP_1);
  const auto fiber_alone = read_macro_dump(FIBER_MACRO_DUMP_2);
  const auto libjpeg_then_fiber = read_macro_dump(FIBER_MACRO_DUMP_3);
  int libjpeg_macros = 0;
  std::string leaked, changed;
  for (const auto& [name, line] : libjpeg) {
    if (baseline.count(name)) continue;  // a standard library macro, not libjpeg's
    ++libjpeg_macros;
    const auto kept = libjpeg_then_fiber.find(name);
    if (kept == libjpeg_then_fiber.end() || kept->second != line) changed += name + " ";
    // The include guard has to stay: jpeglib.h's types cannot be defined twice.
    if (name != "JPEGLIB_H" && fiber_alone.count(name)) leaked += name + " ";
  }
  CHECK(libjpeg_macros >= 40);  // jpeglib.h's own macros really are in the dump
  CHECK(fiber_alone.count("JPEGLIB_H") == 1);  // fiber did include it
  CHECK_MESSAGE(leaked.empty(), "left defined by fiber.hpp: ", leaked);
  CHECK_MESSAGE(changed.empty(), "changed or lost when <jpeglib.h> came first: ", changed);
}
#endif
