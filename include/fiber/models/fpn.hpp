#pragma once
// The feature pyramid of the fine-grained model (modeling/backbone/fpn.py, FPN with
// LastLevelP6P7 as SWINT-FPN-RETINANET builds it): C3, C4, C5 -> P3, P4, P5, P6, P7.
//   laterals:  inner_i = conv1x1(C_i)                      fpn_inner2..4
//   top-down:  inner_i += nearest-upsample(inner_{i+1})   (only where the sizes differ)
//   outputs:   P_i = conv3x3(inner_i)                      fpn_layer2..4
//   P6 = conv3x3 stride 2 (P5), P7 = conv3x3 stride 2 (relu(P6))   top_blocks.p6, .p7
// Keys are numbered as the official in_channels_list [0 (C2, unused), C3, C4, C5], 1-based.
#include <array>
#include <string>
#include <vector>

#include "fiber/models/fine_config.hpp"
#include "fiber/nn/conv2d.hpp"
#include "fiber/ops/interpolate.hpp"

namespace fiber::models {

template <class T, FpnConfig C>
struct Fpn {
  std::array<nn::Conv2d<T>, 3> inner, layer;  // C3, C4, C5
  nn::Conv2d<T> p6, p7;

  Fpn() {
    for (int i = 0; i < 3; ++i) {
      inner[std::size_t(i)] = nn::Conv2d<T>(C.in_channels[std::size_t(i)], C.out_channels, 1);
      layer[std::size_t(i)] = nn::Conv2d<T>(C.out_channels, C.out_channels, 3, 1, 1);
    }
    p6 = nn::Conv2d<T>(C.out_channels, C.out_channels, 3, 2, 1);
    p7 = nn::Conv2d<T>(C.out_channels, C.out_channels, 3, 2, 1);
  }

  // c: C3, C4, C5 as [N, C_i, H_i, W_i] -> P3..P7 as [N, out, H, W].
  std::vector<Var<T>> operator()(const std::array<Var<T>, 3>& c) const {
    for (int i = 0; i < 3; ++i)
      FIBER_CHECK(c[std::size_t(i)].dim() == 4 && c[std::size_t(i)].size(1) == C.in_channels[std::size_t(i)],
                  "Fpn: C", i + 3, " must be [N, ", C.in_channels[std::size_t(i)], ", H, W], got ",
                  c[std::size_t(i)].shape());
    std::vector<Var<T>> out(5);
    Var<T> last = inner[2](c[2]);
    out[2] = layer[2](last);
    for (int i = 1; i >= 0; --i) {
      const Var<T> lateral = inner[std::size_t(i)](c[std::size_t(i)]);
      const bool same = lateral.size(2) == last.size(2) && lateral.size(3) == last.size(3);
      const Var<T> top_down = same ? last : upsample_nearest(last, {lateral.size(2), lateral.size(3)});
      last = Var<T>(lateral + top_down);
      out[std::size_t(i)] = layer[std::size_t(i)](last);
    }
    out[3] = p6(out[2]);
    out[4] = p7(Var<T>(relu(out[3])));
    return out;
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    for (int i = 0; i < 3; ++i) {
      inner[std::size_t(i)].visit(prefix + "fpn_inner" + std::to_string(i + 2) + ".", f);
      layer[std::size_t(i)].visit(prefix + "fpn_layer" + std::to_string(i + 2) + ".", f);
    }
    p6.visit(prefix + "top_blocks.p6.", f);
    p7.visit(prefix + "top_blocks.p7.", f);
  }
};

}  // namespace fiber::models
