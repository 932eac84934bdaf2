#pragma once
// NameFilter: which tensor names `fiber convert --drop REGEX` drops. A checkpoint is untrusted
// input, so matching its names must take time linear in the name and bounded memory whatever the
// pattern: std::regex (a backtracking matcher, recursive in libstdc++) overflowed the stack on a
// 30,000-character name with '.*' and ran forever on '(a*)*b' against 30 a's. RE2 guarantees
// linear time and bounded memory (it has no backreferences or lookaround, which need
// backtracking). RE2 is a dependency of the command line only, not of the library.
#include <re2/re2.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"

namespace fiber::cli {

// The coarse FIBER checkpoints' ITC queue buffers (up to 7 GB): training state, not weights.
inline constexpr const char* itc_queue_pattern =
    R"((^|\.)(image_queue|text_queue|image_input_queue|text_input_queue|text_input_mask_queue|queue_ptr|queue_total)$)";

class NameFilter {
 public:
  // Compiles `pattern` (RE2 syntax: ECMAScript's and Python's usual operators; unanchored, so
  // 'queue' drops every name containing it and '^temp$' exactly 'temp').
  void add(const std::string& pattern) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(std::int64_t(64) << 20);  // compiled program and DFA cache of one pattern
    auto re = std::make_unique<RE2>(pattern, options);
    FIBER_CHECK(re->ok(), "--drop '", excerpt(pattern), "': not a valid regular expression (", re->error(),
                "; RE2 syntax: no backreferences or lookaround)");
    patterns_.push_back(std::move(re));
  }

  // Whether any pattern matches somewhere in `name`.
  bool matches(std::string_view name) const {
    for (const auto& re : patterns_)
      if (RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *re)) return true;
    return false;
  }

  std::size_t size() const { return patterns_.size(); }

 private:
  std::vector<std::unique_ptr<RE2>> patterns_;
};

}  // namespace fiber::cli
