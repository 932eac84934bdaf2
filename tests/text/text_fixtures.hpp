#pragma once
// Shared by the text tests: the committed fixture tokenizer (tests/data/text, trained by
// tests/reference/make_tokenizer.py) and its JSON reference files.
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "fiber/text/tokenizer.hpp"

namespace fiber::text::testing {

inline std::string data_path(const std::string& name) { return std::string(FIBER_TEST_DATA_DIR) + "/text/" + name; }

inline nlohmann::json load_json(const std::string& name) {
  std::ifstream in(data_path(name), std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing fixture ", data_path(name));
  return nlohmann::json::parse(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
}

inline const Tokenizer& fixture_tokenizer() {
  static const Tokenizer tok = Tokenizer::from_files(data_path("vocab.json"), data_path("merges.txt"));
  return tok;
}

inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

}  // namespace fiber::text::testing
