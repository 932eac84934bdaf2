#pragma once
// Modulated deformable 2-D convolution (DCNv2): torchvision.ops.deform_conv2d with a mask, and the
// CUDA-only op of the official detection head (DyHead), on the CPU.
//   out[n, o, oy, ox] = bias[o] + Σ_{c, k=(i,j)} w[o, c, i, j] · m[n, g·K + k, oy, ox]
//                               · bilinear(x[n, c], oy·sh − ph + i·dh + Δy,  ox·sw − pw + j·dw + Δx)
//   Δy = offset[n, 2(g·K + k), oy, ox], Δx = offset[n, 2(g·K + k) + 1, oy, ox]
// with K = kh·kw taps in row-major order and g = c / (C / G) the channel's offset group.
// Shapes: x [N, C, H, W], offset [N, 2·G·K, Ho, Wo], mask [N, G·K, Ho, Wo] (or undefined: all 1,
// DCNv1), weight [O, C/groups, kh, kw], bias [O] or undefined -> [N, O, Ho, Wo].
//
// Bilinear sampling is torchvision's (and the official kernel's): a point with y <= −1, y >= H,
// x <= −1 or x >= W reads 0 and has no coordinate gradient; inside, each of its four neighbours
// that lies outside the image reads 0.
//
// Kernel: for each image the sampling points (four neighbour indices and two fractions per
// offset group, tap and output position) are found once, shared by the group's channels; the
// deformable im2col then fills [C·K, Ho·Wo] and each conv group is one GEMM, as conv2d. Backward
// recomputes the columns: dW = g · colᵀ; dcol = Wᵀ · g is scattered onto x in parallel over
// channels (each element summed by one thread in a fixed order) and reduced over channels for the
// offset and mask gradients in parallel over (group, tap, position): results do not depend on the
// thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/backend/cpu/gemm.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/ops/conv.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber {

namespace detail {

// Where one tap of one output position samples: the flat indices of its four neighbours in an
// [H, W] plane ((y0, x0), (y0, x1), (y1, x0), (y1, x1); −1 where outside) and the fractions.
template <class T>
struct BilinearPoint {
  std::int64_t corner[4];
  T ly, lx;  // y − floor(y), x − floor(x)

  // Σ weight · value, 0 for a neighbour outside.
  T sample(const T* plane) const {
    const T hy = T(1) - ly, hx = T(1) - lx;
    T v = 0;
    if (corner[0] >= 0) v += hy * hx * plane[corner[0]];
    if (corner[1] >= 0) v += hy * lx * plane[corner[1]];
    if (corner[2] >= 0) v += ly * hx * plane[corner[2]];
    if (corner[3] >= 0) v += ly * lx * plane[corner[3]];
    return v;
  }
  T corner_value(const T* plane, int i) const { return corner[i] >= 0 ? plane[corner[i]] : T(0); }
};

struct DeformGeometry {
  ConvGeometry conv;
  std::int64_t offset_groups;  // G
  std::int64_t taps() const { return conv.kh * conv.kw; }
  std::int64_t positions() const { return conv.Ho * conv.Wo; }
  std::int64_t channels_per_offset_group() const { return conv.C / offset_groups; }
};

inline DeformGeometry deform_geometry(const Shape& x, const Shape& offset, const Shape* mask, const Shape& weight,
                                      const Conv2dOptions& opt) {
  DeformGeometry d{conv_geometry(x, weight, opt), 0};
  const ConvGeometry& g = d.conv;
  const std::int64_t K = g.kh * g.kw;
  FIBER_CHECK(offset.rank() == 4 && offset[0] == g.N && offset[2] == g.Ho && offset[3] == g.Wo && offset[1] >= 2 * K &&
                  offset[1] % (2 * K) == 0,
              "deform_conv2d: offset must be [N, 2·G·", K, ", Ho, Wo] = [", g.N, ", 2·G·", K, ", ", g.Ho, ", ", g.Wo,
              "] for input ", x, " and weight ", weight, ", got ", offset);
  d.offset_groups = offset[1] / (2 * K);
  FIBER_CHECK(g.C % d.offset_groups == 0, "deform_conv2d: ", g.C, " input channels do not divide into ",
              d.offset_groups, " offset groups (offset ", offset, ")");
  if (mask)
    FIBER_CHECK(*mask == Shape({g.N, d.offset_groups * K, g.Ho, g.Wo}), "deform_conv2d: mask must be [", g.N, ", ",
                d.offset_groups * K, ", ", g.Ho, ", ", g.Wo, "] for offset ", offset, ", got ", *mask);
  return d;
}

// The sampling points of one image into `points` ([G, K, P] in that order, reused across images).
// offset: [2·G·K, P] of this image.
template <class T>
void deform_points(const DeformGeometry& d, const T* offset, std::vector<BilinearPoint<T>>& points) {
  const ConvGeometry& g = d.conv;
  const std::int64_t K = d.taps(), P = d.positions();
  points.resize(std::size_t(d.offset_groups * K * P));
  parallel_for(0, d.offset_groups * K, 1, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {  // r = group·K + tap
      const std::int64_t k = r % K, i = k / g.kw, j = k % g.kw;
      const T* dy = offset + (2 * r) * P;
      const T* dx = dy + P;
      BilinearPoint<T>* out = points.data() + r * P;
      for (std::int64_t p = 0; p < P; ++p) {
        const std::int64_t oy = p / g.Wo, ox = p % g.Wo;
        // In T, as torchvision computes it: the base position plus the learned offset.
        const T y = T(oy * g.opt.stride[0] - g.opt.padding[0] + i * g.opt.dilation[0]) + dy[p];
        const T x = T(ox * g.opt.stride[1] - g.opt.padding[1] + j * g.opt.dilation[1]) + dx[p];
        BilinearPoint<T>& pt = out[p];
        pt.corner[0] = pt.corner[1] = pt.corner[2] = pt.corner[3] = -1;
        pt.ly = pt.lx = 0;
        // Outside (or NaN): no neighbour is read, the value and both coordinate gradients are 0.
        if (!(y > T(-1) && y < T(g.H) && x > T(-1) && x < T(g.W))) continue;
        const T fy = std::floor(y), fx = std::floor(x);
        const std::int64_t y0 = std::int64_t(fy), x0 = std::int64_t(fx), y1 = y0 + 1, x1 = x0 + 1;
        pt.ly = y - fy;
        pt.lx = x - fx;
        const bool in_y0 = y0 >= 0, in_y1 = y1 < g.H, in_x0 = x0 >= 0, in_x1 = x1 < g.W;
        if (in_y0 && in_x0) pt.corner[0] = y0 * g.W + x0;
        if (in_y0 && in_x1) pt.corner[1] = y0 * g.W + x1;
        if (in_y1 && in_x0) pt.corner[2] = y1 * g.W + x0;
        if (in_y1 && in_x1) pt.corner[3] = y1 * g.W + x1;
      }
    }
  });
}

// col[(c·K + k), p] = mask · bilinear(x[c], point(g(c), k, p)). x: [C, H, W] of one image,
// mask: [G·K, P] or null, col: [C·K, P].
template <class T>
void deform_im2col(const DeformGeometry& d, const std::vector<BilinearPoint<T>>& points, const T* x, const T* mask,
                   T* col) {
  const ConvGeometry& g = d.conv;
  const std::int64_t K = d.taps(), P = d.positions(), Cq = d.channels_per_offset_group();
  parallel_for(0, g.C * K, std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(P, 1)),
               [&](std::int64_t r0, std::int64_t r1) {
                 for (std::int64_t r = r0; r < r1; ++r) {
                   const std::int64_t c = r / K, k = r % K, gk = (c / Cq) * K + k;
                   const T* plane = x + c * g.H * g.W;
                   const BilinearPoint<T>* pts = points.data() + gk * P;
                   const T* m = mask ? mask + gk * P : nullptr;
                   T* dst = col + r * P;
                   for (std::int64_t p = 0; p < P; ++p) dst[p] = pts[p].sample(plane) * (m ? m[p] : T(1));
                 }
               });
}

// dx[c] += the adjoint of sampling: each dcol element, times its mask, goes to the four
// neighbours by their bilinear weights. Parallel over channels.
template <class T>
void deform_col2im_add(const DeformGeometry& d, const std::vector<BilinearPoint<T>>& points, const T* dcol,
                       const T* mask, T* dx) {
  const ConvGeometry& g = d.conv;
  const std::int64_t K = d.taps(), P = d.positions(), Cq = d.channels_per_offset_group();
  parallel_for(0, g.C, 1, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* plane = dx + c * g.H * g.W;
      for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t gk = (c / Cq) * K + k;
        const BilinearPoint<T>* pts = points.data() + gk * P;
        const T* m = mask ? mask + gk * P : nullptr;
        const T* src = dcol + (c * K + k) * P;
        for (std::int64_t p = 0; p < P; ++p) {
          const BilinearPoint<T>& pt = pts[p];
          const T v = src[p] * (m ? m[p] : T(1));
          const T hy = T(1) - pt.ly, hx = T(1) - pt.lx;
          if (pt.corner[0] >= 0) plane[pt.corner[0]] += hy * hx * v;
          if (pt.corner[1] >= 0) plane[pt.corner[1]] += hy * pt.lx * v;
          if (pt.corner[2] >= 0) plane[pt.corner[2]] += pt.ly * hx * v;
          if (pt.corner[3] >= 0) plane[pt.corner[3]] += pt.ly * pt.lx * v;
        }
      }
    }
  });
}

// The offset and mask gradients of one image: for each (group, tap, position), sums over the
// group's channels of dcol times ∂sample/∂y, ∂sample/∂x (times the mask) and the sample itself.
// doffset: [2·G·K, P] or null, dmask: [G·K, P] or null. Parallel over (group, tap) and position
// blocks; each element summed over channels in order.
template <class T>
void deform_coordinate_grads(const DeformGeometry& d, const std::vector<BilinearPoint<T>>& points, const T* x,
                             const T* dcol, const T* mask, T* doffset, T* dmask) {
  const ConvGeometry& g = d.conv;
  const std::int64_t K = d.taps(), P = d.positions(), Cq = d.channels_per_offset_group();
  constexpr std::int64_t block = 64;
  const std::int64_t blocks = (P + block - 1) / block;
  parallel_for(0, d.offset_groups * K * blocks, 1, [&](std::int64_t t0, std::int64_t t1) {
    T sy[block], sx[block], sv[block];
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t gk = t / blocks, p0 = (t % blocks) * block, p1 = std::min(P, p0 + block);
      const std::int64_t q = gk / K, k = gk % K;
      std::fill_n(sy, block, T(0));
      std::fill_n(sx, block, T(0));
      std::fill_n(sv, block, T(0));
      const BilinearPoint<T>* pts = points.data() + gk * P;
      for (std::int64_t c = q * Cq; c < (q + 1) * Cq; ++c) {
        const T* plane = x + c * g.H * g.W;
        const T* src = dcol + (c * K + k) * P;
        for (std::int64_t p = p0; p < p1; ++p) {
          const BilinearPoint<T>& pt = pts[p];
          if (pt.corner[0] < 0 && pt.corner[1] < 0 && pt.corner[2] < 0 && pt.corner[3] < 0) continue;
          const T v00 = pt.corner_value(plane, 0), v01 = pt.corner_value(plane, 1);
          const T v10 = pt.corner_value(plane, 2), v11 = pt.corner_value(plane, 3);
          const T gc = src[p];
          // ∂/∂y and ∂/∂x of the bilinear sample (the one-sided derivative at integer points, as
          // torchvision's get_coordinate_weight).
          sy[p - p0] += gc * ((T(1) - pt.lx) * (v10 - v00) + pt.lx * (v11 - v01));
          sx[p - p0] += gc * ((T(1) - pt.ly) * (v01 - v00) + pt.ly * (v11 - v10));
          const T hy = T(1) - pt.ly, hx = T(1) - pt.lx;  // the sample from the same four values
          sv[p - p0] += gc * (hy * hx * v00 + hy * pt.lx * v01 + pt.ly * hx * v10 + pt.ly * pt.lx * v11);
        }
      }
      const T* m = mask ? mask + gk * P : nullptr;
      for (std::int64_t p = p0; p < p1; ++p) {
        const T mp = m ? m[p] : T(1);
        if (doffset) {
          doffset[(2 * gk) * P + p] = mp * sy[p - p0];
          doffset[(2 * gk + 1) * P + p] = mp * sx[p - p0];
        }
        if (dmask) dmask[gk * P + p] = sv[p - p0];
      }
    }
  });
}

// out_g [Og, P] (+)= w_g [Og, Cg·K] · col_g [Cg·K, P] for every conv group of one image.
template <class T, class Epilogue>
void deform_gemm(const ConvGeometry& g, const T* weight, const T* col, T* out, std::int64_t grp, const Epilogue& ep) {
  cpu::gemm<T>(cpu::Trans::no, cpu::Trans::no, g.Og, g.col_cols(), g.col_rows(), T(1), weight + grp * g.Og * g.col_rows(),
               g.col_rows(), col + grp * g.col_rows() * g.col_cols(), g.col_cols(), T(0), out + grp * g.Og * g.col_cols(),
               g.col_cols(), ep);
}

}  // namespace detail

// x: [N, C, H, W], offset: [N, 2·G·kh·kw, Ho, Wo], mask: [N, G·kh·kw, Ho, Wo] or undefined,
// weight: [O, C/groups, kh, kw], bias: [O] or undefined -> [N, O, Ho, Wo].
template <class T>
Tensor<T> deform_conv2d(const Tensor<T>& x, const Tensor<T>& offset, const Tensor<T>& mask, const Tensor<T>& weight,
                        const Tensor<T>& bias = {}, const Conv2dOptions& opt = {}) {
  const Shape mask_shape = mask.defined() ? mask.shape() : Shape();
  const auto d = detail::deform_geometry(x.shape(), offset.shape(), mask.defined() ? &mask_shape : nullptr,
                                         weight.shape(), opt);
  const auto& g = d.conv;
  FIBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == g.O), "deform_conv2d: bias of shape ",
              bias.shape(), " for ", g.O, " output channels");
  const Tensor<T> xc = x.contiguous(), oc = offset.contiguous(), wc = weight.contiguous();
  const Tensor<T> mc = mask.defined() ? mask.contiguous() : Tensor<T>();
  const Tensor<T> bc = bias.defined() ? bias.contiguous() : Tensor<T>();
  const std::int64_t K = d.taps(), P = d.positions();
  Tensor<T> out = Tensor<T>::empty({g.N, g.O, g.Ho, g.Wo});
  const Tensor<T> col = Tensor<T>::empty({g.C * K * P});  // fully written by each deform_im2col
  std::vector<detail::BilinearPoint<T>> points;
  for (std::int64_t n = 0; n < g.N; ++n) {
    detail::deform_points(d, oc.data() + n * 2 * d.offset_groups * K * P, points);
    detail::deform_im2col(d, points, xc.data() + n * g.C * g.H * g.W,
                          mc.defined() ? mc.data() + n * d.offset_groups * K * P : nullptr, col.data());
    T* out_n = out.data() + n * g.O * P;
    for (std::int64_t grp = 0; grp < g.groups; ++grp) {
      if (bc.defined()) detail::deform_gemm(g, wc.data(), col.data(), out_n, grp, cpu::RowBiasEpilogue<T>{bc.data() + grp * g.Og});
      else detail::deform_gemm(g, wc.data(), col.data(), out_n, grp, cpu::NoEpilogue{});
    }
  }
  return out;
}

// Gradients for x, offset, mask, weight and bias (each where defined and required).
template <class T>
Var<T> deform_conv2d(const Var<T>& x, const Var<T>& offset, const Var<T>& mask, const Var<T>& weight,
                     const Var<T>& bias = {}, const Conv2dOptions& opt = {}) {
  const bool has_mask = mask.defined(), has_bias = bias.defined();
  Tensor<T> out = deform_conv2d(x.value(), offset.value(), has_mask ? mask.value() : Tensor<T>(), weight.value(),
                                has_bias ? bias.value() : Tensor<T>(), opt);
  if (!needs_graph(x, offset, mask, weight, bias)) return Var<T>(std::move(out));
  auto backward = [xs = save_for_backward(x.value().contiguous()), os = save_for_backward(offset.value().contiguous()),
                   ms = save_for_backward(has_mask ? mask.value().contiguous() : Tensor<T>()),
                   ws = save_for_backward(weight.value().contiguous()), opt, has_mask,
                   has_bias](const Tensor<T>& grad, GradNeeds needs) {
    const Tensor<T>&xv = xs.get(), &ov = os.get(), &mv = ms.get(), &wv = ws.get();
    const Shape mask_shape = has_mask ? mv.shape() : Shape();
    const auto d = detail::deform_geometry(xv.shape(), ov.shape(), has_mask ? &mask_shape : nullptr, wv.shape(), opt);
    const auto& g = d.conv;
    const std::int64_t K = d.taps(), P = d.positions(), GK = d.offset_groups * K;
    const Tensor<T> gc = grad.contiguous();
    const bool need_dx = needs[0], need_doff = needs[1], need_dmask = has_mask && needs[2], need_dw = needs[3];
    Tensor<T> dx = need_dx ? Tensor<T>::zeros(xv.shape()) : Tensor<T>();
    Tensor<T> doff = need_doff ? Tensor<T>::empty(ov.shape()) : Tensor<T>();  // every element written
    Tensor<T> dmask = need_dmask ? Tensor<T>::empty(mv.shape()) : Tensor<T>();
    Tensor<T> dw = need_dw ? Tensor<T>::zeros(wv.shape()) : Tensor<T>();
    const Tensor<T> col = need_dw ? Tensor<T>::empty({g.C * K * P}) : Tensor<T>();
    const bool need_dcol = need_dx || need_doff || need_dmask;
    const Tensor<T> dcol = need_dcol ? Tensor<T>::empty({g.C * K * P}) : Tensor<T>();
    std::vector<detail::BilinearPoint<T>> points;
    for (std::int64_t n = 0; n < g.N; ++n) {
      const T* x_n = xv.data() + n * g.C * g.H * g.W;
      const T* m_n = has_mask ? mv.data() + n * GK * P : nullptr;
      const T* g_n = gc.data() + n * g.O * P;  // [O, P]
      detail::deform_points(d, ov.data() + n * 2 * GK * P, points);
      if (need_dw) {
        detail::deform_im2col(d, points, x_n, m_n, col.data());
        for (std::int64_t grp = 0; grp < g.groups; ++grp)  // dW_g += g_g · col_gᵀ, images in order
          cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, g.Og, g.col_rows(), P, T(1), g_n + grp * g.Og * P, P,
                       col.data() + grp * g.col_rows() * P, P, T(1), dw.data() + grp * g.Og * g.col_rows(), g.col_rows());
      }
      if (!need_dcol) continue;
      for (std::int64_t grp = 0; grp < g.groups; ++grp)  // dcol_g = w_gᵀ · g_g
        cpu::gemm<T>(cpu::Trans::yes, cpu::Trans::no, g.col_rows(), P, g.Og, T(1), wv.data() + grp * g.Og * g.col_rows(),
                     g.col_rows(), g_n + grp * g.Og * P, P, T(0), dcol.data() + grp * g.col_rows() * P, P);
      if (need_dx) detail::deform_col2im_add(d, points, dcol.data(), m_n, dx.data() + n * g.C * g.H * g.W);
      if (need_doff || need_dmask)
        detail::deform_coordinate_grads(d, points, x_n, dcol.data(), m_n,
                                        need_doff ? doff.data() + n * 2 * GK * P : nullptr,
                                        need_dmask ? dmask.data() + n * GK * P : nullptr);
    }
    std::vector<Tensor<T>> grads(5);
    grads[0] = dx;
    grads[1] = doff;
    grads[2] = dmask;
    grads[3] = dw;
    if (has_bias && needs[4]) grads[4] = sum(gc, {0, 2, 3});
    return grads;
  };
  return record("deform_conv2d", out, {&x, &offset, &mask, &weight, &bias}, backward);
}

}  // namespace fiber
