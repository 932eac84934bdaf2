// layer_norm's backward over many rows at Swin shapes against PyTorch (float64 reference,
// tests/reference/make_layer_norm_rows.py). The kernel sums dweight and dbias over chunks of rows
// (16384 / n rows each) and adds the chunks' partial sums: a chunk dropped, doubled or cut short
// changes dweight and dbias by a whole chunk's contribution, far beyond the tolerances here. The
// shapes give 18 chunks of 32 rows ([576, 512]), 36 of 128 ([4608, 128]) and 7 of 128 plus one
// of 104 ([1000, 128]).
#include "nn_test_util.hpp"

#include <vector>

using fiber::Shape;
using fiber::Tensor;
using fiber::Var;
using fiber::test::check_parity;

namespace {
// The inputs, exact in float32; the same formulas as the fixture script's.
template <class T>
void make_inputs(std::int64_t rows, std::int64_t n, Tensor<T>& x, Tensor<T>& g, Tensor<T>& w, Tensor<T>& b) {
  x = Tensor<T>::empty({rows, n});
  g = Tensor<T>::empty({rows, n});
  w = Tensor<T>::empty({n});
  b = Tensor<T>::empty({n});
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < n; ++j) {
      x.data()[r * n + j] = T(double((37 * r + 101 * j + (r * j) % 13) % 211 - 105) / 32.0 + double(r % 7) / 4.0);
      g.data()[r * n + j] = T(double((53 * r + 29 * j + (r + j) % 11) % 97 - 48) / 64.0);
    }
  for (std::int64_t j = 0; j < n; ++j) {
    w.data()[j] = T(1 + double((7 * j) % 17 - 8) / 16.0);
    b.data()[j] = T(double((3 * j) % 11 - 5) / 8.0);
  }
}

// rtol/atol for the parameter gradients (sums over all rows) and for dx.
template <class T>
void check_rows(std::int64_t rows, std::int64_t n, double param_tol, double dx_tol) {
  Tensor<T> xt, gt, wt, bt;
  make_inputs(rows, n, xt, gt, wt, bt);
  Var<T> x = Var<T>::parameter(xt), w = Var<T>::parameter(wt), b = Var<T>::parameter(bt);
  fiber::layer_norm(x, Shape{n}, w, b, 1e-5).backward(gt);
  const std::string tag = "nn_ops/ln_rows_" + std::to_string(rows) + "x" + std::to_string(n);
  const std::string what = std::to_string(rows) + "x" + std::to_string(n) + (sizeof(T) == 4 ? " f32" : " f64");
  check_parity((what + " dweight").c_str(), w.grad(), fiber::test::load_npy<double>(tag + "_gw.npy"), param_tol, param_tol);
  check_parity((what + " dbias").c_str(), b.grad(), fiber::test::load_npy<double>(tag + "_gb.npy"), param_tol, param_tol);
  std::vector<std::int64_t> sample;
  for (std::int64_t r = 0; r < rows; ++r)
    if (r % 37 == 0 || r == rows - 1) sample.push_back(r);
  const Tensor<std::int64_t> idx = Tensor<std::int64_t>::from_data({std::int64_t(sample.size())}, sample);
  check_parity((what + " dx").c_str(), fiber::index_select(x.grad(), 0, idx),
               fiber::test::load_npy<double>(tag + "_gx.npy"), dx_tol, dx_tol);
}
}  // namespace

TEST_CASE("layer_norm backward over many rows at Swin shapes: dweight, dbias and dx against PyTorch") {
  // float64: the chunked sums agree with PyTorch's to rounding.
  check_rows<double>(576, 512, 1e-11, 1e-11);
  check_rows<double>(4608, 128, 1e-11, 1e-11);
  check_rows<double>(1000, 128, 1e-11, 1e-11);
  // float32 (Swin's training type), against the float64 reference.
  check_rows<float>(576, 512, 1e-4, 1e-6);
  check_rows<float>(4608, 128, 1e-4, 1e-6);
  check_rows<float>(1000, 128, 1e-4, 1e-6);
}
