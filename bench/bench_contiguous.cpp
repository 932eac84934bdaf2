// contiguous() of permuted views, as the model makes them (Swin's window partition and reverse,
// the split of qkv into heads, a large matrix transpose), against the strided loop that
// Tensor::copy_ used before it went through the evaluator's tiled transpose, measured in the
// same run, and against the bandwidth of a plain copy.
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"

using namespace fiber;

// The old Tensor::copy_: runs of the innermost coalesced dimension, element by element.
void strided_loop_copy(const Tensor<float>& dst, const Tensor<float>& src) {
  StridedLayout<2> L = coalesce<2>(dst.shape(), {dst.strides(), src.strides()});
  float* d = dst.data();
  const float* s = src.data();
  parallel_runs<2>(L, kElementwiseGrain, [&](const auto& off, std::int64_t n, const auto& inc) {
    if (inc[0] == 1 && inc[1] == 1) std::memcpy(d + off[0], s + off[1], n * sizeof(float));
    else
      for (std::int64_t i = 0; i < n; ++i) d[off[0] + i * inc[0]] = s[off[1] + i * inc[1]];
  });
}

int main() {
  std::printf("CPU: %s, threads: %d, SIMD: %s\n", bench::cpu_name().c_str(), num_threads(), xsimd::default_arch::name());
  const double copy = bench::measured_copy_gbps(1 << 24);
  std::printf("plain copy: %.1f GB/s\n\n", copy);
  Generator g(1);
  struct Case {
    std::string name;
    Tensor<float> view;
  };
  // Swin-B stage 1 at 384: [B, 96, 96, 128], windows of 12.
  const auto feat = randn<float>({2, 8, 12, 8, 12, 128}, g);
  // qkv of Swin-B stage 1: [B*nW, N, 3, heads, d] -> [3, B*nW, heads, N, d].
  const auto qkv = randn<float>({128, 144, 3, 4, 32}, g);
  // attention output [B*nW, heads, N, d] -> [B*nW, N, heads, d].
  const auto att = randn<float>({128, 4, 144, 32}, g);
  const auto mat = randn<float>({4096, 4096}, g);
  const std::vector<Case> cases = {
      {"window partition [2,8,12,8,12,128] (0,1,3,2,4,5)", feat.permute({0, 1, 3, 2, 4, 5})},
      {"qkv split [128,144,3,4,32] (2,0,3,1,4)", qkv.permute({2, 0, 3, 1, 4})},
      {"heads merge [128,4,144,32] (0,2,1,3)", att.permute({0, 2, 1, 3})},
      {"K^T per head [128,4,144,32] (0,1,3,2)", att.transpose(2, 3)},
      {"matrix transpose [4096,4096]", mat.t()},
  };
  std::printf("%-48s %10s %10s %8s %8s\n", "case", "loop ms", "tiled ms", "speedup", "GB/s");
  for (const auto& c : cases) {
    Tensor<float> out = Tensor<float>::empty(c.view.shape());
    const double t_loop = bench::median_seconds([&] { strided_loop_copy(out, c.view); });
    const auto want = out.to_vector();
    const double t_new = bench::median_seconds([&] { out.copy_(c.view); });
    if (out.to_vector() != want) std::printf("MISMATCH in %s\n", c.name.c_str());
    const double gbps = 2.0 * c.view.numel() * sizeof(float) / t_new / 1e9;
    std::printf("%-48s %10.3f %10.3f %7.2fx %8.1f\n", c.name.c_str(), t_loop * 1e3, t_new * 1e3, t_loop / t_new, gbps);
  }
}
