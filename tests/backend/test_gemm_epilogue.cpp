// Fused GEMM epilogues: the fused result equals the GEMM followed by the same epilogue applied as
// a separate pass (to within float rounding; in practice bit for bit), and both match a double
// reference of bias / GELU (erf form) / residual.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "fiber/backend/cpu/gemm.hpp"
#include "gemm_reference.hpp"

using fiber::cpu::GemmPath;
using fiber::cpu::Trans;
using std::int64_t;

namespace {

double gelu_reference(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// Runs the GEMM with a fused epilogue and as GEMM + separate pass; checks they agree within
// `ulps` units in the last place (scaled by magnitude) and returns the fused result.
template <class T, class Ep>
std::vector<T> fused_and_unfused(GemmPath path, int64_t M, int64_t N, int64_t K, const std::vector<T>& A,
                                 const std::vector<T>& W, int64_t ldc, const Ep& ep, double ulps) {
  fiber::cpu::ScopedGemmPath forced(path);
  std::vector<T> fused(M * ldc, T(0)), unfused(M * ldc, T(0));
  // x [M, K] . W^T, W [N, K]: the linear layer.
  fiber::cpu::gemm<T>(Trans::no, Trans::yes, M, N, K, T(1), A.data(), K, W.data(), K, T(0), fused.data(), ldc, ep);
  fiber::cpu::gemm<T>(Trans::no, Trans::yes, M, N, K, T(1), A.data(), K, W.data(), K, T(0), unfused.data(), ldc);
  for (int64_t i = 0; i < M; ++i) ep(i, 0, unfused.data() + i * ldc, N);
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const double a = fused[i * ldc + j], b = unfused[i * ldc + j];
      const double scale = std::max({std::abs(a), std::abs(b), 1e-3}) * std::numeric_limits<T>::epsilon();
      worst = std::max(worst, std::abs(a - b) / scale);
    }
  INFO("path ", fiber::cpu::gemm_path_name(path), " M ", M, " N ", N, " K ", K);
  CHECK(worst <= ulps);
  return fused;
}

constexpr GemmPath paths[] = {GemmPath::automatic, GemmPath::small, GemmPath::blas, GemmPath::eigen};

}  // namespace

TEST_CASE("bias, GELU, bias+GELU and residual epilogues match the unfused sequence and the reference") {
  struct Shape {
    int64_t M, N, K;
  };
  for (Shape s : {Shape{7, 13, 5}, Shape{40, 200, 64}, Shape{13, 70, 385}, Shape{130, 33, 20}})
    for (GemmPath path : paths) {
      const int64_t ldc = s.N + 2;
      const auto A = gemm_test::random_values<float>(s.M * s.K, 1);
      const auto W = gemm_test::random_values<float>(s.N * s.K, 2);
      const auto bias = gemm_test::random_values<float>(s.N, 3);
      const auto residual = gemm_test::random_values<float>(s.M * (s.N + 5), 4);
      const auto ref = gemm_test::reference_gemm<float>(Trans::no, Trans::yes, s.M, s.N, s.K, 1.f, A.data(), s.K,
                                                        W.data(), s.K, 0.f, nullptr, ldc);
      // Error bounds: the GEMM's bound carried through x + b (1 ulp more) and GELU (|gelu'| <= 1.13,
      // plus a few ulps for erf).
      auto check = [&](const std::vector<float>& got, auto expected_of, double slack) {
        int bad = 0;
        for (int64_t i = 0; i < s.M; ++i)
          for (int64_t j = 0; j < s.N; ++j) {
            const double x = ref.value[i * s.N + j];
            const double expected = expected_of(i, j, x);
            const double tol = 1.13 * ref.bound[i * s.N + j] + slack * 1.2e-7 * (std::abs(expected) + std::abs(x) + 1e-3);
            if (std::abs(got[i * ldc + j] - expected) > tol) ++bad;
          }
        CHECK(bad == 0);
      };
      const auto biased = fused_and_unfused<float>(path, s.M, s.N, s.K, A, W, ldc,
                                                   fiber::cpu::BiasEpilogue<float>{bias.data()}, 0);
      check(biased, [&](int64_t, int64_t j, double x) { return x + bias[j]; }, 2);
      const auto gelu = fused_and_unfused<float>(path, s.M, s.N, s.K, A, W, ldc, fiber::cpu::GeluEpilogue<float>{}, 0);
      check(gelu, [&](int64_t, int64_t, double x) { return gelu_reference(x); }, 8);
      const auto bias_gelu = fused_and_unfused<float>(path, s.M, s.N, s.K, A, W, ldc,
                                                      fiber::cpu::BiasGelu<float>{bias.data()}, 0);
      check(bias_gelu, [&](int64_t, int64_t j, double x) { return gelu_reference(x + bias[j]); }, 8);
      const fiber::cpu::ResidualAdd<float> add{residual.data(), s.N + 5};
      const auto added = fused_and_unfused<float>(path, s.M, s.N, s.K, A, W, ldc, add, 0);
      check(added, [&](int64_t i, int64_t j, double x) { return x + residual[i * (s.N + 5) + j]; }, 2);
      const auto composed = fused_and_unfused<float>(
          path, s.M, s.N, s.K, A, W, ldc, fiber::cpu::compose(fiber::cpu::BiasGelu<float>{bias.data()}, add), 0);
      check(composed,
            [&](int64_t i, int64_t j, double x) { return gelu_reference(x + bias[j]) + residual[i * (s.N + 5) + j]; },
            10);
    }
}

TEST_CASE("double epilogues and a three-way composition") {
  const int64_t M = 9, N = 21, K = 300;
  const auto A = gemm_test::random_values<double>(M * K, 5);
  const auto W = gemm_test::random_values<double>(N * K, 6);
  const auto bias = gemm_test::random_values<double>(N, 7);
  const auto residual = gemm_test::random_values<double>(M * N, 8);
  const auto ep = fiber::cpu::compose(fiber::cpu::BiasEpilogue<double>{bias.data()}, fiber::cpu::GeluEpilogue<double>{},
                                      fiber::cpu::ResidualAdd<double>{residual.data(), N});
  const auto got = fused_and_unfused<double>(GemmPath::automatic, M, N, K, A, W, N, ep, 0);
  const auto ref = gemm_test::reference_gemm<double>(Trans::no, Trans::yes, M, N, K, 1.0, A.data(), K, W.data(), K, 0.0,
                                                     nullptr, N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      CHECK(got[i * N + j] ==
            doctest::Approx(gelu_reference(ref.value[i * N + j] + bias[j]) + residual[i * N + j]).epsilon(1e-12));
}

TEST_CASE("GELU epilogue handles large, tiny and signed inputs") {
  std::vector<float> row = {-10.f, -3.f, -1.f, -1e-3f, 0.f, 1e-3f, 1.f, 3.f, 10.f, 40.f, -40.f};
  const std::vector<float> input = row;
  fiber::cpu::GeluEpilogue<float>{}(0, 0, row.data(), int64_t(row.size()));
  // 1 + erf(x / sqrt 2) cancels for negative x: the float result is good to a few ulps of |x|,
  // not of gelu(x) (PyTorch's float GELU computes the same formula).
  for (std::size_t i = 0; i < row.size(); ++i) {
    INFO("x = ", input[i]);
    CHECK(std::abs(row[i] - gelu_reference(input[i])) <= 4 * 1.2e-7 * std::max(1.f, std::abs(input[i])));
  }
}
