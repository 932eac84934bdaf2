#pragma once
// Shared by the benchmarks: timing (median of repeats after a warm-up), the CPU's name, and the
// machine's measured peaks (FMA throughput, copy bandwidth) that figures are reported against.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fiber/backend/cpu/simd.hpp"
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

// "model name (family F, model M)" from /proc/cpuinfo, or "unknown CPU".
inline std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name, family, model;
  auto value = [](const std::string& l) {
    auto p = l.find(':');
    return p == std::string::npos ? std::string() : l.substr(std::min(l.size(), p + 2));
  };
  while (std::getline(in, line)) {
    if (name.empty() && line.rfind("model name", 0) == 0) name = value(line);
    if (family.empty() && line.rfind("cpu family", 0) == 0) family = value(line);
    if (model.empty() && line.rfind("model\t", 0) == 0) model = value(line);
  }
  if (name.empty()) return "unknown CPU";
  return name + " (family " + family + ", model " + model + ")";
}

// A loop of independent FMA chains: 12 accumulators cover the latency x throughput of current
// cores. Returns the flops done.
inline double fma_loop(std::int64_t iterations, float* sink) {
  using V = fiber::cpu::Vec<float>;
  constexpr int chains = 12;
  V acc[chains];
  for (int i = 0; i < chains; ++i) acc[i] = V(float(i) * 1e-3f);
  const V x(0.9999f), y(1e-4f);
  for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < chains; ++i) acc[i] = fiber::cpu::vec_fma<float>(acc[i], x, y);
  }
  V sum(0.f);
  for (int i = 0; i < chains; ++i) sum += acc[i];
  alignas(64) float out[fiber::cpu::vec_width<float>];
  sum.store_aligned(out);
  *sink = out[0];
  return 2.0 * chains * fiber::cpu::vec_width<float> * double(iterations);
}

// FMA peak in GFLOP/s of `threads` threads running fma_loop at once, widest vector built (best of
// 3 rounds; the threads start together).
inline double measured_fma_peak_gflops(int threads = fiber::num_threads()) {
  const std::int64_t iterations = 20'000'000;
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<float> sinks(threads);
    std::atomic<int> ready{0};
    std::vector<std::thread> workers;
    std::vector<double> flops(threads);
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        ready++;
        while (ready.load() < threads) {
        }
        flops[t] = fma_loop(iterations, &sinks[t]);
      });
    for (auto& w : workers) w.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double total = 0;
    for (double f : flops) total += f;
    best = std::max(best, total / seconds * 1e-9);
  }
  return best;
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
