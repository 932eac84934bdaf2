#pragma once
// Shared by the tests/fine parity tests: the tiny FPN + DyHead of tests/reference/make_dyhead.py,
// its fixture files (tests/data/fine) and the error measure they are held to.
#include <algorithm>
#include <cmath>
#include <string>

#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/dyhead.hpp"
#include "fiber/models/fpn.hpp"
#include "fiber/nn/state_dict.hpp"

namespace fiber::test {

inline constexpr models::FpnConfig kTinyFpn{{16, 24, 40}, 32};
inline constexpr models::DyHeadConfig kTinyHead{
    .channels = 32, .num_convs = 2, .gn_groups = 16, .lang_dim = 48, .num_classes = 5};

// The fixture's keys: fpn.* and head.* (the official FPN and VLDyHead state dicts).
template <class T>
struct TinyFine {
  models::Fpn<T, kTinyFpn> fpn;
  models::DyHead<T, kTinyHead> head;
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    fpn.visit(prefix + "fpn.", f);
    head.visit(prefix + "head.", f);
  }
};

inline std::string fine_fixture(const std::string& name) { return std::string(FIBER_TEST_DATA_DIR) + "/fine/" + name; }

inline const io::Checkpoint& fine_io() {
  static const io::Checkpoint c = io::open_checkpoint(fine_fixture("dyhead_io.safetensors"));
  return c;
}

// The tiny model with the fixture's weights (loaded strictly).
template <class T>
void load_tiny_fine(TinyFine<T>& m) {
  nn::load_state_dict<T>(m, io::open_checkpoint(fine_fixture("dyhead_weights.safetensors")));
}

// max |a − b| / max |b| over the tensor (shapes must agree).
template <class T>
double relative_error(const Tensor<T>& a, const Tensor<double>& b) {
  FIBER_CHECK(a.shape() == b.shape(), "relative_error: shapes ", a.shape(), " and ", b.shape());
  const auto av = a.contiguous().to_vector();
  const auto bv = b.contiguous().to_vector();
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < bv.size(); ++i) {
    scale = std::max(scale, std::abs(bv[i]));
    worst = std::max(worst, std::abs(double(av[i]) - bv[i]));
  }
  return worst / std::max(scale, 1e-30);
}

}  // namespace fiber::test
