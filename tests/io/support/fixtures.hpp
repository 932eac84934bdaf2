#pragma once
// Paths of the committed checkpoint fixtures and helpers to compare a checkpoint with the
// expected tensors tests/reference/make_checkpoints.py wrote beside it.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fiber/io/open_checkpoint.hpp"
#include "zip_builder.hpp"

namespace fiber::test {

inline std::string checkpoint_fixture(const std::string& name) {
  return std::string(FIBER_TEST_DATA_DIR) + "/checkpoints/" + name;
}

inline Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), {});
  Bytes b(chars.size());
  std::memcpy(b.data(), chars.data(), chars.size());
  return b;
}

// What make_checkpoints.py recorded: the names in order and "path type" placeholder lines.
struct Expected {
  io::Checkpoint tensors;
  std::vector<std::string> names;
  std::vector<std::string> placeholders;
};

inline Expected expected_for(const std::string& fixture) {
  auto ck = io::open_checkpoint(checkpoint_fixture(fixture + ".expected.safetensors"));
  std::string meta;
  for (const auto& [k, v] : ck.metadata())
    if (k == "expected") meta = v;
  REQUIRE(!meta.empty());
  const auto j = nlohmann::json::parse(meta);
  return Expected{ck, j.at("names").get<std::vector<std::string>>(), j.at("placeholders").get<std::vector<std::string>>()};
}

// Element-wise bit equality of two records of the same dtype (through a contiguous copy).
inline bool same_bytes(const io::TensorRecord& a, const io::TensorRecord& b) {
  if (a.dtype != b.dtype || a.shape != b.shape) return false;
  Bytes x(a.nbytes()), y(b.nbytes());
  a.copy_to(a.dtype, x);
  b.copy_to(b.dtype, y);
  return x == y;
}

}  // namespace fiber::test
