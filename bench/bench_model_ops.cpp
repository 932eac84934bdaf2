// The model ops of tests/model_ops at Swin-B / FIBER shapes, each against the unfused way of
// computing the same thing with the ops that existed before, in the same run:
//   attention_softmax(s, scale, bias, mask)  vs  softmax(s * scale + bias + mask) (one fused
//                                                 elementwise pass, then the softmax)
//   linear_gelu(x, W, b)                     vs  gelu(linear(x, W, b)) (GEMM, then a GELU pass)
//   roll (Swin's cyclic shift), pad (to a window multiple) and dropout, with their GB/s.
#include <cstdio>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"

using namespace fiber;

namespace {
void row(const char* name, double ours, double before, double bytes) {
  std::printf("%-58s %9.1f %9.1f %7.2fx %7.1f\n", name, ours * 1e6, before > 0 ? before * 1e6 : 0.0,
              before > 0 ? before / ours : 0.0, bytes / ours / 1e9);
}
}  // namespace

int main() {
  std::printf("CPU: %s, threads: %d, SIMD: %s\n", bench::cpu_name().c_str(), num_threads(), xsimd::default_arch::name());
  std::printf("%-58s %9s %9s %8s %7s\n", "case", "ours µs", "before µs", "speedup", "GB/s");
  Generator g(1);
  // Swin-B stage 1 at 384x384: 96x96 tokens, windows of 12 (64 windows of N = 144), 4 heads.
  const std::int64_t B = 1, nW = 64, h = 4, N = 144;
  const auto s = randn<float>({B, nW, h, N, N}, g), bias = randn<float>({h, N, N}, g);
  // The shift mask as Swin's: -100 only in the windows of the last row and column of the 8x8
  // grid (15 of 64), there about half the pairs.
  Tensor<float> mask = randn<float>({nW, 1, N, N}, g);
  mask.assign(where(mask > 0.0f, -100.0f, 0.0f));
  for (std::int64_t w = 0; w < nW; ++w)
    if (w % 8 != 7 && w < 56) mask.select(0, w).fill_(0.0f);
  const double sb = s.numel() * 4.0;
  {
    const double ours = bench::median_seconds([&] { (void)attention_softmax(s, 0.17f, bias, mask); }, 15);
    const double before = bench::median_seconds([&] { (void)softmax(Tensor<float>(s * 0.17f + bias + mask), -1); }, 15);
    row("attention_softmax fwd [1,64,4,144,144] + bias + mask", ours, before, 2 * sb);
    const double plain = bench::median_seconds([&] { (void)attention_softmax(s, 1.0f); }, 15);
    const double soft = bench::median_seconds([&] { (void)softmax(s, -1); }, 15);
    row("attention_softmax, no bias/mask vs softmax alone", plain, soft, 2 * sb);
    Var<float> sv(s, true), bv(bias, true);
    const Tensor<float> go = randn<float>(s.shape(), g);
    const double ours_b = bench::median_seconds([&] { attention_softmax(sv, 0.17f, bv, mask).backward(go); }, 9);
    const double before_b =
        bench::median_seconds([&] { softmax(Var<float>(sv * 0.17f + bv + mask), -1).backward(go); }, 9);
    row("attention_softmax fwd+bwd (scores, bias grads), autograd", ours_b, before_b, 5 * sb);
  }
  {
    // Swin-B stage 1 MLP fc1: [9216, 128] x [512, 128]^T.
    const auto x = randn<float>({9216, 128}, g), w = randn<float>({512, 128}, g), b = randn<float>({512}, g);
    const double ours = bench::median_seconds([&] { (void)linear_gelu(x, w, b); }, 9);
    const double before = bench::median_seconds([&] { (void)Tensor<float>(gelu(linear(x, w, b))); }, 9);
    row("linear_gelu fwd [9216,128] x [512,128]^T", ours, before, 9216 * 512 * 4.0);
    Var<float> xv(x, true), wv(w, true), bv(b, true);
    const Tensor<float> go = randn<float>({9216, 512}, g);
    const double ours_b = bench::median_seconds([&] { linear_gelu(xv, wv, bv).backward(go); }, 5);
    const double before_b = bench::median_seconds([&] { Var<float>(gelu(linear(xv, wv, bv))).backward(go); }, 5);
    row("linear_gelu fwd+bwd, autograd", ours_b, before_b, 3 * 9216 * 512 * 4.0);
  }
  {
    const auto f = randn<float>({2, 96, 96, 128}, g);
    const double bytes = 2 * f.numel() * 4.0;
    row("roll [2,96,96,128] by (-6,-6) on (1,2)", bench::median_seconds([&] { (void)roll(f, {-6, -6}, {1, 2}); }, 15), 0, bytes);
    const auto f2 = randn<float>({2, 90, 90, 128}, g);
    row("pad [2,90,90,128] to [2,96,96,128]", bench::median_seconds([&] { (void)pad(f2, {0, 0, 0, 6, 0, 6}); }, 15), 0, bytes);
    Generator dg(3);
    row("dropout p=0.1 [2,96,96,128]", bench::median_seconds([&] { (void)dropout(f, 0.1, true, dg); }, 15), 0, bytes);
  }
}
