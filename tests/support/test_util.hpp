#pragma once
// Helpers shared by the tests: element-wise comparison with a stated tolerance.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber::test {

// Largest |a-b| / (atol + rtol*|b|) over all elements; <= 1 means "close".
template <class T, class U>
double closeness(const Tensor<T>& a, const Tensor<U>& b, double rtol, double atol) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_vector();
  auto vb = b.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double x = double(va[i]), y = double(vb[i]);
    if (std::isnan(x) && std::isnan(y)) continue;
    if (std::isinf(y) && x == y) continue;
    const double r = std::abs(x - y) / (atol + rtol * std::abs(y));
    worst = std::max(worst, std::isnan(r) ? 1e300 : r);
  }
  return worst;
}

#define FIBER_CHECK_CLOSE(a, b, rtol, atol) CHECK(::fiber::test::closeness((a), (b), (rtol), (atol)) <= 1.0)

template <class T>
std::vector<T> values(const Tensor<T>& t) { return t.to_vector(); }

// A test that cannot run here says why; ctest then reports it as skipped, not passed
// (FiberDoctestDiscover.cmake sets SKIP_REGULAR_EXPRESSION on this marker).
inline void report_skipped(const char* reason) { std::printf("FIBER_TEST_SKIPPED: %s\n", reason); }

// Puts the pool's thread count back when the test leaves the scope, a failed REQUIRE included, so
// a thread-count test does not change the tests that run after it.
class RestoreThreads {
 public:
  RestoreThreads() : saved_(num_threads()) {}
  ~RestoreThreads() { set_num_threads(saved_); }
  RestoreThreads(const RestoreThreads&) = delete;
  RestoreThreads& operator=(const RestoreThreads&) = delete;
  int saved() const { return saved_; }

 private:
  int saved_;
};

}  // namespace fiber::test
