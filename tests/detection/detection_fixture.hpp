#pragma once
// The detection fixtures (tests/data/detection/*.npy, written by tests/reference/make_detection.py).
#include <string>

#include "npy.hpp"

namespace fiber::test {
template <class T = float>
Tensor<T> detection_fixture(const std::string& name) { return load_npy<T>("detection/" + name + ".npy"); }
}  // namespace fiber::test
