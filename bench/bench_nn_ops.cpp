// softmax / log_softmax / layer_norm / cross_entropy on the shapes FIBER runs, forward and
// backward, as GB/s against the bandwidth of a plain copy measured in the same run. Bytes
// counted: each tensor operand read once plus each result written once (forward: x and y;
// backward: y or x, g and gx; the autograd rows also count dweight/dbias as two more streams).
// With --torch PYTHON it runs bench_nn_ops_torch.py with that interpreter (PyTorch eager, same
// thread count, same shapes) and prints PyTorch's times beside ours; rows are matched by name.
// FIBER_NUM_THREADS sets the threads.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"

using namespace fiber;

namespace {
struct Case {
  std::string name;
  double bytes;
  std::function<void()> run;
};

// Wall time per call, median and minimum over repeats. The machine may be shared: the minimum is
// the figure least disturbed by other processes.
struct Timing {
  double median, best;
};
Timing time_it(const std::function<void()>& f, int repeats = 25, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> wall;
  for (int i = 0; i < repeats; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(wall.begin(), wall.end());
  return {wall[wall.size() / 2], wall[0]};
}

// PyTorch's timings by row name: the script prints "name<TAB>median<TAB>best" (seconds) lines.
std::map<std::string, Timing> torch_times(const char* python) {
  std::map<std::string, Timing> t;
  const std::string cmd =
      std::string(python) + " " + FIBER_BENCH_DIR "/bench_nn_ops_torch.py " + std::to_string(num_threads());
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return t;
  char line[512];
  while (std::fgets(line, sizeof line, p)) {
    std::istringstream in(line);
    std::string name;
    Timing tm{};
    if (std::getline(in, name, '\t') && in >> tm.median >> tm.best) t[name] = tm;
    else std::fputs(line, stdout);  // the script's header or an error: show it
  }
  pclose(p);
  return t;
}

std::string shape_name(const Shape& s) {
  std::ostringstream out;
  out << s;
  return out.str();
}
}  // namespace

int main(int argc, char** argv) {
  const char* python = (argc == 3 && std::string(argv[1]) == "--torch") ? argv[2] : nullptr;
  std::printf("CPU: %s, threads: %d, SIMD: %s\n", bench::cpu_name().c_str(), num_threads(), xsimd::default_arch::name());
  const double copy = bench::measured_copy_gbps(1 << 22);  // 16 MiB per side: about the size of the inputs
  std::printf("plain copy (16 MiB): %.1f GB/s\n", copy);
  Generator gen(1);
  std::vector<Case> cases;
  auto bytes = [](const Shape& s, int streams) { return double(streams) * double(s.numel()) * sizeof(float); };

  // Window attention scores, Swin-B at 384: [windows * heads, 144, 144] per stage; text [heads, 40, 40].
  for (Shape s : {Shape{256, 144, 144}, Shape{64, 144, 144}, Shape{32, 144, 144}, Shape{12, 40, 40}}) {
    auto x = randn<float>(s, gen, 0, 3), g = randn<float>(s, gen);
    auto y = softmax(x, -1);
    auto out = Tensor<float>::empty(s);
    const std::string name = shape_name(s);
    const std::int64_t rows = s.numel() / s[s.rank() - 1], n = s[s.rank() - 1];
    cases.push_back({"softmax fwd " + name, bytes(s, 2),
                     [=] { cpu::softmax_forward(x.data(), out.data(), rows, n, 1, false); }});
    cases.push_back({"softmax fwd, allocating " + name, bytes(s, 2), [=] { (void)softmax(x, -1); }});
    cases.push_back({"softmax bwd " + name, bytes(s, 3),
                     [=] { cpu::softmax_backward(y.data(), g.data(), out.data(), rows, n, 1, false); }});
  }
  {
    // MLM head: log_softmax and cross_entropy over the RoBERTa vocabulary for 40 tokens.
    const Shape s{40, 50265};
    auto x = randn<float>(s, gen, 0, 3);
    auto out = Tensor<float>::empty(s);
    cases.push_back({"log_softmax fwd [40, 50265]", bytes(s, 2),
                     [=] { cpu::softmax_forward(x.data(), out.data(), 40, 50265, 1, true); }});
    auto target = rand<float>({40}, gen, 0, 50264).to<std::int64_t>();
    cases.push_back({"cross_entropy fwd+bwd, autograd [40, 50265]", bytes(s, 3), [=] {
                       Var<float> v = Var<float>::parameter(x);
                       cross_entropy(v, target).backward();
                     }});
  }
  // LayerNorms: Swin stage 3 tokens x channels (576 = 24 x 24 at 384 px, C = 512), RoBERTa text,
  // Swin stage 1 (96 x 96 tokens, C = 128).
  for (Shape s : {Shape{576, 512}, Shape{40, 768}, Shape{9216, 128}}) {
    auto x = randn<float>(s, gen, 0.5, 2), g = randn<float>(s, gen);
    auto w = randn<float>({s[1]}, gen, 1, 0.1f), b = randn<float>({s[1]}, gen, 0, 0.1f);
    auto y = Tensor<float>::empty(s), gx = Tensor<float>::empty(s);
    auto centre = Tensor<float>::empty({s[0]}), rstd = Tensor<float>::empty({s[0]});
    auto dw = Tensor<float>::empty({s[1]}), db = Tensor<float>::empty({s[1]});
    const std::string name = shape_name(s);
    cases.push_back({"layer_norm fwd " + name, bytes(s, 2), [=] {
                       cpu::layer_norm_forward(x.data(), w.data(), b.data(), y.data(), centre.data(), rstd.data(), s[0],
                                               s[1], 1e-5f);
                     }});
    cases.push_back({"layer_norm fwd, allocating " + name, bytes(s, 2), [=] { (void)layer_norm(x, Shape{s[1]}, w, b); }});
    cases.push_back({"layer_norm bwd dx " + name, bytes(s, 3), [=] {
                       cpu::layer_norm_backward(x.data(), g.data(), w.data(), centre.data(), rstd.data(), gx.data(),
                                                nullptr, nullptr, s[0], s[1]);
                     }});
    cases.push_back({"layer_norm bwd dx, dw, db " + name, bytes(s, 3), [=] {
                       cpu::layer_norm_backward(x.data(), g.data(), w.data(), centre.data(), rstd.data(), gx.data(),
                                                dw.data(), db.data(), s[0], s[1]);
                     }});
    cases.push_back({"layer_norm fwd+bwd, autograd (dx, dw, db) " + name, bytes(s, 5), [=] {
                       Var<float> vx = Var<float>::parameter(x), vw = Var<float>::parameter(w),
                                  vb = Var<float>::parameter(b);
                       layer_norm(vx, Shape{s[1]}, vw, vb).backward(g);
                     }});
  }

  const auto torch = python ? torch_times(python) : std::map<std::string, Timing>{};
  std::printf("\n%-50s %9s %9s %7s %6s %11s %10s %8s\n", "op [shape]", "median us", "best us", "GB/s", "% copy",
              "torch med", "torch best", "speed-up");
  for (const auto& c : cases) {
    const Timing t = time_it(c.run);
    const double gbps = c.bytes / t.best / 1e9;
    std::printf("%-50s %9.1f %9.1f %7.1f %5.0f%%", c.name.c_str(), t.median * 1e6, t.best * 1e6, gbps, 100 * gbps / copy);
    if (const auto it = torch.find(c.name); it != torch.end())
      std::printf(" %11.1f %10.1f %7.2fx", it->second.median * 1e6, it->second.best * 1e6, it->second.best / t.best);
    std::printf("\n");
  }
  std::printf("\nGB/s and speed-up from the best of 25 calls (speed-up = PyTorch time / ours).\n");
}
