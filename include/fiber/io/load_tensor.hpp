#pragma once
// From the input layer's records to tensors: a checkpoint's tensor as a fiber::Tensor<T> of its
// shape, its elements copied in row-major order (views, offsets and strides of the file resolved)
// and converted to T. The copy lands in fresh, aligned, writable storage: a mapped file is
// read-only, so a tensor never aliases it.
#include <cstdint>
#include <span>
#include <string_view>

#include "fiber/core/error.hpp"
#include "fiber/core/shape.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/io/tensor_record.hpp"

namespace fiber::io {

template <class T>
Tensor<T> to_tensor(const TensorRecord& record) {
  FIBER_CHECK(record.rank() <= std::size_t(kMaxDims), record.source, ": tensor '", record.name, "' has ",
              record.rank(), " dimensions; fiber tensors have at most ", kMaxDims);
  Tensor<T> out = Tensor<T>::empty(Shape(record.shape.begin(), record.shape.end()));
  record.copy_to(std::span<T>(out.data(), static_cast<std::size_t>(out.numel())));  // validates the view
  return out;
}

// The tensor `name` of an open checkpoint (only its own bytes are read).
template <class T>
Tensor<T> load_tensor(const Checkpoint& checkpoint, std::string_view name) {
  return to_tensor<T>(checkpoint.record(name));
}

}  // namespace fiber::io
