#pragma once
// Resizing of 8-bit RGB images that matches Pillow's Image.resize bit for bit, for BILINEAR and
// BICUBIC (a = -0.5), antialiased when downscaling (the filter support grows with the scale), as
// Pillow's src/libImaging/Resample.c computes it:
//  - per axis, each output pixel o takes inputs [first, first + count) around the centre
//    (o + 0.5) * in / out, weighted by filter((i - centre + 0.5) / max(scale, 1)), the weights
//    divided by their sum, then rounded to fixed point with 22 fractional bits;
//  - a horizontal pass (only when the width changes) over the rows the vertical pass needs, whose
//    results are rounded and clipped to 8 bits, then a vertical pass (only when the height
//    changes), or the other way round when the height shrinks much more (Pillow 13's rule, see
//    resize()); each sum starts at 2^21 (rounding) and is clipped to [0, 255] after >> 22.
// The passes are separable with precomputed weights and run rows in parallel on fiber's pool.
// Integer sums are exact, so the order of taps and the thread split do not change any result.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/io/image.hpp"

namespace fiber::io {

// BICUBIC is what torchvision's Resize uses for the coarse model; BILINEAR is the fine-grained
// model's (torchvision F.resize default). Both on PIL images, so both antialiased.
enum class ResizeFilter { bilinear, bicubic };

inline ResizeFilter parse_resize_filter(std::string_view name) {
  if (name == "bilinear") return ResizeFilter::bilinear;
  if (name == "bicubic") return ResizeFilter::bicubic;
  fail("resize: unknown filter '", name, "'; expected 'bilinear' or 'bicubic'");
}

namespace detail {

inline constexpr int resample_precision_bits = 22;  // Pillow's PRECISION_BITS: 32 - 8 - 2

// The weights of one axis: output o reads inputs first[o] .. first[o] + count[o] - 1 with
// weights[o * taps + t], in fixed point with 22 fractional bits.
struct ResampleAxis {
  int taps = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> weights;  // [out_size, taps]
};

// Pillow's x86-64 wheels compute the weights in plain double arithmetic. A fused multiply-add,
// which -march=native builds may emit, rounds once where Pillow rounds twice and could move a
// weight by one fixed-point unit (we found none in all tables for sizes 1..300, but the
// guarantee is cheap): contraction is off for the two functions that compute weights.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

inline double resample_filter_weight(ResizeFilter filter, double x) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  if (x < 0.0) x = -x;
  if (filter == ResizeFilter::bilinear) return x < 1.0 ? 1.0 - x : 0.0;
  constexpr double a = -0.5;  // Pillow's bicubic
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

inline ResampleAxis resample_axis(int in_size, int out_size, ResizeFilter filter) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  // Pillow takes the source box as floats: (0, 0, width, height).
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = (filter == ResizeFilter::bilinear ? 1.0 : 2.0) * filterscale;
  const long long taps = static_cast<long long>(std::ceil(support)) * 2 + 1;
  // Pillow refuses (MemoryError) the same sizes: its weight table must fit INT_MAX bytes.
  FIBER_CHECK(out_size <= INT_MAX / (taps * static_cast<long long>(sizeof(double))), "resize: from ",
              in_size, " to ", out_size, " pixels needs a weight table of ", taps, " x ", out_size,
              " entries, over Pillow's limit");
  ResampleAxis axis;
  axis.taps = static_cast<int>(taps);
  axis.first.resize(out_size);
  axis.count.resize(out_size);
  axis.weights.assign(static_cast<std::size_t>(out_size) * axis.taps, 0);
  std::vector<double> k(axis.taps);
  const double inv_filterscale = 1.0 / filterscale;
  for (int o = 0; o < out_size; ++o) {
    const double center = in0 + (o + 0.5) * scale;
    int first = static_cast<int>(center - support + 0.5);
    if (first < 0) first = 0;
    int last = static_cast<int>(center + support + 0.5);
    if (last > in_size) last = in_size;
    const int count = last - first;
    double sum = 0.0;
    for (int t = 0; t < count; ++t) {
      const double w = resample_filter_weight(filter, (t + first - center + 0.5) * inv_filterscale);
      k[t] = w;
      sum += w;
    }
    if (sum != 0.0)
      for (int t = 0; t < count; ++t) k[t] /= sum;
    std::int32_t* out = &axis.weights[static_cast<std::size_t>(o) * axis.taps];
    for (int t = 0; t < count; ++t)
      out[t] = k[t] < 0 ? static_cast<std::int32_t>(-0.5 + k[t] * (1 << resample_precision_bits))
                        : static_cast<std::int32_t>(0.5 + k[t] * (1 << resample_precision_bits));
    axis.first[o] = first;
    axis.count[o] = count;
  }
  return axis;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

inline std::uint8_t clip_fixed_point(std::int32_t sum) {
  const std::int32_t v = sum >> resample_precision_bits;  // arithmetic shift (C++20)
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

inline constexpr std::int32_t resample_rounding = 1 << (resample_precision_bits - 1);

// Rows [row_begin, row_end) of `in` (in_width pixels wide) resampled along x into the same rows
// of `out`. Rows go in blocks of 16: the block is transposed to [x][row][channel], so that for
// each output pixel the sum over taps runs over 48 contiguous values with one weight, which
// vectorises like the vertical pass (the weights are the same for every row).
inline void resample_horizontal_rows(const std::uint8_t* in, std::size_t in_stride, int in_width,
                                     std::uint8_t* out, std::size_t out_stride, std::int64_t row_begin,
                                     std::int64_t row_end, const ResampleAxis& axis) {
  constexpr int block = 16, lanes = block * 3;
  const int out_width = static_cast<int>(axis.first.size());
  // int32, so the inner loop is a plain int32 multiply-add (vectorised even at -O2).
  std::vector<std::int32_t> columns(std::size_t(in_width) * lanes, 0);  // [x][row][channel]
  alignas(64) std::int32_t sums[lanes];
  for (std::int64_t r0 = row_begin; r0 < row_end; r0 += block) {
    const int rows = static_cast<int>(std::min<std::int64_t>(block, row_end - r0));
    for (int r = 0; r < rows; ++r) {
      const std::uint8_t* line = in + in_stride * (r0 + r);
      for (int x = 0; x < in_width; ++x)
        for (int c = 0; c < 3; ++c) columns[std::size_t(x) * lanes + r * 3 + c] = line[3 * x + c];
    }
    for (int o = 0; o < out_width; ++o) {
      const std::int32_t* k = &axis.weights[static_cast<std::size_t>(o) * axis.taps];
      for (int i = 0; i < lanes; ++i) sums[i] = resample_rounding;
      const std::int32_t* src = &columns[std::size_t(axis.first[o]) * lanes];
      for (int t = 0, n = axis.count[o]; t < n; ++t, src += lanes) {
        const std::int32_t w = k[t];
        for (int i = 0; i < lanes; ++i) sums[i] += src[i] * w;
      }
      for (int r = 0; r < rows; ++r) {
        std::uint8_t* dst = out + out_stride * (r0 + r) + 3 * std::size_t(o);
        for (int c = 0; c < 3; ++c) dst[c] = clip_fixed_point(sums[r * 3 + c]);
      }
    }
  }
}

// Output rows [row_begin, row_end): each a weighted sum of whole input rows (in_row_offset is the
// index of in's first row in the axis' numbering). A row goes in spans of 64 values whose sums
// stay in registers over all taps; the fixed span length lets compilers vectorise at -O2 too.
inline void resample_vertical_rows(const std::uint8_t* in, std::size_t stride, int in_row_offset,
                                   std::uint8_t* out, std::int64_t row_begin, std::int64_t row_end,
                                   const ResampleAxis& axis) {
  constexpr std::size_t span = 64;
  auto sum_span = [&](const std::uint8_t* first_line, std::uint8_t* dst, const std::int32_t* k, int taps,
                      auto length) {
    alignas(64) std::int32_t sums[span];
    for (std::size_t i = 0; i < length; ++i) sums[i] = resample_rounding;
    for (int t = 0; t < taps; ++t) {
      const std::uint8_t* line = first_line + stride * std::size_t(t);
      const std::int32_t w = k[t];
      for (std::size_t i = 0; i < length; ++i) sums[i] += line[i] * w;
    }
    for (std::size_t i = 0; i < length; ++i) dst[i] = clip_fixed_point(sums[i]);
  };
  for (std::int64_t o = row_begin; o < row_end; ++o) {
    const std::int32_t* k = &axis.weights[static_cast<std::size_t>(o) * axis.taps];
    const std::uint8_t* first_line = in + stride * std::size_t(axis.first[o] - in_row_offset);
    std::uint8_t* dst = out + stride * o;
    std::size_t i = 0;
    for (; i + span <= stride; i += span)
      sum_span(first_line + i, dst + i, k, axis.count[o], std::integral_constant<std::size_t, span>{});
    if (i < stride) sum_span(first_line + i, dst + i, k, axis.count[o], stride - i);
  }
}

// Rows per parallel task so that each task does at least ~64k multiply-adds.
inline std::int64_t resample_grain(std::size_t values_per_row, int taps) {
  const std::size_t work = std::max<std::size_t>(1, values_per_row * std::size_t(std::max(taps, 1)));
  return static_cast<std::int64_t>(std::max<std::size_t>(1, (std::size_t(1) << 16) / work));
}

}  // namespace detail

// Resizes to width x height as Pillow's image.resize((width, height), filter) does, bit for bit.
inline Image resize(const Image& image, int width, int height, ResizeFilter filter = ResizeFilter::bicubic,
                    const ImageLimits& limits = {}) {
  using namespace detail;
  FIBER_CHECK(!image.empty(), "resize: the input image is empty (", image.width, "x", image.height, ")");
  FIBER_CHECK(image.pixels.size() == image.row_bytes() * std::size_t(image.height),
              "resize: the input pixel buffer holds ", image.pixels.size(), " bytes, expected ",
              image.row_bytes() * std::size_t(image.height), " for ", image.width, "x", image.height, " RGB");
  FIBER_CHECK(width >= 1 && height >= 1, "resize: output size ", width, "x", height,
              " is empty; expected width and height >= 1");
  check_image_size(std::uint64_t(width), std::uint64_t(height), limits, "resize: output");
  const bool horizontal = width != image.width;
  const bool vertical = height != image.height;
  if (!horizontal && !vertical) return image;

  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many
  // pixels as the width does (older Pillow always went horizontal first). The 8-bit rounding
  // between the passes makes the order visible in the result, so we follow the same rule.
  const std::int64_t height_drop = std::int64_t(image.height) - height;
  const std::int64_t width_drop = std::int64_t(image.width) - width;
  const bool horizontal_first = !(height_drop > 0 && height_drop > width_drop * 2);

  const ResampleAxis rows = resample_axis(image.height, height, filter);
  auto vertical_pass = [&](const Image& in, int in_row_offset) {
    Image out(in.width, height);
    parallel_for(0, height, resample_grain(out.row_bytes(), rows.taps), [&](std::int64_t b, std::int64_t e) {
      resample_vertical_rows(in.pixels.data(), in.row_bytes(), in_row_offset, out.pixels.data(), b, e, rows);
    });
    return out;
  };
  // Resamples rows [first_row, last_row) of `in` along x.
  auto horizontal_pass = [&](const Image& in, int first_row, int last_row) {
    const ResampleAxis columns = resample_axis(image.width, width, filter);
    Image out(width, last_row - first_row);
    const std::uint8_t* src = in.row(first_row);
    parallel_for(0, out.height, resample_grain(out.row_bytes(), columns.taps), [&](std::int64_t b, std::int64_t e) {
      resample_horizontal_rows(src, in.row_bytes(), in.width, out.pixels.data(), out.row_bytes(), b, e, columns);
    });
    return out;
  };

  if (!horizontal_first) {
    Image shorter = vertical_pass(image, 0);
    return horizontal ? horizontal_pass(shorter, 0, shorter.height) : shorter;
  }
  if (!vertical) return horizontal_pass(image, 0, image.height);
  // The vertical pass reads input rows [first_row, last_row) only: resample just those along x.
  const int first_row = rows.first.front();
  const int last_row = rows.first.back() + rows.count.back();
  if (!horizontal) return vertical_pass(image, 0);
  return vertical_pass(horizontal_pass(image, first_row, last_row), first_row);
}

// Mirrors the image left to right (the horizontal flip of the training augmentation).
inline Image flip_horizontal(const Image& image) {
  Image out(image.width, image.height);
  for (int y = 0; y < image.height; ++y) {
    const std::uint8_t* src = image.row(y);
    std::uint8_t* dst = out.row(y);
    for (int x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c) dst[3 * x + c] = src[3 * (image.width - 1 - x) + c];
  }
  return out;
}

}  // namespace fiber::io
