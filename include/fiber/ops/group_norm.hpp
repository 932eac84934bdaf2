#pragma once
// group_norm, as torch.nn.functional.group_norm: x [N, C, *] split into `groups` groups of C/groups
// channels; each (image, group) is normalised over its channels and positions with the biased
// variance, then y = x̂ · weight[c] + bias[c] (both [C], optional).
// It is layer_norm over the rows of x viewed as [N, groups, C/groups · positions] (the same
// statistics, the same backward), followed by the per-channel affine, so the gradient comes from
// those two ops.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "fiber/autograd/var.hpp"
#include "fiber/ops/layer_norm.hpp"

namespace fiber {

namespace detail {
// The shape [C, 1, 1, ...] that broadcasts a per-channel parameter against x.
inline Shape channel_shape(const Shape& x) {
  std::vector<std::int64_t> s(std::size_t(x.rank() - 1), 1);
  s[0] = x[1];
  return Shape(s.begin(), s.end());
}

inline void check_group_norm(const Shape& x, std::int64_t groups, const Shape* weight, const Shape* bias) {
  FIBER_CHECK(x.rank() >= 2, "group_norm: expects an input [N, C, ...], got shape ", x);
  FIBER_CHECK(groups >= 1 && x[1] % groups == 0, "group_norm: ", x[1], " channels do not split into ", groups,
              " groups (input ", x, ")");
  for (auto [name, s] : {std::pair{"weight", weight}, std::pair{"bias", bias}})
    FIBER_CHECK(!s || *s == Shape({x[1]}), "group_norm: ", name, " must be [", x[1], "], got ", *s);
}
}  // namespace detail

template <class T>
Tensor<T> group_norm(const Tensor<T>& x, std::int64_t groups, const std::type_identity_t<Tensor<T>>& weight = {},
                     const std::type_identity_t<Tensor<T>>& bias = {}, double eps = 1e-5) {
  const Shape ws = weight.defined() ? weight.shape() : Shape{}, bs = bias.defined() ? bias.shape() : Shape{};
  detail::check_group_norm(x.shape(), groups, weight.defined() ? &ws : nullptr, bias.defined() ? &bs : nullptr);
  const std::int64_t N = x.size(0);
  Tensor<T> y = layer_norm(x.contiguous().reshape({N, groups, x.numel() / std::max<std::int64_t>(N * groups, 1)}), LastDims{1}, {}, {}, eps).reshape(x.shape());
  const Shape cs = detail::channel_shape(x.shape());
  if (weight.defined()) y = Tensor<T>(y * weight.reshape(cs));
  if (bias.defined()) y = Tensor<T>(y + bias.reshape(cs));
  return y;
}

template <class T>
Var<T> group_norm(const Var<T>& x, std::int64_t groups, const std::type_identity_t<Var<T>>& weight = {},
                  const std::type_identity_t<Var<T>>& bias = {}, double eps = 1e-5) {
  const Shape ws = weight.defined() ? weight.shape() : Shape{}, bs = bias.defined() ? bias.shape() : Shape{};
  detail::check_group_norm(x.shape(), groups, weight.defined() ? &ws : nullptr, bias.defined() ? &bs : nullptr);
  const std::int64_t N = x.size(0);
  Var<T> y = layer_norm(x.reshape({N, groups, x.numel() / std::max<std::int64_t>(N * groups, 1)}), LastDims{1}, {}, {}, eps).reshape(x.shape());
  const Shape cs = detail::channel_shape(x.shape());
  if (weight.defined() && bias.defined()) return Var<T>(y * weight.reshape(cs) + bias.reshape(cs));
  if (weight.defined()) return Var<T>(y * weight.reshape(cs));
  if (bias.defined()) return Var<T>(y + bias.reshape(cs));
  return y;
}

}  // namespace fiber
