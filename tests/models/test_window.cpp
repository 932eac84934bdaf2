// Swin window geometry against values worked out by hand from the official definitions.
#include <doctest/doctest.h>

#include "fiber/models/window.hpp"

using namespace fiber;

TEST_CASE("relative_position_index: window 2") {
  // Tokens (0,0) (0,1) (1,0) (1,1); row = (dh + 1) * 3 + (dw + 1) with dh, dw = pos_i - pos_j.
  const Tensor<std::int64_t> idx = models::relative_position_index(2);
  const std::int64_t expected[16] = {4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4};
  REQUIRE(idx.numel() == 16);
  for (int i = 0; i < 16; ++i) CHECK(idx.data()[i] == expected[i]);
}

TEST_CASE("shifted_window_mask: 4x4 map, window 2, shift 1") {
  const Tensor<float> m = models::shifted_window_mask<float>(4, 4, 2, 1);
  REQUIRE(m.shape() == Shape{4, 4, 4});
  // Window 0 (rows 0-1, cols 0-1) lies in one region: all zeros.
  for (int i = 0; i < 16; ++i) CHECK(m.data()[i] == 0.f);
  // Window 3 (rows 2-3, cols 2-3): row bands {1, 2}, column bands {1, 2}: four regions, so
  // only the diagonal is unmasked.
  const float* w3 = m.data() + 3 * 16;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) CHECK(w3[i * 4 + j] == (i == j ? 0.f : -100.f));
  // Window 1 (rows 0-1, cols 2-3): one row band, column bands {1, 2}: tokens 0,2 vs 1,3.
  const float* w1 = m.data() + 16;
  CHECK(w1[0 * 4 + 2] == 0.f);
  CHECK(w1[0 * 4 + 1] == -100.f);
}

TEST_CASE("ShiftMaskCache: one mask per size, shared by copies, the oldest dropped past its capacity") {
  models::ShiftMaskCache<float> cache(2);
  const models::ShiftMaskCache<float> copy = cache;
  const Tensor<float> a = cache.get(4, 4, 2, 1);
  CHECK(a.to_vector() == models::shifted_window_mask<float>(4, 4, 2, 1).to_vector());
  CHECK(copy.get(4, 4, 2, 1).data() == a.data());  // the same tensor, not rebuilt
  const Tensor<float> b = cache.get(4, 6, 2, 1);
  CHECK(b.shape() == Shape{6, 4, 4});
  CHECK(b.to_vector() == models::shifted_window_mask<float>(4, 6, 2, 1).to_vector());
  CHECK(cache.size() == 2);
  cache.get(6, 6, 2, 1);  // a third size: (4, 4) goes
  CHECK(cache.size() == 2);
  CHECK(cache.get(4, 6, 2, 1).data() == b.data());
  CHECK(cache.get(4, 4, 2, 1).data() != a.data());  // built again
}

TEST_CASE("window_partition and window_reverse are inverse and keep windows contiguous") {
  Tensor<float> x = Tensor<float>::arange(0.f, 2 * 4 * 4 * 3.f).reshape({2, 4, 4, 3});
  const Var<float> w = models::window_partition(Var<float>(x), 2);
  REQUIRE(w.shape() == Shape{8, 4, 3});
  // Window 1 of image 0 holds (row 0, col 2), (0, 3), (1, 2), (1, 3).
  CHECK(w.value().contiguous().data()[1 * 12 + 0] == x.data()[(0 * 4 + 2) * 3]);
  CHECK(w.value().contiguous().data()[1 * 12 + 2 * 3] == x.data()[(1 * 4 + 2) * 3]);
  const Var<float> back = models::window_reverse(w, 2, 4, 4);
  const Tensor<float> b = back.value().contiguous();
  for (std::int64_t i = 0; i < x.numel(); ++i) CHECK(b.data()[i] == x.data()[i]);
}
