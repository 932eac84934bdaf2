#pragma once
// Anchors of the detection head (modeling/rpn/anchor_generator.py, Detectron's convention).
//   cell_anchors(stride, sizes, aspect_ratios) -> [R·S, 4]   one location's anchors, float64
//   grid_anchors(grid_h, grid_w, stride, cell) -> [grid_h·grid_w·R·S, 4]
// A cell anchor is centred on ((stride − 1) / 2, (stride − 1) / 2): the reference window
// [0, 0, stride − 1, stride − 1] is reshaped to each aspect ratio h / w keeping its area (widths
// rounded half to even, as numpy.round), then scaled to each size. The grid adds (x·stride,
// y·stride) for every location, row-major, all anchors of a location together. Anchors cover the
// whole (padded) feature map. FIBER: one anchor per location, sizes 64…1024 on strides 8…128.
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/ops/join.hpp"

namespace fiber::detection {

struct AnchorLevel {
  std::int64_t stride;
  double size;
};

// P3–P7 of the fine-grained model: ANCHOR_STRIDE (8, 16, 32, 64, 128), ANCHOR_SIZES (64 … 1024),
// ASPECT_RATIOS (1.0,), SCALES_PER_OCTAVE 1.
inline constexpr std::array<AnchorLevel, 5> fiber_anchor_levels = {
    {{8, 64}, {16, 128}, {32, 256}, {64, 512}, {128, 1024}}};

// [ratios × sizes, 4] in float64, ratio-major (Detectron's order).
inline Tensor<double> cell_anchors(std::int64_t stride, std::span<const double> sizes, std::span<const double> aspect_ratios) {
  FIBER_CHECK(stride >= 1 && stride <= (std::int64_t{1} << 20), "cell_anchors: stride ", stride, " is outside [1, 2^20]");
  FIBER_CHECK(!sizes.empty() && !aspect_ratios.empty(), "cell_anchors: needs at least one size and one aspect ratio");
  for (double s : sizes) FIBER_CHECK(s > 0 && std::isfinite(s), "cell_anchors: size ", s, " must be positive");
  for (double r : aspect_ratios) FIBER_CHECK(r > 0 && std::isfinite(r), "cell_anchors: aspect ratio ", r, " must be positive");
  const auto S = std::int64_t(sizes.size()), R = std::int64_t(aspect_ratios.size());
  Tensor<double> out = Tensor<double>::empty({R * S, 4});
  const double base = double(stride);
  const double ctr = 0.5 * (base - 1);  // the reference window [0, 0, base − 1, base − 1]
  for (std::int64_t r = 0; r < R; ++r) {
    const double area = base * base;
    const double w = std::nearbyint(std::sqrt(area / aspect_ratios[r]));  // half to even
    const double h = std::nearbyint(w * aspect_ratios[r]);
    for (std::int64_t s = 0; s < S; ++s) {
      const double scale = sizes[s] / base;
      const double ws = w * scale, hs = h * scale;
      double* o = out.data() + 4 * (r * S + s);
      o[0] = ctr - 0.5 * (ws - 1);
      o[1] = ctr - 0.5 * (hs - 1);
      o[2] = ctr + 0.5 * (ws - 1);
      o[3] = ctr + 0.5 * (hs - 1);
    }
  }
  return out;
}

// All anchors of one level: cell (float64 [n, 4]) shifted over a grid_h × grid_w map, in T (the
// official code converts the cell anchors to float32 and adds float32 shifts).
template <class T = float>
Tensor<T> grid_anchors(std::int64_t grid_h, std::int64_t grid_w, std::int64_t stride, const Tensor<double>& cell) {
  FIBER_CHECK(cell.dim() == 2 && cell.size(1) == 4, "grid_anchors: cell anchors must be [n, 4], got ", cell.shape());
  FIBER_CHECK(grid_h >= 0 && grid_w >= 0 && grid_h <= (1 << 20) && grid_w <= (1 << 20), "grid_anchors: grid ", grid_h,
              "x", grid_w, " is outside [0, 2^20]");
  const std::int64_t n = cell.size(0);
  const Tensor<double> c = cell.contiguous();
  Tensor<T> out = Tensor<T>::empty({grid_h * grid_w * n, 4});
  T* o = out.data();
  for (std::int64_t y = 0; y < grid_h; ++y)
    for (std::int64_t x = 0; x < grid_w; ++x)
      for (std::int64_t a = 0; a < n; ++a, o += 4) {
        const T sx = T(x * stride), sy = T(y * stride);
        const double* b = c.data() + 4 * a;
        o[0] = sx + T(b[0]);
        o[1] = sy + T(b[1]);
        o[2] = sx + T(b[2]);
        o[3] = sy + T(b[3]);
      }
  return out;
}

// The anchors of FIBER's five levels for feature maps of these sizes ({h, w} per level), concatenated
// level after level: [Σ h·w, 4].
template <class T = float>
Tensor<T> fiber_anchors(std::span<const std::array<std::int64_t, 2>> grids) {
  FIBER_CHECK(grids.size() == fiber_anchor_levels.size(), "fiber_anchors: ", grids.size(), " feature maps for ",
              fiber_anchor_levels.size(), " anchor levels");
  std::vector<Tensor<T>> levels;
  const double ratio = 1.0;
  for (std::size_t l = 0; l < grids.size(); ++l) {
    const double size = fiber_anchor_levels[l].size;
    levels.push_back(grid_anchors<T>(grids[l][0], grids[l][1], fiber_anchor_levels[l].stride,
                                     cell_anchors(fiber_anchor_levels[l].stride, {&size, 1}, {&ratio, 1})));
  }
  return concat(levels, 0);
}

}  // namespace fiber::detection
