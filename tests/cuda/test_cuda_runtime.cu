// GPU tests: built when nvcc is found; run where a GPU is. Without one they report themselves
// skipped (exit code 77, ctest's SKIP_RETURN_CODE) with the reason.
#include <cstdio>

#include "fiber/backend/cuda/runtime.cuh"

int main() {
  const int devices = fiber::cuda::device_count();
  if (devices == 0) {
    std::printf("skipped: no CUDA device (cudaGetDeviceCount found none)\n");
    return 77;
  }
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += !ok;
  };
  auto x = fiber::Tensor<float>::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  auto y = fiber::Tensor<float>::from_data({2, 3}, {6, 5, 4, 3, 2, 1});
  auto dx = fiber::cuda::to_device(x), dy = fiber::cuda::to_device(y);
  expect(dx.device() == fiber::Device::cuda(0), "to_device puts the tensor on cuda:0");
  auto back = fiber::cuda::to_host(fiber::cuda::axpby(2.0f, dx, -1.0f, dy));
  expect(back.to_vector() == std::vector<float>{-4, -1, 2, 5, 8, 11}, "axpby computes 2x - y on the GPU");
  try {
    fiber::cuda::axpby(1.0f, dx, 1.0f, fiber::cuda::to_device(fiber::Tensor<float>::zeros({3})));
    expect(false, "mismatched shapes throw");
  } catch (const fiber::Error& e) {
    expect(std::string(e.what()).find("shapes [2, 3] and [3] differ") != std::string::npos, "mismatched shapes throw");
  }
  std::printf("%d passed, %d failed\n", 3 - failures, failures);
  return failures ? 1 : 0;
}
