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

// Checks x, groups and the optional parameters (Tensors or Vars); returns x viewed as rows
// [N, groups, C/groups · positions].
template <class P>
Shape group_norm_rows(const Shape& x, std::int64_t groups, const P& weight, const P& bias) {
  FIBER_CHECK(x.rank() >= 2, "group_norm: expects an input [N, C, ...], got shape ", x);
  FIBER_CHECK(groups >= 1 && x[1] % groups == 0, "group_norm: ", x[1], " channels do not split into ", groups,
              " groups (input ", x, ")");
  for (auto [name, p] : {std::pair{"weight", &weight}, std::pair{"bias", &bias}})
    FIBER_CHECK(!p->defined() || p->shape() == Shape({x[1]}), "group_norm: ", name, " must be [", x[1], "], got ",
                p->shape());
  return Shape({x[0], groups, x.numel() / std::max<std::int64_t>(x[0] * groups, 1)});
}
}  // namespace detail

template <class T>
Tensor<T> group_norm(const Tensor<T>& x, std::int64_t groups, const std::type_identity_t<Tensor<T>>& weight = {},
                     const std::type_identity_t<Tensor<T>>& bias = {}, double eps = 1e-5) {
  const Shape rows = detail::group_norm_rows(x.shape(), groups, weight, bias);
  Tensor<T> y = layer_norm(x.reshape(rows), LastDims{1}, {}, {}, eps).reshape(x.shape());
  const Shape cs = detail::channel_shape(x.shape());
  if (weight.defined()) y = Tensor<T>(y * weight.reshape(cs));
  if (bias.defined()) y = Tensor<T>(y + bias.reshape(cs));
  return y;
}

template <class T>
Var<T> group_norm(const Var<T>& x, std::int64_t groups, const std::type_identity_t<Var<T>>& weight = {},
                  const std::type_identity_t<Var<T>>& bias = {}, double eps = 1e-5) {
  const Shape rows = detail::group_norm_rows(x.shape(), groups, weight, bias);
  Var<T> y = layer_norm(x.reshape(rows), LastDims{1}, {}, {}, eps).reshape(x.shape());
  const Shape cs = detail::channel_shape(x.shape());
  if (weight.defined() && bias.defined()) return Var<T>(y * weight.reshape(cs) + bias.reshape(cs));
  if (weight.defined()) return Var<T>(y * weight.reshape(cs));
  if (bias.defined()) return Var<T>(y + bias.reshape(cs));
  return y;
}

}  // namespace fiber
