#pragma once
// A preprocessed image as the model's input tensor: FloatImage (planar, [C, H, W]) to a
// Tensor<float> of shape [C, H, W]; stack several along a new first axis for a batch.
#include "fiber/core/tensor.hpp"
#include "fiber/io/image.hpp"

namespace fiber::io {

inline Tensor<float> to_tensor(const FloatImage& image) {
  return Tensor<float>::from_data({image.channels, image.height, image.width}, image.data);  // checks the size
}

}  // namespace fiber::io
