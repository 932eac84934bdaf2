#pragma once
// 2-D convolution, NCHW, with stride, padding, dilation and groups (torch.nn.functional.conv2d).
// Each image and group is one GEMM over an im2col buffer (skipped for 1x1 stride-1 convolutions,
// whose input already is that buffer). The backward's col2im runs in parallel over channels only,
// so every input gradient element is summed in a fixed order: results do not depend on threads.
#include <array>
#include <cstdint>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/backend/cpu/gemm.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber {

struct Conv2dOptions {
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> padding{0, 0};
  std::array<std::int64_t, 2> dilation{1, 1};
  std::int64_t groups = 1;
};

namespace detail {

struct ConvGeometry {
  std::int64_t N, C, H, W;      // input
  std::int64_t O, kh, kw;       // filters
  std::int64_t Ho, Wo;          // output
  std::int64_t groups, Cg, Og;  // per group
  Conv2dOptions opt;

  std::int64_t col_rows() const { return Cg * kh * kw; }
  std::int64_t col_cols() const { return Ho * Wo; }
  bool direct() const {  // the input is its own im2col buffer
    return kh == 1 && kw == 1 && opt.stride == std::array<std::int64_t, 2>{1, 1} &&
           opt.padding == std::array<std::int64_t, 2>{0, 0};
  }
};

inline ConvGeometry conv_geometry(const Shape& x, const Shape& w, const Conv2dOptions& opt) {
  FIBER_CHECK(x.rank() == 4, "conv2d: input must be [N, C, H, W], got ", x);
  FIBER_CHECK(w.rank() == 4, "conv2d: weight must be [O, C/groups, kh, kw], got ", w);
  FIBER_CHECK(opt.groups >= 1, "conv2d: groups = ", opt.groups, " must be >= 1");
  // Options are bounded so that the output size below cannot overflow int64 (the kernel and input
  // dims are sizes of allocated tensors, far below 2^40).
  constexpr std::int64_t max_option = std::int64_t{1} << 20;
  for (int i = 0; i < 2; ++i) {
    FIBER_CHECK(opt.stride[i] >= 1, "conv2d: stride must be >= 1, got ", opt.stride[i]);
    FIBER_CHECK(opt.dilation[i] >= 1, "conv2d: dilation must be >= 1, got ", opt.dilation[i]);
    FIBER_CHECK(opt.padding[i] >= 0, "conv2d: padding must be >= 0, got ", opt.padding[i]);
    FIBER_CHECK(opt.stride[i] <= max_option && opt.dilation[i] <= max_option && opt.padding[i] <= max_option,
                "conv2d: stride, dilation and padding must be at most ", max_option, ", got ", opt.stride[i], ", ",
                opt.dilation[i], " and ", opt.padding[i]);
  }
  ConvGeometry g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, opt.groups, x[1] / opt.groups, w[0] / opt.groups, opt};
  FIBER_CHECK(g.C % opt.groups == 0 && g.O % opt.groups == 0, "conv2d: channels ", g.C, " in and ", g.O,
              " out must both divide into ", opt.groups, " groups");
  FIBER_CHECK(w[1] == g.Cg, "conv2d: weight ", w, " expects ", w[1] * opt.groups, " input channels, input ", x, " has ",
              g.C, " (groups = ", opt.groups, ")");
  g.Ho = (g.H + 2 * opt.padding[0] - opt.dilation[0] * (g.kh - 1) - 1) / opt.stride[0] + 1;
  g.Wo = (g.W + 2 * opt.padding[1] - opt.dilation[1] * (g.kw - 1) - 1) / opt.stride[1] + 1;
  FIBER_CHECK(g.Ho >= 1 && g.Wo >= 1 && g.kh >= 1 && g.kw >= 1, "conv2d: kernel ", g.kh, "x", g.kw,
              " (dilation ", opt.dilation[0], "x", opt.dilation[1], ") does not fit the padded input ", g.H, "x", g.W);
  return g;
}

// col[(c*kh + i)*kw + j, oy*Wo + ox] = x[c, oy*sh - ph + i*dh, ox*sw - pw + j*dw] (0 outside).
// x: [Cg, H, W] of one image and group.
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col) {
  const std::int64_t rows = g.col_rows();
  parallel_for(0, rows, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(g.col_cols(), 1)),
               [&](std::int64_t r0, std::int64_t r1) {
                 for (std::int64_t r = r0; r < r1; ++r) {
                   const std::int64_t c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
                   T* dst = col + r * g.col_cols();
                   const T* plane = x + c * g.H * g.W;
                   for (std::int64_t oy = 0; oy < g.Ho; ++oy) {
                     const std::int64_t y = oy * g.opt.stride[0] - g.opt.padding[0] + i * g.opt.dilation[0];
                     T* out = dst + oy * g.Wo;
                     if (y < 0 || y >= g.H) {
                       std::fill_n(out, g.Wo, T(0));
                       continue;
                     }
                     const T* src = plane + y * g.W;
                     for (std::int64_t ox = 0; ox < g.Wo; ++ox) {
                       const std::int64_t xx = ox * g.opt.stride[1] - g.opt.padding[1] + j * g.opt.dilation[1];
                       out[ox] = (xx >= 0 && xx < g.W) ? src[xx] : T(0);
                     }
                   }
                 }
               });
}

// The adjoint of im2col: dx[c, y, x] += col[...]. Parallel over channels: each channel's
// elements are summed by one thread in a fixed order.
template <class T>
void col2im_add(const ConvGeometry& g, const T* col, T* dx) {
  parallel_for(0, g.Cg, 1, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* plane = dx + c * g.H * g.W;
      for (std::int64_t i = 0; i < g.kh; ++i)
        for (std::int64_t j = 0; j < g.kw; ++j) {
          const T* src = col + ((c * g.kh + i) * g.kw + j) * g.col_cols();
          for (std::int64_t oy = 0; oy < g.Ho; ++oy) {
            const std::int64_t y = oy * g.opt.stride[0] - g.opt.padding[0] + i * g.opt.dilation[0];
            if (y < 0 || y >= g.H) continue;
            for (std::int64_t ox = 0; ox < g.Wo; ++ox) {
              const std::int64_t xx = ox * g.opt.stride[1] - g.opt.padding[1] + j * g.opt.dilation[1];
              if (xx >= 0 && xx < g.W) plane[y * g.W + xx] += src[oy * g.Wo + ox];
            }
          }
        }
    }
  });
}

}  // namespace detail

// x: [N, C, H, W], weight: [O, C/groups, kh, kw], bias: [O] or undefined -> [N, O, Ho, Wo].
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = {}, const Conv2dOptions& opt = {}) {
  const auto g = detail::conv_geometry(x.shape(), weight.shape(), opt);
  FIBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == g.O), "conv2d: bias of shape ", bias.shape(),
              " for ", g.O, " output channels");
  const Tensor<T> xc = x.contiguous(), wc = weight.contiguous();
  const Tensor<T> bc = bias.defined() ? bias.contiguous() : Tensor<T>();
  Tensor<T> out = Tensor<T>::empty({g.N, g.O, g.Ho, g.Wo});
  // im2col writes every element of its buffer: no zero-fill needed.
  const Tensor<T> col = g.direct() ? Tensor<T>() : Tensor<T>::empty({g.col_rows() * g.col_cols()});
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t grp = 0; grp < g.groups; ++grp) {
      const T* xg = xc.data() + (n * g.C + grp * g.Cg) * g.H * g.W;
      const T* cols = xg;
      if (!g.direct()) {
        detail::im2col(g, xg, col.data());
        cols = col.data();
      }
      // out_g [Og, Ho*Wo] = w_g [Og, Cg*kh*kw] · col [Cg*kh*kw, Ho*Wo] (+ the group's bias per row,
      // added in the GEMM's write-back rather than in a second pass over the output).
      auto run = [&](const auto& epilogue) {
        cpu::gemm<T>(cpu::Trans::no, cpu::Trans::no, g.Og, g.col_cols(), g.col_rows(), T(1),
                     wc.data() + grp * g.Og * g.col_rows(), g.col_rows(), cols, g.col_cols(), T(0),
                     out.data() + (n * g.O + grp * g.Og) * g.col_cols(), g.col_cols(), epilogue);
      };
      if (bc.defined()) {
        run(cpu::RowBiasEpilogue<T>{bc.data() + grp * g.Og});
      } else {
        run(cpu::NoEpilogue{});
      }
    }
  return out;
}

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& weight, const Var<T>& bias = {}, const Conv2dOptions& opt = {}) {
  const bool has_bias = bias.defined();
  Tensor<T> out = conv2d(x.value(), weight.value(), has_bias ? bias.value() : Tensor<T>(), opt);
  if (!needs_graph(x, weight, bias)) return Var<T>(std::move(out));
  auto backward = [xs = save_for_backward(x.value().contiguous()), ws = save_for_backward(weight.value().contiguous()),
                   opt, has_bias](const Tensor<T>& grad, GradNeeds needs) {
    const Tensor<T>& xv = xs.get();
    const Tensor<T>& wv = ws.get();
    const auto g = detail::conv_geometry(xv.shape(), wv.shape(), opt);
    const Tensor<T> gc = grad.contiguous();
    std::vector<Tensor<T>> grads(has_bias ? 3 : 2);
    Tensor<T> dx = needs[0] ? Tensor<T>::zeros(xv.shape()) : Tensor<T>();
    Tensor<T> dw = needs[1] ? Tensor<T>::zeros(wv.shape()) : Tensor<T>();
    const Tensor<T> col = Tensor<T>::empty({g.col_rows() * g.col_cols()});  // fully written before each read
    for (std::int64_t n = 0; n < g.N; ++n)
      for (std::int64_t grp = 0; grp < g.groups; ++grp) {
        const T* gg = gc.data() + (n * g.O + grp * g.Og) * g.col_cols();  // [Og, Ho*Wo]
        const T* wg = wv.data() + grp * g.Og * g.col_rows();               // [Og, Cg*kh*kw]
        if (needs[1]) {
          // dW_g += g_g · colᵀ, images accumulated in order.
          const T* xg = xv.data() + (n * g.C + grp * g.Cg) * g.H * g.W;
          const T* cols = xg;
          if (!g.direct()) {
            detail::im2col(g, xg, col.data());
            cols = col.data();
          }
          cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, g.Og, g.col_rows(), g.col_cols(), T(1), gg, g.col_cols(), cols,
                       g.col_cols(), T(1), dw.data() + grp * g.Og * g.col_rows(), g.col_rows());
        }
        if (needs[0]) {
          // dcol = w_gᵀ · g_g, then scattered back onto the input.
          T* dxg = dx.data() + (n * g.C + grp * g.Cg) * g.H * g.W;
          if (g.direct()) {
            cpu::gemm<T>(cpu::Trans::yes, cpu::Trans::no, g.col_rows(), g.col_cols(), g.Og, T(1), wg, g.col_rows(), gg,
                         g.col_cols(), T(1), dxg, g.col_cols());
          } else {
            cpu::gemm<T>(cpu::Trans::yes, cpu::Trans::no, g.col_rows(), g.col_cols(), g.Og, T(1), wg, g.col_rows(), gg,
                         g.col_cols(), T(0), col.data(), g.col_cols());
            detail::col2im_add(g, col.data(), dxg);
          }
        }
      }
    grads[0] = dx;
    grads[1] = dw;
    if (has_bias && needs[2]) grads[2] = sum(gc, {0, 2, 3});
    return grads;
  };
  if (has_bias) return record("conv2d", out, {&x, &weight, &bias}, backward);
  return record("conv2d", out, {&x, &weight}, backward);
}

}  // namespace fiber
