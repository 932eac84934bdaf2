// fiber::cpu::gemm against a naive double-precision reference (error bound per element:
// (K + 4) eps (|alpha| sum |a b| + |beta c|)), on every dispatch path, every transpose
// combination, odd sizes, padded leading dimensions; thread-count independence; bad arguments.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "fiber/backend/cpu/gemm.hpp"
#include "gemm_reference.hpp"
#include "test_util.hpp"

using fiber::cpu::GemmPath;
using fiber::cpu::Trans;
using std::int64_t;

namespace {

constexpr GemmPath all_paths[] = {GemmPath::automatic, GemmPath::packed, GemmPath::small, GemmPath::blas,
                                  GemmPath::eigen};
constexpr Trans both[] = {Trans::no, Trans::yes};

// One GEMM problem with padded leading dimensions; C's padding holds a sentinel that must survive.
template <class T>
struct Problem {
  Trans ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  std::vector<T> A, B, C0;
  static constexpr T sentinel = T(12345);

  Problem(Trans ta_, Trans tb_, int64_t M_, int64_t N_, int64_t K_, int64_t pad, unsigned seed)
      : ta(ta_), tb(tb_), M(M_), N(N_), K(K_) {
    lda = (ta == Trans::no ? K : M) + pad;
    ldb = (tb == Trans::no ? N : K) + pad;
    ldc = N + pad;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (ldc < 1) ldc = 1;
    A = gemm_test::random_values<T>((ta == Trans::no ? M : K) * lda + 1, seed);
    B = gemm_test::random_values<T>((tb == Trans::no ? K : N) * ldb + 1, seed + 1);
    C0 = gemm_test::random_values<T>(M * ldc + 1, seed + 2);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = N; j < ldc; ++j) C0[i * ldc + j] = sentinel;
  }

  gemm_test::Reference reference(T alpha, T beta) const {
    return gemm_test::reference_gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C0.data(), ldc);
  }

  std::vector<T> run(T alpha, T beta) const {
    std::vector<T> C = C0;
    fiber::cpu::gemm<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    return C;
  }

  bool padding_intact(const std::vector<T>& C) const {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = N; j < ldc; ++j)
        if (C[i * ldc + j] != sentinel) return false;
    return C.back() == C0.back();
  }
};

struct Sizes {
  int64_t M, N, K;
};

// Odd sizes around the register tiles (6 x 64, 12 x 32 with AVX-512; 6 x 16, 12 x 8 with AVX2),
// several K blocks (384 floats, 256 doubles), narrow and wide N; the last two have a tall A (its K
// block over 1 MiB: rows split first, wide B blocks).
constexpr Sizes odd_sizes[] = {{1, 1, 1},     {1, 7, 13},    {7, 1, 17},    {13, 17, 1},   {17, 31, 33},
                               {31, 33, 65},  {33, 65, 7},   {65, 13, 129}, {129, 31, 17}, {6, 64, 40},
                               {12, 32, 5},   {257, 33, 31}, {31, 257, 13}, {40, 130, 385}, {7, 200, 800},
                               {24, 16, 300}, {5, 129, 257}, {1501, 37, 200}, {1100, 70, 500}};

template <class T>
void check_all_paths_and_sizes() {
  struct Scalars {
    T alpha, beta;
  };
  const Scalars scalars[] = {{T(1), T(0)}, {T(0.5), T(2)}, {T(-1.5), T(1)}};
  int index = 0;
  for (Sizes s : odd_sizes)
    for (Trans ta : both)
      for (Trans tb : both) {
        const Scalars sc = scalars[index % 3];
        const Problem<T> p(ta, tb, s.M, s.N, s.K, index % 2 == 0 ? 0 : 3, 100 + index);
        ++index;
        const auto ref = p.reference(sc.alpha, sc.beta);
        for (GemmPath path : all_paths) {
          fiber::cpu::ScopedGemmPath forced(path);
          const std::vector<T> C = p.run(sc.alpha, sc.beta);
          INFO(gemm_test::describe(ta, tb, s.M, s.N, s.K), " path ", fiber::cpu::gemm_path_name(path), " alpha ",
               sc.alpha, " beta ", sc.beta);
          CHECK(gemm_test::compare(ref, C.data(), p.ldc) == "");
          CHECK(p.padding_intact(C));
        }
      }
}

}  // namespace

TEST_CASE("float gemm matches the reference on every path, transpose and odd size") {
  check_all_paths_and_sizes<float>();
}

TEST_CASE("double gemm matches the reference on every path, transpose and odd size") {
  check_all_paths_and_sizes<double>();
}

TEST_CASE("gemm with M, N or K = 0 follows BLAS") {
  for (GemmPath path : all_paths) {
    fiber::cpu::ScopedGemmPath forced(path);
    INFO("path ", fiber::cpu::gemm_path_name(path));
    std::vector<float> A(12, 1.f), B(12, 1.f), C(12, 7.f);
    // M = 0 or N = 0: nothing is written.
    fiber::cpu::gemm<float>(Trans::no, Trans::no, 0, 3, 4, 1.f, A.data(), 4, B.data(), 3, 0.f, C.data(), 3);
    fiber::cpu::gemm<float>(Trans::no, Trans::no, 3, 0, 4, 1.f, A.data(), 4, B.data(), 1, 0.f, C.data(), 3);
    CHECK(C == std::vector<float>(12, 7.f));
    // K = 0: C = beta C, and with beta = 0 C is overwritten (NaN included) without being read.
    fiber::cpu::gemm<float>(Trans::no, Trans::no, 3, 4, 0, 1.f, A.data(), 1, B.data(), 4, 0.5f, C.data(), 4);
    CHECK(C == std::vector<float>(12, 3.5f));
    C.assign(12, std::numeric_limits<float>::quiet_NaN());
    fiber::cpu::gemm<float>(Trans::yes, Trans::yes, 3, 4, 0, 1.f, nullptr, 3, nullptr, 1, 0.f, C.data(), 4);
    CHECK(C == std::vector<float>(12, 0.f));
  }
}

TEST_CASE("beta = 0 ignores NaN in C and alpha = 0 only scales C") {
  for (GemmPath path : all_paths) {
    fiber::cpu::ScopedGemmPath forced(path);
    INFO("path ", fiber::cpu::gemm_path_name(path));
    const Problem<float> p(Trans::no, Trans::yes, 9, 70, 20, 1, 7);
    std::vector<float> C(p.C0.size(), std::numeric_limits<float>::quiet_NaN());
    fiber::cpu::gemm<float>(p.ta, p.tb, p.M, p.N, p.K, 1.f, p.A.data(), p.lda, p.B.data(), p.ldb, 0.f, C.data(),
                            p.ldc);
    const auto ref = p.reference(1.f, 0.f);
    CHECK(gemm_test::compare(ref, C.data(), p.ldc) == "");

    std::vector<float> scaled = p.C0;
    fiber::cpu::gemm<float>(p.ta, p.tb, p.M, p.N, p.K, 0.f, p.A.data(), p.lda, p.B.data(), p.ldb, 2.f,
                            scaled.data(), p.ldc);
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) CHECK(scaled[i * p.ldc + j] == 2.f * p.C0[i * p.ldc + j]);
  }
}

TEST_CASE("gemm results are identical for 1, 2 and 3 threads") {
  const fiber::test::RestoreThreads restore_threads;
  // The last: a tall A (rows split first, then columns: 5 x 2 tasks on 2 threads, 5 x 3 on 3).
  const Sizes sizes[] = {{200, 150, 100}, {97, 530, 401}, {513, 64, 70}, {40, 700, 64}, {300, 32, 300}, {1501, 70, 500}};
  for (GemmPath path : {GemmPath::automatic, GemmPath::packed, GemmPath::eigen})
    for (Sizes s : sizes)
      for (Trans ta : both)
        for (Trans tb : both) {
          fiber::cpu::ScopedGemmPath forced(path);
          const Problem<float> p(ta, tb, s.M, s.N, s.K, 1, 3);
          std::vector<float> first;
          for (int threads : {1, 2, 3}) {
            fiber::set_num_threads(threads);
            const std::vector<float> C = p.run(0.75f, 0.5f);
            if (first.empty()) {
              first = C;
            } else {
              INFO(gemm_test::describe(ta, tb, s.M, s.N, s.K), " path ", fiber::cpu::gemm_path_name(path),
                   " threads ", threads);
              CHECK(C == first);
            }
          }
        }
}

TEST_CASE("a forced path is scoped and the blas path falls back to Eigen without a CBLAS") {
  CHECK(fiber::cpu::gemm_path() == GemmPath::automatic);
  {
    fiber::cpu::ScopedGemmPath forced(GemmPath::eigen);
    CHECK(fiber::cpu::gemm_path() == GemmPath::eigen);
  }
  CHECK(fiber::cpu::gemm_path() == GemmPath::automatic);
  CHECK(fiber::cpu::detail::resolve_path(GemmPath::automatic) == GemmPath::packed);
  CHECK(fiber::cpu::detail::resolve_path(GemmPath::blas) ==
        (fiber::cpu::have_cblas ? GemmPath::blas : GemmPath::eigen));
}

TEST_CASE("gemm inside a pool task runs on that thread and stays correct") {
  const Problem<float> p(Trans::no, Trans::no, 100, 90, 80, 0, 11);
  const auto ref = p.reference(1.f, 0.f);
  for (GemmPath path : all_paths) {
    fiber::cpu::ScopedGemmPath forced(path);
    std::vector<std::vector<float>> results(4, p.C0);
    fiber::thread_pool().run(4, [&](int64_t t) {
      fiber::cpu::gemm<float>(p.ta, p.tb, p.M, p.N, p.K, 1.f, p.A.data(), p.lda, p.B.data(), p.ldb, 0.f,
                              results[t].data(), p.ldc);
    });
    for (const auto& C : results) CHECK(gemm_test::compare(ref, C.data(), p.ldc) == "");
  }
}

TEST_CASE("gemm rejects bad arguments with a message naming them") {
  std::vector<float> A(64, 1.f), B(64, 1.f), C(64);
  auto call = [&](Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
    fiber::cpu::gemm<float>(ta, tb, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), ldc);
  };
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, -1, 2, 2, 2, 2, 2), Contains("gemm: M = -1 must be >= 0"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, 2, -3, 2, 2, 2, 2), Contains("N = -3"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, 2, 2, -4, 2, 2, 2), Contains("K = -4"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, 2, 3, 4, 3, 3, 3),
                       Contains("lda = 3 is smaller than the row width 4 of A"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::yes, Trans::no, 5, 3, 4, 4, 3, 3), Contains("lda = 4 is smaller than the row width 5"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, 2, 3, 4, 4, 2, 3), Contains("ldb = 2"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::yes, 2, 3, 4, 4, 3, 3), Contains("ldb = 3 is smaller than the row width 4 of B"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, 2, 3, 4, 4, 3, 2), Contains("ldc = 2"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, 2, 3, 4, 4, 3, 0), Contains("ldc = 0"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cpu::gemm<float>(Trans::no, Trans::no, 2, 2, 2, 1.f, nullptr, 2, B.data(), 2, 0.f,
                                               C.data(), 2),
                       Contains("A is null"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::cpu::gemm<float>(Trans::no, Trans::no, 2, 2, 2, 1.f, A.data(), 2, B.data(), 2, 0.f,
                                               nullptr, 2),
                       Contains("C is null"), fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, int64_t{1} << 41, 2, 2, 2, 2, 2), Contains("too large"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(call(Trans::no, Trans::no, 1 << 30, 2, 2, int64_t{1} << 20, 2, 2), Contains("too large"),
                       fiber::Error);
}

TEST_CASE("steady-state gemm calls allocate no scratch") {
  const Problem<float> p(Trans::yes, Trans::yes, 301, 257, 500, 1, 9);
  std::vector<float> C = p.C0;
  auto call = [&] {
    fiber::cpu::gemm<float>(p.ta, p.tb, p.M, p.N, p.K, 1.f, p.A.data(), p.lda, p.B.data(), p.ldb, 0.f, C.data(), p.ldc);
  };
  // One thread: which pool thread takes which task (and so first grows its scratch) is up to the
  // scheduler; the calling thread's buffers are the same ones either way.
  const fiber::test::RestoreThreads restore_threads;
  fiber::set_num_threads(1);
  call();
  const auto before = fiber::cpu::detail::scratch_allocations().load();
  for (int i = 0; i < 10; ++i) call();
  CHECK(fiber::cpu::detail::scratch_allocations().load() == before);
}

TEST_CASE("a transposed A too large to pack once is packed where it is used") {
  // op(A) [293, 7200]: 294 x 7200 packed values exceed the 2^21 prepack budget.
  const Problem<float> p(Trans::yes, Trans::no, 293, 37, 7200, 2, 12);
  const auto ref = p.reference(1.f, 0.5f);
  for (GemmPath path : {GemmPath::automatic, GemmPath::small}) {
    fiber::cpu::ScopedGemmPath forced(path);
    CHECK(gemm_test::compare(ref, p.run(1.f, 0.5f).data(), p.ldc) == "");
  }
}
