#pragma once
// pad: constant padding as torch.nn.functional.pad(x, pads, mode="constant", value).
//   Tensor<float> y = pad(x, {0, 1, 0, 2});   // x: [B, H, W, C]: C += 0+1, W += 0+2 (last dim first)
// `pads` holds (before, after) pairs, the first pair for the last axis, the next for the one before,
// at most one pair per axis. A negative amount crops, as in PyTorch; every output size must stay
// >= 0. Swin pads its feature map to a multiple of the window this way.
//
// Forward: the output is filled with `value`, then the kept part of x is copied into it (a strided
// copy, memcpy per contiguous run, split over the pool). Backward: the kept part of the gradient
// (a narrow) scattered into zeros of x's shape.
#include <cstdint>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber {

namespace detail {
// Where x's kept elements lie: per axis, the start in x and in the output and the length.
struct PadPlan {
  Shape out_shape, src_start, dst_start, length;
};

inline PadPlan plan_pad(const Shape& in, std::span<const std::int64_t> pads) {
  FIBER_CHECK(pads.size() % 2 == 0, "pad: pads must come in (before, after) pairs, got ", pads.size(), " values");
  FIBER_CHECK(static_cast<int>(pads.size() / 2) <= in.rank(), "pad: ", pads.size() / 2, " (before, after) pairs for a tensor ",
              "of shape ", in, " (at most one pair per dimension)");
  PadPlan p{in, Shape::filled(in.rank(), 0), Shape::filled(in.rank(), 0), in};
  for (std::size_t k = 0; k < pads.size() / 2; ++k) {
    const int d = in.rank() - 1 - static_cast<int>(k);
    const std::int64_t lo = pads[2 * k], hi = pads[2 * k + 1], n = in[d];
    const std::int64_t m = n + lo + hi;
    FIBER_CHECK(m >= 0, "pad: padding (", lo, ", ", hi, ") of dimension ", d, " (size ", n, ") of shape ", in,
                " gives a negative size ", m);
    p.out_shape[d] = m;
    p.src_start[d] = lo < 0 ? -lo : 0;
    p.dst_start[d] = lo > 0 ? lo : 0;
    p.length[d] = std::max<std::int64_t>(0, std::min(n - p.src_start[d], m - p.dst_start[d]));
  }
  return p;
}

// The view of t (of shape out or in) that covers [start, start + length) per axis.
template <class T>
Tensor<T> pad_region(Tensor<T> t, const Shape& start, const Shape& length) {
  for (int d = 0; d < t.dim(); ++d) t = t.narrow(d, start[d], length[d]);
  return t;
}
}  // namespace detail

template <class T>
Tensor<T> pad(const Tensor<T>& x, std::span<const std::int64_t> pads, std::type_identity_t<T> value = T(0)) {
  FIBER_CHECK(x.defined(), "pad: undefined input");
  const detail::PadPlan p = detail::plan_pad(x.shape(), pads);
  Tensor<T> out = Tensor<T>::full(p.out_shape, value);
  if (p.length.numel() > 0)
    detail::pad_region(out, p.dst_start, p.length).copy_(detail::pad_region(x, p.src_start, p.length));
  return out;
}
template <class T>
Tensor<T> pad(const Tensor<T>& x, std::initializer_list<std::int64_t> pads, std::type_identity_t<T> value = T(0)) {
  return pad(x, std::span<const std::int64_t>(pads.begin(), pads.size()), value);
}

template <class T>
Var<T> pad(const Var<T>& x, std::span<const std::int64_t> pads, std::type_identity_t<T> value = T(0)) {
  Tensor<T> out = pad(x.value(), pads, value);
  if (!needs_graph(x)) return Var<T>(std::move(out));
  return record("pad", out, {&x}, [p = detail::plan_pad(x.shape(), pads), in = x.shape()](const Tensor<T>& g, GradNeeds) {
    Tensor<T> gx = Tensor<T>::zeros(in);
    if (p.length.numel() > 0)
      detail::pad_region(gx, p.src_start, p.length).copy_(detail::pad_region(g, p.dst_start, p.length));
    return std::vector<Tensor<T>>{gx};
  });
}
template <class T>
Var<T> pad(const Var<T>& x, std::initializer_list<std::int64_t> pads, std::type_identity_t<T> value = T(0)) {
  return pad(x, std::span<const std::int64_t>(pads.begin(), pads.size()), value);
}

}  // namespace fiber
