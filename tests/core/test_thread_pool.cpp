#include <doctest/doctest.h>

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "fiber/core/thread_pool.hpp"

TEST_CASE("ThreadPool runs every task exactly once") {
  fiber::ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  for (int round = 0; round < 20; ++round)
    pool.run(1000, [&](std::int64_t t) { hits[t].fetch_add(1); });
  for (auto& h : hits) CHECK(h.load() == 20);
}

TEST_CASE("ThreadPool rethrows the first exception and stays usable") {
  fiber::ThreadPool pool(3);
  CHECK_THROWS_AS(pool.run(64, [](std::int64_t t) { if (t == 17) throw std::runtime_error("task 17"); }),
                  std::runtime_error);
  std::atomic<int> n{0};
  pool.run(64, [&](std::int64_t) { n++; });
  CHECK(n.load() == 64);
}

TEST_CASE("nested parallel work runs inline instead of deadlocking") {
  fiber::ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.run(8, [&](std::int64_t) {
    CHECK(fiber::in_parallel_region());
    pool.run(8, [&](std::int64_t) { inner++; });
  });
  CHECK(inner.load() == 64);
  CHECK_FALSE(fiber::in_parallel_region());
}

TEST_CASE("two host threads can share the pool") {
  fiber::ThreadPool pool(2);
  std::atomic<long> total{0};
  auto work = [&] {
    for (int i = 0; i < 200; ++i) pool.run(16, [&](std::int64_t t) { total += t; });
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  CHECK(total.load() == 2 * 200 * (15 * 16 / 2));
}

TEST_CASE("parallel_for covers the range once with contiguous pieces") {
  fiber::set_num_threads(3);
  std::vector<int> seen(10007, 0);
  fiber::parallel_for(5, 10007, 100, [&](std::int64_t b, std::int64_t e) {
    for (auto i = b; i < e; ++i) seen[i]++;
  });
  CHECK(std::accumulate(seen.begin(), seen.begin() + 5, 0) == 0);
  CHECK(std::accumulate(seen.begin() + 5, seen.end(), 0) == 10002);
  CHECK(fiber::num_threads() == 3);
  CHECK_THROWS_AS(fiber::set_num_threads(0), fiber::Error);
  fiber::set_num_threads(2);
}
