// fiber::cpu::gemm_batched: strided batches with broadcast operands (stride 0), attention-shaped
// tiny products, epilogue row numbering, thread-count independence and argument errors.
#include <doctest/doctest.h>

#include <vector>

#include "fiber/backend/cpu/gemm_batched.hpp"
#include "gemm_reference.hpp"
#include "test_util.hpp"

using fiber::cpu::GemmPath;
using fiber::cpu::Trans;
using std::int64_t;

namespace {

struct Batched {
  Trans ta, tb;
  int64_t batch, M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c;
  std::vector<float> A, B, C0;

  // broadcast_a / broadcast_b: stride 0 for that operand.
  Batched(Trans ta_, Trans tb_, int64_t batch_, int64_t M_, int64_t N_, int64_t K_, bool broadcast_a,
          bool broadcast_b, unsigned seed)
      : ta(ta_), tb(tb_), batch(batch_), M(M_), N(N_), K(K_) {
    lda = (ta == Trans::no ? K : M) + 1;
    ldb = (tb == Trans::no ? N : K) + 2;
    ldc = N + 3;
    const int64_t a_rows = ta == Trans::no ? M : K, b_rows = tb == Trans::no ? K : N;
    stride_a = broadcast_a ? 0 : a_rows * lda + 5;
    stride_b = broadcast_b ? 0 : b_rows * ldb + 1;
    stride_c = M * ldc + 2;
    A = gemm_test::random_values<float>(std::max<int64_t>(1, (batch - 1) * stride_a + a_rows * lda), seed);
    B = gemm_test::random_values<float>(std::max<int64_t>(1, (batch - 1) * stride_b + b_rows * ldb), seed + 1);
    C0 = gemm_test::random_values<float>(std::max<int64_t>(1, batch * stride_c), seed + 2);
  }

  std::vector<float> run(float alpha, float beta) const {
    std::vector<float> C = C0;
    fiber::cpu::gemm_batched<float>(ta, tb, batch, M, N, K, alpha, A.data(), lda, stride_a, B.data(), ldb, stride_b,
                                    beta, C.data(), ldc, stride_c);
    return C;
  }

  // Every item against the reference; entries between items stay as they were.
  void check(const std::vector<float>& C, float alpha, float beta) const {
    for (int64_t b = 0; b < batch; ++b) {
      const auto ref = gemm_test::reference_gemm<float>(ta, tb, M, N, K, alpha, A.data() + b * stride_a, lda,
                                                        B.data() + b * stride_b, ldb, beta, C0.data() + b * stride_c, ldc);
      INFO(gemm_test::describe(ta, tb, M, N, K), " item ", b, " of ", batch);
      CHECK(gemm_test::compare(ref, C.data() + b * stride_c, ldc) == "");
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = N; j < ldc && b * stride_c + i * ldc + j < int64_t(C.size()); ++j)
          CHECK(C[b * stride_c + i * ldc + j] == C0[b * stride_c + i * ldc + j]);
    }
  }
};

}  // namespace

TEST_CASE("gemm_batched matches the reference with broadcast operands on every path") {
  for (GemmPath path : {GemmPath::automatic, GemmPath::small, GemmPath::packed, GemmPath::blas, GemmPath::eigen})
    for (Trans ta : {Trans::no, Trans::yes})
      for (Trans tb : {Trans::no, Trans::yes})
        for (int broadcast = 0; broadcast < 3; ++broadcast) {
          fiber::cpu::ScopedGemmPath forced(path);
          INFO("path ", fiber::cpu::gemm_path_name(path), " broadcast ", broadcast);
          const Batched p(ta, tb, 5, 13, 37, 19, broadcast == 1, broadcast == 2, 20 + broadcast);
          p.check(p.run(0.5f, broadcast == 0 ? 0.f : 1.5f), 0.5f, broadcast == 0 ? 0.f : 1.5f);
        }
}

TEST_CASE("window-attention shaped batches: Q.K^T and P.V") {
  // 64 windows of 49 tokens (7x7), head dim 32: enough work (about 1e7 flops) for per-item tasks
  // on the pool when it has more than one thread.
  const Batched qk(Trans::no, Trans::yes, 64, 49, 49, 32, false, false, 40);
  qk.check(qk.run(0.17f, 0.f), 0.17f, 0.f);
  const Batched pv(Trans::no, Trans::no, 64, 49, 32, 49, false, false, 50);
  pv.check(pv.run(1.f, 0.f), 1.f, 0.f);
  // A shared relative-position-like operand broadcast over the batch.
  const Batched shared(Trans::no, Trans::no, 9, 144, 32, 16, false, true, 60);
  shared.check(shared.run(1.f, 1.f), 1.f, 1.f);
}

TEST_CASE("gemm_batched results are identical for 1, 2 and 3 threads") {
  const fiber::test::RestoreThreads restore_threads;
  for (bool big_items : {false, true}) {
    // Small items go one per task (64 x 1.5e5 flops, above gemm_thread_min_flops in all); big ones
    // (2 x 6.4e7 flops, above batched_item_thread_flops each) are threaded inside.
    const Batched p = big_items ? Batched(Trans::no, Trans::yes, 2, 400, 400, 200, false, false, 70)
                                : Batched(Trans::no, Trans::yes, 64, 49, 49, 32, false, true, 80);
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      fiber::set_num_threads(threads);
      const auto C = p.run(1.f, 0.f);
      if (first.empty()) {
        first = C;
      } else {
        INFO("threads ", threads, " big items ", big_items);
        CHECK(C == first);
      }
    }
  }
}

TEST_CASE("gemm_batched epilogue sees the rows of the batch stacked") {
  // C_b = A_b . B + residual rows [b * M, (b + 1) * M) of a [batch * M, N] residual.
  const int64_t batch = 3, M = 4, N = 5, K = 6;
  const auto A = gemm_test::random_values<float>(batch * M * K, 1);
  const auto B = gemm_test::random_values<float>(K * N, 2);
  const auto residual = gemm_test::random_values<float>(batch * M * N, 3);
  std::vector<float> C(batch * M * N);
  fiber::cpu::gemm_batched<float>(Trans::no, Trans::no, batch, M, N, K, 1.f, A.data(), K, M * K, B.data(), N, 0, 0.f,
                                  C.data(), N, M * N, fiber::cpu::ResidualAdd<float>{residual.data(), N});
  for (int64_t b = 0; b < batch; ++b) {
    const auto ref = gemm_test::reference_gemm<float>(Trans::no, Trans::no, M, N, K, 1.f, A.data() + b * M * K, K,
                                                      B.data(), N, 0.f, nullptr, N);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        CHECK(C[(b * M + i) * N + j] ==
              doctest::Approx(ref.value[i * N + j] + residual[(b * M + i) * N + j]).epsilon(1e-5));
  }
}

TEST_CASE("gemm_batched with batch 0 or empty items does nothing") {
  std::vector<float> C(4, 3.f);
  fiber::cpu::gemm_batched<float>(Trans::no, Trans::no, 0, 2, 2, 2, 1.f, nullptr, 2, 4, nullptr, 2, 4, 0.f, nullptr, 2,
                                  4);
  fiber::cpu::gemm_batched<float>(Trans::no, Trans::no, 2, 0, 2, 2, 1.f, C.data(), 2, 4, C.data(), 2, 4, 0.f, C.data(),
                                  2, 0);
  CHECK(C == std::vector<float>(4, 3.f));
}

TEST_CASE("gemm_batched rejects bad arguments with a message naming them") {
  std::vector<float> A(256, 1.f), B(256, 1.f), C(256);
  auto call = [&](int64_t batch, int64_t lda, int64_t sa, int64_t sb, int64_t sc) {
    fiber::cpu::gemm_batched<float>(Trans::no, Trans::no, batch, 2, 3, 4, 1.f, A.data(), lda, sa, B.data(), 3, sb, 0.f,
                                    C.data(), 3, sc);
  };
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(call(-1, 4, 8, 12, 6), Contains("gemm_batched: batch = -1 must be >= 0"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(2, 3, 8, 12, 6), Contains("gemm_batched: lda = 3"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(2, 4, -8, 12, 6), Contains("stride_a = -8 must be >= 0"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(2, 4, 8, -1, 6), Contains("stride_b = -1"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(2, 4, 8, 12, 5), Contains("stride_c = 5 is smaller than one C matrix (6 elements)"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(call(2, 4, 8, 12, 0), Contains("outputs would overlap"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(3, 4, int64_t{1} << 40, 12, 6), Contains("stride_a"), fiber::Error);
  CHECK_NOTHROW(call(1, 4, 8, 12, 0));  // one item: C's stride does not matter
}
