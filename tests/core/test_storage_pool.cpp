// StoragePool / PoolScope: size classes, reuse of freed blocks, the allocation counters, nesting,
// blocks outliving the pool, trim, and frees from other threads.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "fiber/core/storage_pool.hpp"
#include "fiber/core/tensor.hpp"

using fiber::PoolScope;
using fiber::StoragePool;
using fiber::Tensor;

namespace {
std::int64_t system_allocations() { return fiber::allocation_stats().system_allocations.load(); }
}  // namespace

TEST_CASE("storage pool: size classes are multiples of 64 below 4 KiB, eight per power of two above") {
  CHECK(fiber::pool_size_class(0) == 64);
  CHECK(fiber::pool_size_class(1) == 64);
  CHECK(fiber::pool_size_class(64) == 64);
  CHECK(fiber::pool_size_class(65) == 128);
  CHECK(fiber::pool_size_class(4096) == 4096);
  CHECK(fiber::pool_size_class(4097) == 4096 + 512);
  CHECK(fiber::pool_size_class(1u << 20) == (1u << 20));
  CHECK(fiber::pool_size_class((1u << 20) + 1) == (1u << 20) + (1u << 17));
  for (std::size_t b : {100u, 5000u, 77777u, 1234567u}) {
    CAPTURE(b);
    CHECK(fiber::pool_size_class(b) >= b);
    CHECK(double(fiber::pool_size_class(b)) <= 1.125 * double(b) + 64);
  }
}

TEST_CASE("storage pool: a repeated pass takes its memory from the blocks the previous pass freed") {
  StoragePool pool;
  auto pass = [&] {
    PoolScope scope(pool);
    Tensor<float> a = Tensor<float>::empty({300, 400});
    Tensor<float> b = Tensor<float>::full({5}, 2.0f);
    Tensor<double> c = Tensor<double>::empty({1000, 3});  // 24000 bytes: the class of 24576
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(c.data()) % 64 == 0);
    CHECK(b.at({4}) == 2.0f);
    return a.data();
  };
  const auto s0 = system_allocations();
  const float* first = pass();
  CHECK(system_allocations() - s0 == 3);
  CHECK(pool.stats().live_bytes == 0);
  CHECK(pool.stats().cached_bytes == 491520 + 64 + 24576);  // 480000 -> 15 · 32768
  const auto s1 = system_allocations();
  const float* second = pass();
  CHECK(system_allocations() == s1);  // nothing from the system
  CHECK(second == first);
  CHECK(pool.stats().hits == 3);
  CHECK(pool.stats().misses == 3);
  // Outside a scope, tensors come from the system as before.
  { Tensor<float> t = Tensor<float>::empty({300, 400}); }
  CHECK(system_allocations() == s1 + 1);
  CHECK(pool.stats().hits == 3);
  pool.trim();
  CHECK(pool.stats().cached_bytes == 0);
}

TEST_CASE("storage pool: a nearby size reuses a block of its class; scopes nest") {
  StoragePool outer, inner;
  {
    PoolScope a(outer);
    { Tensor<float> t = Tensor<float>::empty({1000, 1000}); }  // 4,000,000 bytes: class 4,194,304
    {
      PoolScope b(inner);
      { Tensor<float> t = Tensor<float>::empty({10}); }
      CHECK(inner.stats().misses == 1);
    }
    const auto s = system_allocations();
    { Tensor<float> t = Tensor<float>::empty({1020, 1020}); }  // 4,161,600 bytes: the same class
    CHECK(system_allocations() == s);
  }
  CHECK(outer.stats().hits == 1);
  CHECK(outer.stats().misses == 1);
  CHECK(inner.stats().cached_bytes == 64);
}

TEST_CASE("storage pool: tensors may outlive the pool and die on another thread") {
  Tensor<float> survivor;
  {
    StoragePool pool;
    PoolScope scope(pool);
    survivor = Tensor<float>::full({256}, 3.0f);
    Tensor<float> other = Tensor<float>::full({512}, 1.0f);
    std::thread([t = std::move(other)]() mutable { t = Tensor<float>(); }).join();  // freed there
    CHECK(pool.stats().cached_bytes == 2048);
    CHECK(pool.stats().live_bytes == 1024);
  }
  CHECK(survivor.at({255}) == 3.0f);  // still valid; freed to the system when it dies
  survivor = Tensor<float>();
}

TEST_CASE("storage pool: threads allocating and freeing through one pool") {
  StoragePool pool;
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&pool, k] {
      PoolScope scope(pool);
      for (int i = 0; i < 200; ++i) {
        Tensor<float> t = Tensor<float>::full({64 + (i % 7) * 100}, float(k));
        if (t.at({0}) != float(k)) throw std::runtime_error("corrupted block");
      }
    });
  for (auto& t : threads) t.join();
  const auto st = pool.stats();
  CHECK(st.live_bytes == 0);
  CHECK(st.hits + st.misses == 800);
  CHECK(st.misses <= 4 * 7);  // at most one block per class per thread
}
