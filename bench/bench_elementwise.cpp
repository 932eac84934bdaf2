// Fused elementwise expressions against the bandwidth of a plain copy, measured in the same run.
// Goal (issue 2): fused chains at >= 70% of the copy bandwidth. Bytes counted: each distinct
// operand read once plus the result written once.
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
  struct Case { const char* name; int streams; std::function<void()> run; };
  std::vector<Case> cases = {
      {"y = x * 2 + 1 (2 ops)", 2, [&] { out.assign(x * 2.0 + 1.0); }},
      {"y = x + y (1 op)", 3, [&] { out.assign(x + y); }},
      {"y = gelu(x + bias) (broadcast, 2 ops)", 2, [&] { out.assign(gelu(x + bias)); }},
      {"y = exp(gelu(x*y + bias)*0.5 - tanh(x)) (7 ops)", 3,
       [&] { out.assign(exp(gelu(x * y + bias) * 0.5 - tanh(x))); }},
      {"y = where(x > 0, x, 0.01 * x) (leaky relu)", 2, [&] { out.assign(where(x > 0.0, x, 0.01 * x)); }},
      {"y = x.t() + 1 (transposed read)", 2, [&] {
         Tensor<float> sq = x.narrow(0, 0, 1024);
         out.narrow(0, 0, 1024).assign(sq.t() + 1.0);
       }},
  };
  const auto torch = python ? torch_times(python) : std::map<int, double>{};
  std::printf("%-52s %9s %8s %7s %11s %9s\n", "expression", "ms", "GB/s", "% copy", "PyTorch ms", "speed-up");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const double s = bench::median_seconds(c.run);
    double bytes = double(c.streams) * n * sizeof(float);
    if (std::string(c.name).find("transposed") != std::string::npos) bytes = 2.0 * 1024 * 1024 * sizeof(float);
    const double gbps = bytes / s / 1e9;
    std::printf("%-52s %9.3f %8.1f %6.0f%%", c.name, s * 1e3, gbps, 100 * gbps / copy);
    if (torch.count(int(i))) std::printf(" %11.3f %8.2fx", torch.at(int(i)) * 1e3, torch.at(int(i)) / s);
    std::printf("\n");
  }
}
