// GEMM benchmark: our xsimd kernel against OpenBLAS called directly, same shapes, same run.
// Prints GFLOP/s, percent of the FMA peak measured here, and ours / OpenBLAS ratios.
//
//   bench_gemm                 full table (re-execs itself with OPENBLAS_CORETYPE=COOPERLAKE when
//                              the CPU has AVX-512 and the variable is unset; then also runs a
//                              child with OpenBLAS's Haswell kernels for reference)
//   bench_gemm --no-haswell    skip the Haswell reference child
//   bench_gemm --rounds N      alternate ours and OpenBLAS N times per case, print medians (3)
//   bench_gemm --blas-only     (internal) OpenBLAS figures only, one "BLAS <id> <GFLOP/s>" per line
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fiber/fiber.hpp>

#include "bench_common.hpp"


#if defined(FIBER_HAVE_CBLAS)
#include <cblas.h>
#endif

// Timing: warm-up, then the median of several samples, each
// repeating the call long enough to be measured well (tiny products take microseconds).
namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Median seconds per call of fn(): a warm-up of at least min_seconds / 4, then `samples` samples
// of enough repetitions to last min_seconds each.
template <class F>
double median_seconds(F&& fn, int samples = 7, double min_seconds = 0.03) {
  auto t0 = Clock::now();
  int warm = 0;
  do {
    fn();
    ++warm;
  } while (seconds_since(t0) < min_seconds / 4 || warm < 2);
  const double once = seconds_since(t0) / warm;
  const int reps = std::max(1, static_cast<int>(min_seconds / std::max(once, 1e-9)));
  std::vector<double> times;
  for (int s = 0; s < samples; ++s) {
    auto t = Clock::now();
    for (int r = 0; r < reps; ++r) fn();
    times.push_back(seconds_since(t) / reps);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace bench

using fiber::cpu::Trans;
using std::int64_t;

namespace {

struct Case {
  std::string id;    // key shared with the Haswell child
  std::string what;  // description
  int64_t batch, M, N, K;
  Trans ta, tb;
};

std::vector<Case> gemm_cases() {
  std::vector<Case> cases;
  for (int64_t n : {256, 512, 1024, 2048})
    cases.push_back({"sq" + std::to_string(n), "square A.B", 1, n, n, n, Trans::no, Trans::no});
  // Transformer shapes, tokens x in-features -> out-features: x [M, K], W stored [K, N] (x.W)
  // or [N, K] (the linear layer x.W^T).
  struct Layer {
    int64_t M, K, N;
    const char* name;
  };
  for (Layer l : {Layer{576, 512, 512, "Swin 24x24 tokens, C 512"}, Layer{144, 1024, 4096, "Swin MLP up, C 1024"},
                  Layer{144, 4096, 1024, "Swin MLP down, C 1024"}, Layer{40, 768, 3072, "RoBERTa MLP up, 40 tokens"},
                  Layer{40, 3072, 768, "RoBERTa MLP down, 40 tokens"},
                  // Swin-B stage 1 at 384 px (96x96 tokens, C 128), batch 1 and 8: tall, thin
                  // products whose A (up to 38 MB at batch 8) does not fit in any cache.
                  Layer{9216, 128, 384, "Swin-B stage 1 qkv, batch 1"}, Layer{73728, 128, 384, "Swin-B stage 1 qkv, batch 8"},
                  Layer{73728, 128, 512, "Swin-B stage 1 MLP up, batch 8"},
                  Layer{73728, 512, 128, "Swin-B stage 1 MLP down, batch 8"}}) {
    const std::string base = std::to_string(l.M) + "x" + std::to_string(l.K) + "x" + std::to_string(l.N);
    cases.push_back({base + "nn", std::string(l.name) + ", x.W", 1, l.M, l.N, l.K, Trans::no, Trans::no});
    cases.push_back({base + "nt", std::string(l.name) + ", x.W^T", 1, l.M, l.N, l.K, Trans::no, Trans::yes});
  }
  return cases;
}

std::vector<Case> batched_cases() {
  // Window attention, 12x12 windows (144 tokens), head dim 32: Q.K^T (K stored [144, 32]) and P.V.
  return {{"qk256", "Q.K^T windows", 256, 144, 144, 32, Trans::no, Trans::yes},
          {"pv256", "P.V windows", 256, 144, 32, 144, Trans::no, Trans::no},
          {"qk64", "Q.K^T windows", 64, 144, 144, 32, Trans::no, Trans::yes},
          {"pv64", "P.V windows", 64, 144, 32, 144, Trans::no, Trans::no}};
}

struct Operands {
  std::vector<float> a, b, c;
  int64_t lda, ldb, ldc, stride_a, stride_b, stride_c;
  explicit Operands(const Case& cs) {
    lda = cs.ta == Trans::no ? cs.K : cs.M;
    ldb = cs.tb == Trans::no ? cs.N : cs.K;
    ldc = cs.N;
    stride_a = cs.M * cs.K;
    stride_b = cs.K * cs.N;
    stride_c = cs.M * cs.N;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    a.resize(cs.batch * stride_a);
    b.resize(cs.batch * stride_b);
    c.resize(cs.batch * stride_c);
    for (auto& x : a) x = dist(rng);
    for (auto& x : b) x = dist(rng);
  }
};

double flops(const Case& cs) { return 2.0 * cs.batch * cs.M * cs.N * cs.K; }

double ours_gflops(const Case& cs, Operands& op) {
  auto run = [&] {
    fiber::cpu::gemm_batched<float>(cs.ta, cs.tb, cs.batch, cs.M, cs.N, cs.K, 1.f, op.a.data(), op.lda, op.stride_a,
                                    op.b.data(), op.ldb, op.stride_b, 0.f, op.c.data(), op.ldc, op.stride_c);
  };
  return flops(cs) / bench::median_seconds(run) * 1e-9;
}

#if defined(FIBER_HAVE_CBLAS)
void blas_gemm(const Case& cs, Operands& op) {
  for (int64_t b = 0; b < cs.batch; ++b)
    cblas_sgemm(CblasRowMajor, cs.ta == Trans::yes ? CblasTrans : CblasNoTrans,
                cs.tb == Trans::yes ? CblasTrans : CblasNoTrans, int(cs.M), int(cs.N), int(cs.K), 1.f,
                op.a.data() + b * op.stride_a, int(op.lda), op.b.data() + b * op.stride_b, int(op.ldb), 0.f,
                op.c.data() + b * op.stride_c, int(op.ldc));
}
double blas_gflops(const Case& cs, Operands& op) {
  return flops(cs) / bench::median_seconds([&] { blas_gemm(cs, op); }) * 1e-9;
}
#endif

// Ours and OpenBLAS (0 without CBLAS) on one case, alternating over `rounds` rounds; the median
// of each. This machine is shared and its speed drifts over seconds: alternating keeps both
// figures of a row under the same conditions, and the median drops the odd disturbed round.
std::pair<double, double> ours_and_blas(const Case& cs, Operands& op, int rounds) {
  std::vector<double> ours, blas;
  // OpenBLAS's threads keep spinning for up to 2^28 cycles (~75 ms here) after a call (see
  // sequence_section) and took cycles from our pool when ours was timed right after: each
  // measurement starts once every other thread has gone to sleep.
  auto settle = [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); };
  for (int r = 0; r < rounds; ++r) {
    settle();
    ours.push_back(ours_gflops(cs, op));
#if defined(FIBER_HAVE_CBLAS)
    settle();
    blas.push_back(blas_gflops(cs, op));
#else
    blas.push_back(0);
#endif
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(ours), median(blas)};
}

// Runs this program with OPENBLAS_CORETYPE=HASWELL --blas-only and reads its figures.
std::map<std::string, double> haswell_figures(const char* self) {
  std::map<std::string, double> out;
  const std::string command = std::string("OPENBLAS_CORETYPE=HASWELL '") + self + "' --blas-only";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char line[256], id[128];
  double value;
  while (std::fgets(line, sizeof line, pipe))
    if (std::sscanf(line, "BLAS %127s %lf", id, &value) == 2) out[id] = value;
  pclose(pipe);
  return out;
}

void print_row(const Case& cs, double ours, double blas, double haswell, double peak) {
  std::printf("%-30s %5lld %5lld %5lld %3s%s | %7.1f %5.1f%% |", cs.what.c_str(), (long long)cs.M, (long long)cs.N,
              (long long)cs.K, cs.ta == Trans::yes ? "T" : "N", cs.tb == Trans::yes ? "T" : "N", ours,
              100 * ours / peak);
  if (blas > 0) {
    std::printf(" %7.1f %5.1f%% | %5.2f |", blas, 100 * blas / peak, ours / blas);
  } else {
    std::printf(" %7s %6s | %5s |", "-", "", "-");
  }
  if (haswell > 0) {
    std::printf(" %7.1f\n", haswell);
  } else {
    std::printf(" %7s\n", "-");
  }
}

// A linear layer x.W^T + b then GELU: fused epilogue vs the GEMM then a separate pass.
void epilogue_section(double peak) {
  std::printf("\nFused epilogue (linear + bias + GELU, x.W^T): ms per call\n");
  std::printf("%-30s | %8s | %8s | %8s\n", "shape M x N x K", "fused", "unfused", "OpenBLAS+pass");
  struct S {
    int64_t M, N, K;
  };
  for (S s : {S{144, 4096, 1024}, S{40, 3072, 768}, S{576, 2048, 512}}) {
    Case cs{"", "", 1, s.M, s.N, s.K, Trans::no, Trans::yes};
    Operands op(cs);
    std::vector<float> bias(s.N, 0.25f);
    const fiber::cpu::BiasGelu<float> ep{bias.data()};
    auto pass = [&] {
      fiber::parallel_for(0, s.M, 8, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) ep(i, 0, op.c.data() + i * s.N, s.N);
      });
    };
    const double fused = bench::median_seconds([&] {
      fiber::cpu::gemm<float>(Trans::no, Trans::yes, s.M, s.N, s.K, 1.f, op.a.data(), s.K, op.b.data(), s.K, 0.f,
                              op.c.data(), s.N, ep);
    });
    const double unfused = bench::median_seconds([&] {
      fiber::cpu::gemm<float>(Trans::no, Trans::yes, s.M, s.N, s.K, 1.f, op.a.data(), s.K, op.b.data(), s.K, 0.f,
                              op.c.data(), s.N);
      pass();
    });
    double blas = 0;
#if defined(FIBER_HAVE_CBLAS)
    blas = bench::median_seconds([&] {
      blas_gemm(cs, op);
      pass();
    });
#endif
    const std::string name = std::to_string(s.M) + " x " + std::to_string(s.N) + " x " + std::to_string(s.K);
    std::printf("%-30s | %8.3f | %8.3f | %8.3f   (fused: %.1f%% of peak)\n", name.c_str(), fused * 1e3,
                unfused * 1e3, blas * 1e3, 100 * flops(cs) / fused * 1e-9 / peak);
  }
}

// OpenBLAS's threads may spin after a call and compete with our pool: time an elementwise
// parallel pass right after a GEMM (ours vs OpenBLAS) against the pass alone.
void sequence_section() {
#if defined(FIBER_HAVE_CBLAS)
  std::printf("\nGEMM then our parallel elementwise pass (8 M floats): pass time in ms\n");
  Case cs{"", "", 1, 144, 1024, 1024, Trans::no, Trans::yes};
  Operands op(cs);
  std::vector<float> x(8 << 20, 1.f);
  auto pass = [&] {
    fiber::parallel_for(0, int64_t(x.size()), 65536, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) x[i] = x[i] * 0.999f + 0.001f;
    });
  };
  auto timed_pass = [&] {
    auto t = bench::Clock::now();
    pass();
    return bench::seconds_since(t);
  };
  auto median_of = [&](auto before) {
    std::vector<double> t;
    for (int r = 0; r < 15; ++r) {
      before();
      t.push_back(timed_pass());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  const double alone = median_of([] {});
  const double after_ours = median_of([&] {
    fiber::cpu::gemm<float>(Trans::no, Trans::yes, cs.M, cs.N, cs.K, 1.f, op.a.data(), cs.K, op.b.data(), cs.K, 0.f,
                            op.c.data(), cs.N);
  });
  const double after_blas = median_of([&] { blas_gemm(cs, op); });
  std::printf("pass alone %.3f | after our GEMM %.3f | after OpenBLAS GEMM %.3f\n", alone * 1e3, after_ours * 1e3,
              after_blas * 1e3);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  bool blas_only = false, haswell = true;
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--blas-only")) blas_only = true;
    if (!std::strcmp(argv[i], "--no-haswell")) haswell = false;
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::max(1, std::min(99, std::atoi(argv[++i])));
  }
#if defined(FIBER_HAVE_CBLAS) && defined(__x86_64__)
  // OpenBLAS 0.3.21 takes Zen 4/5 for Haswell; its AVX-512 kernels need OPENBLAS_CORETYPE set
  // before the library loads, hence the re-exec.
  if (!blas_only && __builtin_cpu_supports("avx512f") && !std::getenv("OPENBLAS_CORETYPE")) {
    setenv("OPENBLAS_CORETYPE", "COOPERLAKE", 1);
    execv("/proc/self/exe", argv);
    std::perror("bench_gemm: re-exec failed, going on with the default OpenBLAS core");
  }
#endif
  const int threads = fiber::num_threads();
#if defined(FIBER_HAVE_CBLAS) && defined(FIBER_HAVE_OPENBLAS_THREADS)
  openblas_set_num_threads(threads);
#endif
  if (blas_only) {
#if defined(FIBER_HAVE_CBLAS)
    for (const auto& list : {gemm_cases(), batched_cases()})
      for (const Case& cs : list) {
        Operands op(cs);
        std::printf("BLAS %s %.3f\n", cs.id.c_str(), blas_gflops(cs, op));
      }
#endif
    return 0;
  }

  std::printf("CPU: %s\n", fiber::bench::cpu_name().c_str());
  std::printf("threads: %d (fiber pool%s), SIMD: %s\n", threads,
              fiber::cpu::have_cblas ? " = OpenBLAS threads" : "", fiber::cpu::simd_name());
  std::printf("OpenBLAS core: %s\n", fiber::cpu::have_cblas ? fiber::cpu::blas_core_name() : "(no CBLAS in this build)");
  const double peak1 = fiber::bench::measured_fma_peak_gflops(1);
  // A neighbour busy on one core for a moment halves the all-thread figure: measure again (up to
  // five times) until it is near `threads` times the one-thread figure.
  double peak = fiber::bench::measured_fma_peak_gflops(threads);
  for (int retry = 0; retry < 4 && peak < 0.85 * threads * peak1; ++retry) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    peak = std::max(peak, fiber::bench::measured_fma_peak_gflops(threads));
  }
  std::printf("measured FMA peak (fp32, %d-wide vectors): %.1f GFLOP/s on 1 thread, %.1f on %d threads\n",
              fiber::cpu::vec_width<float>, peak1, peak, threads);
  std::map<std::string, double> has;
  if (haswell && fiber::cpu::have_cblas) has = haswell_figures(argv[0]);

  std::printf("\nGEMM, fp32, row-major, C = A.B (beta 0); GFLOP/s and %% of the %d-thread peak\n", threads);
  std::printf("(each figure the median of %d alternating rounds of ours and OpenBLAS)\n", rounds);
  std::printf("%-30s %5s %5s %5s %4s | %7s %6s | %7s %6s | %5s | %7s\n", "case", "M", "N", "K", "op", "ours", "peak",
              "OpenBLAS", "peak", "ratio", "Haswell");
  for (const Case& cs : gemm_cases()) {
    Operands op(cs);
    const auto [ours, blas] = ours_and_blas(cs, op, rounds);
    print_row(cs, ours, blas, has.count(cs.id) ? has[cs.id] : 0, peak);
  }
  // A batch whose operands outgrow the caches is bound by memory, not by the FMA units: beside
  // each figure, the bytes it must move (A and B read, C written: twice, as a store to a line not
  // in cache reads it first) and the bandwidth that makes, against a plain copy in the same run.
  const double copy_gbps = fiber::bench::measured_copy_gbps(std::size_t{16} << 20);
  std::printf("\nBatched tiny products (batch of windows, OpenBLAS: one cblas call per item)\n");
  std::printf("plain copy: %.1f GB/s (read + write)\n", copy_gbps);
  for (const Case& cs : batched_cases()) {
    Operands op(cs);
    const auto [ours, blas] = ours_and_blas(cs, op, rounds);
    Case shown = cs;
    shown.what = cs.what + " x" + std::to_string(cs.batch);
    print_row(shown, ours, blas, has.count(cs.id) ? has[cs.id] : 0, peak);
    const double bytes = 4.0 * cs.batch * double(cs.M * cs.K + cs.K * cs.N + 2 * cs.M * cs.N);
    const double gbps = bytes / (flops(cs) / (ours * 1e9)) * 1e-9;
    std::printf("%-30s   %.1f MB per call: ours move %.1f GB/s, %.0f%% of the copy bandwidth\n", "", bytes * 1e-6,
                gbps, 100 * gbps / copy_gbps);
  }
  epilogue_section(peak);
  sequence_section();
  return 0;
}
