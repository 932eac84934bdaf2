#pragma once
// The float preprocessing of FIBER's two stages, as the official pipelines compute it in float32:
//  coarse (fiber/transforms/transform.py albef_transform):
//     Resize((s, s), BICUBIC) -> ToTensor (v / 255) -> Normalize(mean, std), RGB order
//  fine-grained (maskrcnn_benchmark data/transforms: Resize(min_size, max_size), ToTensor,
//     Normalize(format "bgr255"), then to_image_list(size_divisible = 32)):
//     shorter side to N unless the longer side would pass max_size, BILINEAR resize ->
//     v / 255 -> BGR order -> * 255 -> Normalize(mean, std) -> zero padding (bottom/right) of
//     height and width to multiples of 32.
// Normalisation is a 256-entry table per channel computed with the same float operations in the
// same order as torch, so the values are the same floats, not just close ones.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "fiber/core/error.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/io/image.hpp"
#include "fiber/io/resize.hpp"

namespace fiber::io {

enum class ChannelOrder { rgb, bgr };

// How uint8 values become model inputs: x = v / 255 (times 255 again if scale_to_255), then
// (x - mean[c]) / std[c]; mean and std are given in output channel order.
struct Normalization {
  ChannelOrder order = ChannelOrder::rgb;
  bool scale_to_255 = false;
  std::array<float, 3> mean{};
  std::array<float, 3> std{};
};

// torch.as_tensor(list_of_python_floats, dtype=float32) rounds the double to float: so do we.
inline Normalization coarse_normalization() {
  return {ChannelOrder::rgb, false,
          {static_cast<float>(0.485), static_cast<float>(0.456), static_cast<float>(0.406)},
          {static_cast<float>(0.229), static_cast<float>(0.224), static_cast<float>(0.225)}};
}

inline Normalization fine_grained_normalization() {
  return {ChannelOrder::bgr, true,
          {static_cast<float>(103.53), static_cast<float>(116.28), static_cast<float>(123.675)},
          {static_cast<float>(57.375), static_cast<float>(57.12), static_cast<float>(58.395)}};
}

namespace detail {

// table[c][v]: the normalised value of uint8 v in output channel c. Contraction is off: torch
// rounds v / 255 * 255 and the subtraction separately.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
inline std::array<std::array<float, 256>, 3> normalization_table(const Normalization& n) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  std::array<std::array<float, 256>, 3> table{};
  for (int c = 0; c < 3; ++c) {
    FIBER_CHECK(n.std[c] != 0.0f, "normalize: std[", c, "] is 0");
    for (int v = 0; v < 256; ++v) {
      float x = static_cast<float>(v) / 255.0f;
      if (n.scale_to_255) x = x * 255.0f;
      table[c][v] = (x - n.mean[c]) / n.std[c];
    }
  }
  return table;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

// Python's round(): halves go to the even neighbour.
inline long long round_half_even(double v) {
  const double lower = std::floor(v);
  const double fraction = v - lower;
  long long r = static_cast<long long>(lower);
  if (fraction > 0.5 || (fraction == 0.5 && (r % 2 != 0))) ++r;
  return r;
}

}  // namespace detail

// The image as a [3, padded_height, padded_width] float image (padding is 0 after normalisation,
// at the bottom and right); padded sizes of 0 mean the image's own size.
inline FloatImage normalize_image(const Image& image, const Normalization& n, int padded_width = 0,
                                  int padded_height = 0) {
  FIBER_CHECK(image.pixels.size() == image.row_bytes() * std::size_t(image.height),
              "normalize: the pixel buffer holds ", image.pixels.size(), " bytes, expected ",
              image.row_bytes() * std::size_t(image.height), " for ", image.width, "x", image.height, " RGB");
  if (padded_width == 0) padded_width = image.width;
  if (padded_height == 0) padded_height = image.height;
  FIBER_CHECK(padded_width >= image.width && padded_height >= image.height, "normalize: padded size ",
              padded_width, "x", padded_height, " is smaller than the image ", image.width, "x", image.height);
  const auto table = detail::normalization_table(n);
  FloatImage out(3, padded_height, padded_width);
  parallel_for(0, image.height, std::max(1, 16384 / std::max(1, image.width)), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t y = b; y < e; ++y) {
      const std::uint8_t* src = image.row(int(y));
      for (int c = 0; c < 3; ++c) {
        const int source_channel = n.order == ChannelOrder::rgb ? c : 2 - c;
        const std::array<float, 256>& lut = table[c];
        float* dst = &out.at(c, int(y), 0);
        for (int x = 0; x < image.width; ++x) dst[x] = lut[src[3 * x + source_channel]];
      }
    }
  });
  return out;
}

// Coarse model input: bicubic resize to size x size, RGB, ImageNet mean/std. [3, size, size]
inline FloatImage preprocess_coarse(const Image& image, int size = 384) {
  FIBER_CHECK(size >= 1, "preprocess_coarse: size ", size, " must be >= 1");
  return normalize_image(resize(image, size, size, ResizeFilter::bicubic), coarse_normalization());
}

struct ResizeSize {
  int width = 0;
  int height = 0;
};

// The official fine-grained rule (maskrcnn_benchmark Resize.get_size): the shorter side becomes
// `shorter`, unless the longer side would then exceed max_size, in which case the shorter side
// becomes round(max_size * short / long) (Python round); the longer side is int(s * long / short).
// max_size <= 0 means no limit. An image whose shorter side already equals the target is kept.
inline ResizeSize fine_grained_resize_size(int width, int height, int shorter, int max_size = 1333) {
  FIBER_CHECK(width >= 1 && height >= 1, "fine-grained resize: image size ", width, "x", height,
              " is empty");
  FIBER_CHECK(shorter >= 1, "fine-grained resize: shorter side ", shorter, " must be >= 1");
  long long size = shorter;
  if (max_size > 0) {
    const double min_original = std::min(width, height);
    const double max_original = std::max(width, height);
    if (max_original / min_original * static_cast<double>(size) > max_size)
      size = detail::round_half_even(max_size * min_original / max_original);
  }
  if ((width <= height && width == size) || (height <= width && height == size)) return {width, height};
  long long out_w, out_h;
  if (width < height) {
    out_w = size;
    out_h = static_cast<long long>(static_cast<double>(size * height) / width);
  } else {
    out_h = size;
    out_w = static_cast<long long>(static_cast<double>(size * width) / height);
  }
  FIBER_CHECK(out_w >= 1 && out_h >= 1 && out_w <= INT32_MAX && out_h <= INT32_MAX,
              "fine-grained resize: image ", width, "x", height, " with shorter side ", shorter,
              " and max size ", max_size, " gives the unusable size ", out_w, "x", out_h);
  return {static_cast<int>(out_w), static_cast<int>(out_h)};
}

// Fine-grained model input and the sizes needed to map boxes back to the original image.
struct FineGrainedInput {
  FloatImage image;         // [3, padded_height, padded_width], BGR, zero padded
  int resized_width = 0;    // the image's size inside the padding
  int resized_height = 0;
  int original_width = 0;
  int original_height = 0;
};

inline FineGrainedInput preprocess_fine_grained(const Image& image, int shorter = 800, int max_size = 1333,
                                                int size_divisible = 32) {
  FIBER_CHECK(size_divisible >= 1, "preprocess_fine_grained: size_divisible ", size_divisible, " must be >= 1");
  const ResizeSize size = fine_grained_resize_size(image.width, image.height, shorter, max_size);
  const Image resized = resize(image, size.width, size.height, ResizeFilter::bilinear);
  auto round_up = [&](int v) { return int((static_cast<long long>(v) + size_divisible - 1) / size_divisible * size_divisible); };
  FineGrainedInput out;
  out.image = normalize_image(resized, fine_grained_normalization(), round_up(size.width), round_up(size.height));
  out.resized_width = size.width;
  out.resized_height = size.height;
  out.original_width = image.width;
  out.original_height = image.height;
  return out;
}

}  // namespace fiber::io
