#pragma once
// The tiny coarse model loaded from the official-code fixtures (tests/data/coarse, written by
// tests/reference/make_coarse.py), and helpers to read the reference tensors.
#include <string>

#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/fiber_coarse.hpp"

namespace fiber::test {

using TinyCoarse = models::FiberCoarse<float, models::FiberTinyCoarse>;

inline std::string coarse_fixture(const std::string& name) { return std::string(FIBER_TEST_DATA_DIR) + "/coarse/" + name; }

inline const io::Checkpoint& coarse_outputs() {
  static const io::Checkpoint c = io::open_checkpoint(coarse_fixture("tiny_outputs.safetensors"));
  return c;
}
inline const io::Checkpoint& coarse_outputs_f64() {
  static const io::Checkpoint c = io::open_checkpoint(coarse_fixture("tiny_outputs_f64.safetensors"));
  return c;
}
inline const io::Checkpoint& coarse_inputs() {
  static const io::Checkpoint c = io::open_checkpoint(coarse_fixture("tiny_inputs.safetensors"));
  return c;
}

// The tiny model with the weights of the official Lightning checkpoint (loaded strictly).
inline TinyCoarse& tiny_coarse() {
  static TinyCoarse* m = [] {
    auto* model = new TinyCoarse;
    nn::load_state_dict<float>(*model, io::open_checkpoint(coarse_fixture("tiny_coarse.ckpt")), TinyCoarse::load_options());
    return model;
  }();
  return *m;
}

// max |a - b| / (atol + rtol * max |b|) over the tensors: <= 1 passes.
inline double scaled_error(const Tensor<float>& a, const Tensor<double>& b, double atol, double rtol) {
  const Tensor<float> ac = a.contiguous();
  const Tensor<double> bc = b.contiguous();
  double worst = 0, scale = 0;
  for (std::int64_t i = 0; i < bc.numel(); ++i) scale = std::max(scale, std::abs(bc.data()[i]));
  for (std::int64_t i = 0; i < bc.numel(); ++i) worst = std::max(worst, std::abs(double(ac.data()[i]) - bc.data()[i]));
  return worst / (atol + rtol * scale);
}

}  // namespace fiber::test
