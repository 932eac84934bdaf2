#pragma once
// Swin window geometry as free functions: window partition and its inverse, the relative
// position index of a window, and the shifted-window attention mask. Each is tested on its own.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/storage_pool.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber::models {

// x: [B, H, W, C] -> [B * nW, ws * ws, C], windows in row-major order per image (the official
// window_partition followed by the view to tokens).
template <class T>
Var<T> window_partition(const Var<T>& x, std::int64_t ws) {
  const std::int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  FIBER_CHECK(H % ws == 0 && W % ws == 0, "window_partition: map ", H, "x", W, " is not a multiple of the window ", ws);
  return x.reshape({B, H / ws, ws, W / ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B * (H / ws) * (W / ws), ws * ws, C});
}

// windows: [B * nW, ws * ws, C] -> [B, H, W, C]
template <class T>
Var<T> window_reverse(const Var<T>& windows, std::int64_t ws, std::int64_t H, std::int64_t W) {
  const std::int64_t C = windows.size(2), nW = (H / ws) * (W / ws);
  FIBER_CHECK(windows.size(0) % nW == 0, "window_reverse: ", windows.size(0), " windows for a ", H, "x", W, " map");
  const std::int64_t B = windows.size(0) / nW;
  return windows.reshape({B, H / ws, W / ws, ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B, H, W, C});
}

// For each pair (i, j) of tokens of a ws x ws window, the row of the (2ws-1)^2 bias table that
// holds their relative position: [ws*ws * ws*ws], row-major over (i, j).
inline Tensor<std::int64_t> relative_position_index(std::int64_t ws) {
  const std::int64_t N = ws * ws;
  Tensor<std::int64_t> index = Tensor<std::int64_t>::empty({N * N});
  std::int64_t* out = index.data();
  for (std::int64_t i = 0; i < N; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      const std::int64_t dh = i / ws - j / ws + ws - 1, dw = i % ws - j % ws + ws - 1;
      out[i * N + j] = dh * (2 * ws - 1) + dw;
    }
  return index;
}

// The attention mask of shifted windows on an H x W map: [nW, N, N], 0 where two tokens of a
// window came from the same region of the un-shifted map, -100 where they did not.
template <class T>
Tensor<T> shifted_window_mask(std::int64_t H, std::int64_t W, std::int64_t ws, std::int64_t shift) {
  // Region label of each position: three bands per axis ([0, H-ws), [H-ws, H-shift), [H-shift, H)).
  auto band = [&](std::int64_t p, std::int64_t size) { return p < size - ws ? 0 : (p < size - shift ? 1 : 2); };
  const std::int64_t nh = H / ws, nw = W / ws, N = ws * ws;
  Tensor<T> mask = Tensor<T>::empty({nh * nw, N, N});
  T* m = mask.data();
  std::vector<int> label(static_cast<std::size_t>(N));
  for (std::int64_t wh = 0; wh < nh; ++wh)
    for (std::int64_t ww = 0; ww < nw; ++ww) {
      for (std::int64_t t = 0; t < N; ++t)
        label[t] = band(wh * ws + t / ws, H) * 3 + band(ww * ws + t % ws, W);
      T* win = m + (wh * nw + ww) * N * N;
      for (std::int64_t i = 0; i < N; ++i)
        for (std::int64_t j = 0; j < N; ++j) win[i * N + j] = label[i] == label[j] ? T(0) : T(-100);
    }
  return mask;
}

// shifted_window_mask by (H, W, ws, shift), built once per map size: a model that sees frames of
// one size builds its masks on the first frame only (stage 1 of FIBER-B at 1088x800 has a 32 MB
// mask). Copies share the cache; thread-safe; at most `capacity` sizes are kept (the oldest
// entries are dropped first). Callers must not write into the returned masks.
template <class T>
class ShiftMaskCache {
 public:
  explicit ShiftMaskCache(std::size_t capacity = 16) : state_(std::make_shared<State>()) { state_->capacity = capacity; }

  Tensor<T> get(std::int64_t H, std::int64_t W, std::int64_t ws, std::int64_t shift) const {
    const Key key{H, W, ws, shift};
    std::lock_guard lock(state_->mutex);
    auto it = state_->masks.find(key);
    if (it != state_->masks.end()) return it->second;
    if (state_->masks.size() >= state_->capacity && !state_->order.empty()) {
      state_->masks.erase(state_->order.front());
      state_->order.erase(state_->order.begin());
    }
    UnpooledScope unpooled;  // kept across frames: not from a frame's StoragePool
    Tensor<T> mask = shifted_window_mask<T>(H, W, ws, shift);
    state_->masks.emplace(key, mask);
    state_->order.push_back(key);
    return mask;
  }
  std::size_t size() const {
    std::lock_guard lock(state_->mutex);
    return state_->masks.size();
  }

 private:
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>;
  struct State {
    std::mutex mutex;
    std::map<Key, Tensor<T>> masks;
    std::vector<Key> order;  // insertion order
    std::size_t capacity = 16;
  };
  std::shared_ptr<State> state_;
};

}  // namespace fiber::models
