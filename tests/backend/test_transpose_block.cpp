// The register-block transposes and panel packing used by the GEMM: every element lands where
// the layout says, for sizes around the block size, with zero padding beyond the valid part.
#include <doctest/doctest.h>

#include <vector>

#include "fiber/backend/cpu/gemm_pack.hpp"
#include "fiber/backend/cpu/transpose_block.hpp"

using fiber::cpu::Trans;
using std::int64_t;

TEST_CASE("transpose moves every element for sizes around the register block") {
  for (int64_t rows : {1, 7, 8, 15, 16, 17, 33})
    for (int64_t cols : {1, 8, 16, 31, 48}) {
      const int64_t ld_src = cols + 3, ld_dst = rows + 5;
      std::vector<float> src(rows * ld_src), dst(cols * ld_dst, -1.f);
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = float(i);
      fiber::cpu::detail::transpose(src.data(), ld_src, rows, cols, dst.data(), ld_dst);
      int wrong = 0;
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < ld_dst; ++r) {
          const float expected = r < rows ? src[r * ld_src + c] : -1.f;
          if (dst[c * ld_dst + r] != expected) ++wrong;
        }
      INFO("rows ", rows, " cols ", cols);
      CHECK(wrong == 0);
    }
}

TEST_CASE("packed B and A panels follow the k-major layout with zero padding") {
  const int64_t K = 20, N = 37, M = 11, width = 40, MR = 6;
  std::vector<double> B(K * N), Bt(N * K), A(M * K), At(K * M);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) B[k * N + n] = Bt[n * K + k] = double(k * 100 + n);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) A[m * K + k] = At[k * M + m] = double(m * 100 + k);
  for (Trans t : {Trans::no, Trans::yes}) {
    std::vector<double> panel(13 * width, -1.0);
    // op(B)[3 : 16, 5 : 35] into one [13, 40] panel (30 valid columns), as the GEMM packs it.
    fiber::cpu::detail::pack_b_panels(t, t == Trans::no ? B.data() : Bt.data(), t == Trans::no ? N : K, 3, 13, 5, 30,
                                      width, width, panel.data());
    int wrong = 0;
    for (int64_t k = 0; k < 13; ++k)
      for (int64_t j = 0; j < width; ++j)
        if (panel[k * width + j] != (j < 30 ? double((k + 3) * 100 + j + 5) : 0.0)) ++wrong;
    CHECK(wrong == 0);
    std::vector<double> a_panel(9 * MR, -1.0);
    // op(A)[7 : 11, 2 : 11] into a [9, MR] panel: 4 valid rows.
    fiber::cpu::detail::pack_a_panel(t, t == Trans::no ? A.data() : At.data(), t == Trans::no ? K : M, 7, 2, 9, 4,
                                     int(MR), a_panel.data());
    wrong = 0;
    for (int64_t k = 0; k < 9; ++k)
      for (int64_t i = 0; i < MR; ++i)
        if (a_panel[k * MR + i] != (i < 4 ? double((i + 7) * 100 + k + 2) : 0.0)) ++wrong;
    CHECK(wrong == 0);
  }
}
