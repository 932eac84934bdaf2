// Fused elementwise expressions against the bandwidth of a plain copy, measured in the same run.
// Goal (issue 2): fused chains at >= 70% of the copy bandwidth. Bytes counted: each distinct
// operand read once plus the result written once.
// A chain heavy in exp/tanh/erf can be bound by instructions rather than memory. The "in cache"
// column runs the same expression on 128 rows (operands that fit in L2) with the same threads:
// the rate the instructions alone allow. "% bound" is the full-size rate over the lower of the two
// ceilings, copy and in-cache.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"

using namespace fiber;

// With --torch PYTHON, runs bench_elementwise_torch.py with that interpreter (PyTorch, same
// thread count) and prints its time for each case beside ours.
std::map<int, double> torch_times(const char* python) {
  std::map<int, double> t;
  const std::string cmd = std::string(python) + " " + FIBER_BENCH_DIR "/bench_elementwise_torch.py " +
                          std::to_string(num_threads());
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return t;
  int i;
  double s;
  while (std::fscanf(p, "%d %lf", &i, &s) == 2) t[i] = s;
  pclose(p);
  return t;
}

int main(int argc, char** argv) {
  const char* python = (argc == 3 && std::string(argv[1]) == "--torch") ? argv[2] : nullptr;
  std::printf("CPU: %s, threads: %d, SIMD: %s\n", bench::cpu_name().c_str(), num_threads(), xsimd::default_arch::name());
  const std::int64_t n = 1 << 24;  // 64 MiB per float operand: out of cache
  const double copy = bench::measured_copy_gbps(n);
  std::printf("plain copy: %.1f GB/s\n\n", copy);
  Generator g(1);
  auto x = randn<float>({n / 1024, 1024}, g), y = randn<float>({n / 1024, 1024}, g);
  auto bias = randn<float>({1024}, g);
  auto out = Tensor<float>::empty(x.shape());
  // Each case runs on the first `rows` rows of the operands (1024 values each) unless it says
  // otherwise: then `elements` is what one full-size run writes, and there is no in-cache run.
  struct Case {
    const char* name;
    int streams;
    std::function<void(std::int64_t rows)> run;
    std::int64_t elements = n;
    bool in_cache = true;
  };
  auto rows_of = [](const Tensor<float>& t, std::int64_t rows) { return t.narrow(0, 0, rows); };
  std::vector<Case> cases = {
      {"y = x * 2 + 1 (2 ops)", 2, [&](std::int64_t r) { rows_of(out, r).assign(rows_of(x, r) * 2.0 + 1.0); }},
      {"y = x + y (1 op)", 3, [&](std::int64_t r) { rows_of(out, r).assign(rows_of(x, r) + rows_of(y, r)); }},
      {"y = gelu(x + bias) (broadcast, 2 ops)", 2,
       [&](std::int64_t r) { rows_of(out, r).assign(gelu(rows_of(x, r) + bias)); }},
      {"y = exp(gelu(x*y + bias)*0.5 - tanh(x)) (7 ops)", 3,
       [&](std::int64_t r) {
         const Tensor<float> xr = rows_of(x, r), yr = rows_of(y, r);
         rows_of(out, r).assign(exp(gelu(xr * yr + bias) * 0.5 - tanh(xr)));
       }},
      {"y = where(x > 0, x, 0.01 * x) (leaky relu)", 2, [&](std::int64_t r) {
         const Tensor<float> xr = rows_of(x, r);
         rows_of(out, r).assign(where(xr > 0.0, xr, 0.01 * xr));
       }},
      // A 1024 x 1024 block read transposed: already out of cache; a block small enough for the
      // cache is too small a call to measure the instructions.
      {"y = x.t() + 1 (transposed read)", 2,
       [&](std::int64_t) { out.narrow(0, 0, 1024).assign(x.narrow(0, 0, 1024).t() + 1.0); }, 1024 * 1024, false},
  };
  constexpr std::int64_t cache_rows = 128, cache_repeats = 64;
  const auto torch = python ? torch_times(python) : std::map<int, double>{};
  std::printf("%-52s %9s %8s %7s %9s %8s %11s %9s\n", "expression", "ms", "GB/s", "% copy", "in cache", "% bound",
              "PyTorch ms", "speed-up");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const double bytes_per_float = double(c.streams) * sizeof(float);
    const double s = bench::median_seconds([&] { c.run(n / 1024); });
    const double gbps = bytes_per_float * double(c.elements) / s / 1e9;
    double bound = copy;
    std::printf("%-52s %9.3f %8.1f %6.0f%%", c.name, s * 1e3, gbps, 100 * gbps / copy);
    if (c.in_cache) {
      const double s_cache = bench::median_seconds([&] {
        for (int k = 0; k < cache_repeats; ++k) c.run(cache_rows);
      });
      const double cache_gbps = bytes_per_float * double(cache_rows * 1024 * cache_repeats) / s_cache / 1e9;
      bound = std::min(copy, cache_gbps);
      std::printf(" %9.1f", cache_gbps);
    } else {
      std::printf(" %9s", "-");
    }
    std::printf(" %7.0f%%", 100 * gbps / bound);
    if (torch.count(int(i))) std::printf(" %11.3f %8.2fx", torch.at(int(i)) * 1e3, torch.at(int(i)) / s);
    std::printf("\n");
  }
}
