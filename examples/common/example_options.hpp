#pragma once
// Command-line values of the example programs. A refused value ends the program with one line on
// stderr, "<program>: <option> needs ...", naming the accepted range, and exit status 2.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace fiber_examples {

class OptionReader {
 public:
  explicit OptionReader(const char* program) : program_(program) {}

  [[noreturn]] void fail(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n", program_, message.c_str());
    std::exit(2);
  }

  // An integer in [lo, hi].
  long long integer(const char* name, const char* value, long long lo, long long hi) const {
    if (!value) fail(std::string(name) + " needs a value");
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi)
      fail(std::string(name) + " needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + value +
           "'");
    return v;
  }

  // A finite number between lo and hi; each end belongs to the range only where closed_lo /
  // closed_hi say so.
  double number(const char* name, const char* value, double lo, double hi, bool closed_lo = false,
                bool closed_hi = false) const {
    if (!value) fail(std::string(name) + " needs a value");
    char* end = nullptr;
    const double v = std::strtod(value, &end);
    const bool above = closed_lo ? v >= lo : v > lo, below = closed_hi ? v <= hi : v < hi;
    if (end == value || *end || !(above && below)) {
      char range[96];
      std::snprintf(range, sizeof range, "%c%g, %g%c", closed_lo ? '[' : '(', lo, hi, closed_hi ? ']' : ')');
      fail(std::string(name) + " needs a number in " + range + ", got '" + value + "'");
    }
    return v;
  }

  // A non-empty path.
  std::string path(const char* name, const char* value) const {
    if (!value || !*value) fail(std::string(name) + " needs a path");
    return value;
  }

 private:
  const char* program_;
};

}  // namespace fiber_examples
