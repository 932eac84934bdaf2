#pragma once
// Shared by the benchmarks: timing (median of repeats after a warm-up), the CPU's name, and the
// machine's measured peaks (FMA throughput, copy bandwidth) that figures are reported against.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "fiber/core/thread_pool.hpp"

namespace fiber::bench {

// Median wall time in seconds of `repeats` calls of f, after `warmup` calls.
template <class F>
double median_seconds(F&& f, int repeats = 7, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

inline std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

// FMA peak in GFLOP/s over all pool threads: independent accumulators, widest vector built.
inline double measured_fma_peak_gflops() {
  using B = xsimd::batch<float>;
  const int threads = fiber::num_threads();
  const long iters = 20'000'000;
  std::vector<float> sink(threads * 64);
  auto run = [&] {
    fiber::thread_pool().run(threads, [&](std::int64_t t) {
      B a0(1.0f), a1(1.1f), a2(1.2f), a3(1.3f), a4(1.4f), a5(1.5f), a6(1.6f), a7(1.7f), a8(1.8f), a9(1.9f);
      const B m(0.9999999f), c(1e-7f);
      for (long i = 0; i < iters / 10; ++i) {
        a0 = xsimd::fma(a0, m, c); a1 = xsimd::fma(a1, m, c); a2 = xsimd::fma(a2, m, c); a3 = xsimd::fma(a3, m, c);
        a4 = xsimd::fma(a4, m, c); a5 = xsimd::fma(a5, m, c); a6 = xsimd::fma(a6, m, c); a7 = xsimd::fma(a7, m, c);
        a8 = xsimd::fma(a8, m, c); a9 = xsimd::fma(a9, m, c);
      }
      sink[t * 64] = xsimd::hadd(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9);
    });
  };
  const double s = median_seconds(run, 3, 1);
  return 2.0 * B::size * double(iters) * threads / s / 1e9;
}

// Bandwidth of a plain multi-threaded copy (GB/s, read + write bytes), the ceiling for
// memory-bound elementwise work.
inline double measured_copy_gbps(std::size_t floats) {
  std::vector<float> a(floats, 1.0f), b(floats);
  auto run = [&] {
    fiber::parallel_for(0, static_cast<std::int64_t>(floats), 1 << 16, [&](std::int64_t s, std::int64_t e) {
      std::memcpy(b.data() + s, a.data() + s, (e - s) * sizeof(float));
    });
  };
  return 2.0 * floats * sizeof(float) / median_seconds(run) / 1e9;
}

}  // namespace fiber::bench
