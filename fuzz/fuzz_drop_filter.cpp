// libFuzzer target: `fiber convert --drop` matching (tools/fiber/name_filter.hpp, RE2) of hostile
// tensor names. Input: a pattern, a NUL byte, one byte R, then a name that is repeated R + 1
// times, so inputs of a few KB make names of hundreds of KB (std::regex overflowed its stack on
// 30,000 characters). Every pattern RE2 accepts is matched against the name, and the built-in ITC
// queue pattern too; fiber::Error (an invalid pattern) is the expected outcome for bad patterns.
// A crash, a sanitizer report or a slow input (libFuzzer's -timeout) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "name_filter.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* text = reinterpret_cast<const char*>(data);
  const void* nul = std::memchr(text, 0, size);
  const std::size_t pattern_size = nul ? std::size_t(static_cast<const char*>(nul) - text) : size;
  const std::string pattern(text, pattern_size);
  std::string name;
  if (pattern_size + 1 < size) {
    const std::size_t repeat = std::size_t(data[pattern_size + 1]) + 1;
    const std::string unit(text + pattern_size + 2, size - pattern_size - 2);
    name.reserve(unit.size() * repeat);
    for (std::size_t i = 0; i < repeat; ++i) name += unit;
  }
  fiber::cli::NameFilter queues;
  queues.add(fiber::cli::itc_queue_pattern);
  (void)queues.matches(name);
  try {
    fiber::cli::NameFilter filter;
    filter.add(pattern);
    (void)filter.matches(name);
    (void)filter.matches(pattern);
  } catch (const fiber::Error&) {
  }
  return 0;
}
