#pragma once
// fiber::Error: the one exception type the library throws. Its message names the operation,
// the operands (shapes, file, field) and what was expected, so a host program can log it and
// go on; the library never aborts the host.
#include <exception>
#include <sstream>
#include <string>
#include <utility>

namespace fiber {

class Error : public std::exception {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

// Throws fiber::Error with the parts streamed into one message.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(detail::concat(parts...));
}

}  // namespace fiber

// FIBER_CHECK(cond, "op: ", what, ...) throws fiber::Error when cond is false. The message parts
// are only evaluated on failure.
#define FIBER_CHECK(cond, ...)                    \
  do {                                            \
    if (!(cond)) [[unlikely]] ::fiber::fail(__VA_ARGS__); \
  } while (0)
