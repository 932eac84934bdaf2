#pragma once
// Our blocked GEMM (the "packed" path): C = alpha * op(A) op(B) + beta * C, then the epilogue.
//
//   pack the A micro-panels that cannot be read in place (A transposed, or M's last partial panel);
//   then, in parallel over tasks, each a range of NR-wide column panels of C times a range of rows
//   (columns split first; rows first when A is too tall for the cache):
//     for each group of 4 panels (tall A: as many as fit 256 KiB): for each K block (at most KC
//     deep, K cut into equal blocks):
//       pack op(B)[K block, panel block] into [kc, NR] panels (L2), reading B's rows contiguously
//       for each MR-row micro-panel of A (read in place from A, L1): for each panel: microkernel
//
// Every element of C is summed in the same order (k ascending within a K block, K blocks in
// order), whichever thread computes its tile and however tiles are grouped into tasks, so the
// result is identical for any thread count. K is never split across threads.
#include <algorithm>
#include <cstdint>

#include "fiber/backend/cpu/gemm_args.hpp"
#include "fiber/backend/cpu/gemm_epilogue.hpp"
#include "fiber/backend/cpu/gemm_microkernel.hpp"
#include "fiber/backend/cpu/gemm_pack.hpp"
#include "fiber/backend/cpu/simd.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber::cpu::detail {

// Cache blocking, in elements. Measured on Zen 4 (32 KiB L1d, 1 MiB L2, 32 MiB L3): the packed B
// panel (KC x NR) stays in L2 while the kernel sweeps the rows of A.
template <class T>
struct Blocking {
  static constexpr std::int64_t kc = sizeof(T) == 8 ? 256 : 384;
  // B panels packed together: their rows are read as one contiguous run (4 x 64 floats).
  static constexpr std::int64_t panels_per_pack = 4;
  // When A is too tall to stay in cache: the packed B panels a task keeps while it sweeps its
  // rows of A, in elements (256 KiB: half the smallest L2 seen, Zen 3's 512 KiB). Every A
  // micro-panel meets all of them, so A is read from memory once per K block, not once per 4
  // panels (for Swin stage 1's qkv at batch 8: once instead of six times).
  static constexpr std::int64_t b_block = (std::int64_t{256} << 10) / std::int64_t{sizeof(T)};
  // Largest A (in elements) packed once per call rather than per use: bounds the scratch memory
  // a thread keeps (8 MiB of floats).
  static constexpr std::int64_t a_prepack_max = std::int64_t{1} << 21;
};

// Cut [0, K) into ceil(K / kc_max) blocks of equal size (the first K % blocks are one longer).
struct KBlocks {
  std::int64_t count, base, longer;
  KBlocks(std::int64_t K, std::int64_t kc_max)
      : count(std::max<std::int64_t>(1, (K + kc_max - 1) / kc_max)), base(K / count), longer(K % count) {}
  std::int64_t offset(std::int64_t b) const { return b * base + std::min(b, longer); }
  std::int64_t size(std::int64_t b) const { return base + (b < longer ? 1 : 0); }
};

// C = beta * C (C not read when beta == 0), then the epilogue: what a GEMM with K == 0 or
// alpha == 0 computes.
template <class T, class Ep>
inline void scale_c(std::int64_t M, std::int64_t N, T beta, T* C, std::int64_t ldc, const Ep& ep, bool threaded) {
  auto rows = [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t i = r0; i < r1; ++i) {
      T* row = C + i * ldc;
      if (beta == T(0)) {
        std::fill(row, row + N, T(0));
      } else if (beta != T(1)) {
        for (std::int64_t j = 0; j < N; ++j) row[j] *= beta;
      }
      if constexpr (!is_no_epilogue<Ep>) ep(i, std::int64_t{0}, row, N);
    }
  };
  if (threaded) {
    parallel_for(0, M, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(N, 1)), rows);
  } else {
    rows(0, M);
  }
}

template <class T>
struct PackedScratch {
  ScratchBuffer<T> a_packed;  // the calling thread's packed A panels (A transposed, or M's tail)
  ScratchBuffer<T> a_panel;   // one A micro-panel packed where it is used (A too large to prepack)
  ScratchBuffer<T> b_panel;   // the packed B panels of the thread running a task
  ScratchBuffer<T> tile;      // an edge tile of C
};
template <class T>
inline PackedScratch<T>& packed_scratch() {
  static thread_local PackedScratch<T> scratch;
  return scratch;
}

// Runs fn(t) for t in [0, tasks), on the pool when threaded.
template <class F>
inline void run_tasks(bool threaded, std::int64_t tasks, F&& fn) {
  if (threaded && tasks > 1) {
    thread_pool().run(tasks, fn);
  } else {
    for (std::int64_t t = 0; t < tasks; ++t) fn(t);
  }
}

// Asks for rows [0, rows) x [0, cols) of a row-major operand ahead of use (into L2): the next
// micro-panel of an A read in place, whose rows lie a stride apart, while this one computes.
template <class T>
inline void prefetch_rows(const T* p, std::int64_t ld, std::int64_t rows, std::int64_t cols) {
  constexpr std::int64_t line = 64 / sizeof(T);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t k = 0; k < cols; k += line) __builtin_prefetch(p + i * ld + k, 0, 2);
}

template <class T, int MR, int NV, class Ep>
void gemm_blocked(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                  std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc, const Ep& ep,
                  bool threaded) {
  constexpr int W = vec_width<T>;
  constexpr std::int64_t NR = std::int64_t{NV} * W;
  const KBlocks kblocks(K, Blocking<T>::kc);
  const std::int64_t mp = (M + MR - 1) / MR;              // row micro-panels
  const std::int64_t full_mp = M / MR;                    // ... of MR rows
  const std::int64_t np = (N + NR - 1) / NR;              // B panels
  const std::int64_t last_valid = N - (np - 1) * NR;      // columns in the last panel
  const std::int64_t last_width = (last_valid + W - 1) / W * W;  // its packed width

  // A panels that cannot be read in place (all of A when transposed, else the last partial
  // micro-panel) are packed once, for every K block: [kb][panel][kc, MR], when that fits the
  // scratch budget; otherwise each task packs them where it uses them (a few % more work, memory
  // bounded).
  const std::int64_t first_packed = ta == Trans::yes ? 0 : full_mp;
  const std::int64_t packed_panels = mp - first_packed;
  const bool prepacked = packed_panels > 0 && packed_panels * MR * K <= Blocking<T>::a_prepack_max;
  T* a_packed = prepacked ? packed_scratch<T>().a_packed.get(packed_panels * MR * K) : nullptr;
  auto a_panel_at = [&](std::int64_t kb, std::int64_t ir) {
    return a_packed + kblocks.offset(kb) * packed_panels * MR + (ir - first_packed) * MR * kblocks.size(kb);
  };
  if (prepacked) {
    run_tasks(threaded && packed_panels * K >= 65536, kblocks.count * packed_panels, [&](std::int64_t t) {
      const std::int64_t kb = t / packed_panels, ir = first_packed + t % packed_panels;
      pack_a_panel(ta, A, lda, ir * MR, kblocks.offset(kb), kblocks.size(kb), std::min<std::int64_t>(MR, M - ir * MR),
                   MR, a_panel_at(kb, ir));
    });
  }

  // Tasks: ranges of B panels times ranges of rows. The grouping changes no result (each tile is
  // computed the same way in any task).
  //   A's K block up to 1 MiB (stays in L2/L3): columns are split first, so each B element is
  //     packed once, and the task sweeps its rows of A once per 4 panels, from cache.
  //   A is tall (Swin stage 1: 4.7 MB at batch 1, 38-151 MB at batch 8): rows are split first
  //     (at least 256 rows a task, so packing B again per row range costs little), and each A
  //     micro-panel meets as many B panels as fit b_block, so A comes from memory once per K block.
  const int threads = threaded ? num_threads() : 1;
  const bool tall = M * kblocks.size(0) > 4 * Blocking<T>::b_block;  // A's K block over 1 MiB
  const std::int64_t block_panels =
      tall ? std::max<std::int64_t>(Blocking<T>::panels_per_pack, Blocking<T>::b_block / (kblocks.size(0) * NR))
           : Blocking<T>::panels_per_pack;
  std::int64_t col_groups = tall ? (np + block_panels - 1) / block_panels : 1, row_groups = 1;
  if (threads > 1) {
    const std::int64_t target = 4 * threads;
    if (tall) row_groups = std::min({mp, target, std::max<std::int64_t>(1, M / 256)});
    if (col_groups * row_groups < target) col_groups = std::min(np, (target + row_groups - 1) / row_groups);
    if (col_groups * row_groups < target) row_groups = std::min(mp, (target + col_groups - 1) / col_groups);
  }

  auto task = [&](std::int64_t t) {
    const std::int64_t cg = t / row_groups, rg = t % row_groups;
    const std::int64_t p0 = np * cg / col_groups, p1 = np * (cg + 1) / col_groups;
    const std::int64_t ir0 = mp * rg / row_groups, ir1 = mp * (rg + 1) / row_groups;
    auto& scratch = packed_scratch<T>();
    const std::int64_t G = std::min(block_panels, p1 - p0);  // panels packed and swept together
    T* b_panels = scratch.b_panel.get(G * kblocks.size(0) * NR);
    T* tile = scratch.tile.get(MR * NR);
    T* a_panel = prepacked || packed_panels == 0 ? nullptr : scratch.a_panel.get(MR * Blocking<T>::kc);
    for (std::int64_t g0 = p0; g0 < p1; g0 += G) {
      const std::int64_t g1 = std::min(p1, g0 + G);
      for (std::int64_t kb = 0; kb < kblocks.count; ++kb) {
        const std::int64_t k0 = kblocks.offset(kb), kc = kblocks.size(kb);
        const T beta_k = kb == 0 ? beta : T(1);
        pack_b_panels(tb, B, ldb, k0, kc, g0 * NR, std::min(N, g1 * NR) - g0 * NR, NR, g1 == np ? last_width : NR,
                      b_panels);
        // Each A micro-panel (in L1) meets the group's B panels (in L2).
        for (std::int64_t ir = ir0; ir < ir1; ++ir) {
          const std::int64_t i0 = ir * MR, mr = std::min<std::int64_t>(MR, M - i0);
          const bool direct = ir < first_packed;
          const T* a = direct ? A + i0 * lda + k0 : prepacked ? a_panel_at(kb, ir) : a_panel;
          if (!direct && !prepacked) pack_a_panel(ta, A, lda, i0, k0, kc, mr, MR, a_panel);
          if (ir + 1 < ir1 && ir + 1 < first_packed) prefetch_rows(A + (i0 + MR) * lda + k0, lda, MR, kc);
          for (std::int64_t p = g0; p < g1; ++p) {
            const bool last_panel = p + 1 == np;
            const std::int64_t j0 = p * NR;
            const std::int64_t nr = last_panel ? last_valid : NR, width = last_panel ? last_width : NR;
            const int nv = static_cast<int>(width / W);
            const MicrokernelFn<T> kernel =
                direct ? microkernel_for<T, MR, NV, false>(nv) : microkernel_for<T, MR, NV, true>(nv);
            const T* b_panel = b_panels + (p - g0) * kc * NR;
            T* c = C + i0 * ldc + j0;
            if (mr == MR && nr == width) {
              kernel(kc, a, lda, b_panel, c, ldc, alpha, beta_k);
            } else {
              kernel(kc, a, lda, b_panel, tile, NR, T(1), T(0));
              store_tile(tile, NR, mr, nr, c, ldc, alpha, beta_k);
            }
            if constexpr (!is_no_epilogue<Ep>) {
              if (kb + 1 == kblocks.count)
                for (std::int64_t i = 0; i < mr; ++i) ep(i0 + i, j0, c + i * ldc, nr);
            }
          }
        }
      }
    }
  };
  run_tasks(threaded, col_groups * row_groups, task);
}

// The packed path for any shape: narrow products (N within the narrow kernel's width) use the
// taller narrow tile, the rest the wide one.
template <class T, class Ep>
void gemm_packed(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                 std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc, const Ep& ep,
                 bool threaded) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc, ep, threaded);
    return;
  }
  constexpr KernelShape wide = wide_shape<T>, narrow = narrow_shape<T>;
  if (N <= std::int64_t{narrow.nv} * vec_width<T>) {
    gemm_blocked<T, narrow.mr, narrow.nv>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, threaded);
  } else {
    gemm_blocked<T, wide.mr, wide.nv>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, threaded);
  }
}

}  // namespace fiber::cpu::detail
