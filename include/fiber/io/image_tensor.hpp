#pragma once
// A preprocessed image as the model's input tensor: FloatImage (planar, [C, H, W]) to a
// Tensor<float> of shape [C, H, W]; stack several along a new first axis for a batch.
#include <algorithm>
#include <cstddef>

#include "fiber/core/error.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/io/image.hpp"

namespace fiber::io {

inline Tensor<float> to_tensor(const FloatImage& image) {
  FIBER_CHECK(image.channels >= 0 && image.height >= 0 && image.width >= 0 &&
                  image.data.size() == std::size_t(image.channels) * std::size_t(image.height) * std::size_t(image.width),
              "to_tensor: FloatImage of ", image.channels, "x", image.height, "x", image.width, " holds ",
              image.data.size(), " values");
  Tensor<float> out = Tensor<float>::empty({image.channels, image.height, image.width});
  std::copy(image.data.begin(), image.data.end(), out.data());
  return out;
}

}  // namespace fiber::io
