#pragma once
// The CUDA side of fiber: compiled only by nvcc (a CPU-only build never includes this file).
// Errors from the CUDA runtime become fiber::Error naming the call; device memory is a Storage
// on Device::cuda, so tensors keep their shape, strides and views on the GPU too.
#ifndef __CUDACC__
#error "fiber/backend/cuda/*.cuh is compiled by nvcc only"
#endif
#include <cuda_runtime.h>

#include <memory>

#include "fiber/core/error.hpp"
#include "fiber/core/storage.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber::cuda {

inline void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) fail("CUDA: ", call, " failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
}
#define FIBER_CUDA_CHECK(call) ::fiber::cuda::check((call), #call)

// Number of CUDA devices; 0 (not an error) when there is no usable GPU or driver.
inline int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

// `bytes` of memory on GPU `device`, freed when the last tensor using it goes.
inline std::shared_ptr<Storage> allocate(std::size_t bytes, int device = 0) {
  FIBER_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  FIBER_CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
  std::shared_ptr<void> owner(p, [](void* q) { cudaFree(q); });
  return Storage::borrow(p, bytes, std::move(owner), Device::cuda(device));
}

// A contiguous copy of a CPU tensor on GPU `device`.
template <class T>
Tensor<T> to_device(const Tensor<T>& host, int device = 0) {
  FIBER_CHECK(host.device().is_cpu(), "to_device: tensor is already on ", host.device());
  const Tensor<T> c = host.contiguous();
  const std::size_t bytes = static_cast<std::size_t>(c.numel()) * sizeof(T);
  auto storage = allocate(bytes, device);
  FIBER_CUDA_CHECK(cudaMemcpy(storage->data(), c.data(), bytes, cudaMemcpyHostToDevice));
  return Tensor<T>::view_of(std::move(storage), 0, c.shape(), contiguous_strides(c.shape()));
}

// A CPU copy of a contiguous GPU tensor.
template <class T>
Tensor<T> to_host(const Tensor<T>& dev) {
  FIBER_CHECK(!dev.device().is_cpu(), "to_host: tensor is already on the CPU");
  FIBER_CHECK(dev.is_contiguous(), "to_host: GPU tensor of shape ", dev.shape(), " is not contiguous");
  Tensor<T> out = Tensor<T>::empty(dev.shape());
  FIBER_CUDA_CHECK(cudaMemcpy(out.data(), dev.data(), static_cast<std::size_t>(dev.numel()) * sizeof(T),
                              cudaMemcpyDeviceToHost));
  return out;
}

namespace kernels {
template <class T>
__global__ void axpby(std::int64_t n, T alpha, const T* x, T beta, const T* y, T* out) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = alpha * x[i] + beta * y[i];
}
}  // namespace kernels

// out = alpha * x + beta * y on the GPU, for contiguous tensors of one shape on one device.
template <class T>
Tensor<T> axpby(T alpha, const Tensor<T>& x, T beta, const Tensor<T>& y) {
  FIBER_CHECK(x.shape() == y.shape(), "cuda::axpby: shapes ", x.shape(), " and ", y.shape(), " differ");
  FIBER_CHECK(x.device() == y.device() && !x.device().is_cpu(), "cuda::axpby: operands on ", x.device(), " and ",
              y.device());
  FIBER_CHECK(x.is_contiguous() && y.is_contiguous(), "cuda::axpby: operands must be contiguous");
  const std::int64_t n = x.numel();
  auto storage = allocate(static_cast<std::size_t>(n) * sizeof(T), x.device().index);
  Tensor<T> out = Tensor<T>::view_of(std::move(storage), 0, x.shape(), contiguous_strides(x.shape()));
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<std::int64_t>((n + threads - 1) / threads, 65535));
  if (n > 0) kernels::axpby<<<blocks, threads>>>(n, alpha, x.data(), beta, y.data(), out.data());
  FIBER_CUDA_CHECK(cudaGetLastError());
  FIBER_CUDA_CHECK(cudaDeviceSynchronize());
  return out;
}

}  // namespace fiber::cuda
