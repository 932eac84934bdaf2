#pragma once
// Resampling of [N, C, H, W] (and [N, C, W]) tensors, as F.interpolate without antialiasing:
// modes nearest (PyTorch's legacy 'nearest': src = floor(dst * scale)), nearest_exact, linear
// (3-D), bilinear and bicubic (4-D, A = -0.75, borders clamped) with align_corners false or
// true, and area (adaptive average pooling). The output size is given, or computed from scale
// factors as floor(in * factor); unless recompute_scale_factor is set, the given factors are
// then the ones the interpolation uses (PyTorch's default).
//
//   Tensor<float> y = interpolate(x, {.size = {64, 96}, .mode = InterpolateMode::bilinear});
//   Var<float> z = upsample_bilinear(v, {32, 32});   // F.upsample_bilinear: align_corners=true
//
// Coordinates and weights are computed once per output row and column, in the element type, by
// PyTorch's formulas; the quirks of its legacy modes are kept (nearest and linear copy when the
// sizes are equal, nearest halves indices when the output is exactly twice the input). The
// backward is the exact adjoint of the forward weights (gradcheck-tested), applied separably
// (columns, then rows); threads own disjoint input rows and add in an order fixed by the shapes,
// so it does not depend on the thread count.
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/ops/pooling.hpp"

namespace fiber {

enum class InterpolateMode { nearest, nearest_exact, linear, bilinear, bicubic, area };

inline const char* interpolate_mode_name(InterpolateMode m) {
  switch (m) {
    case InterpolateMode::nearest: return "nearest";
    case InterpolateMode::nearest_exact: return "nearest-exact";
    case InterpolateMode::linear: return "linear";
    case InterpolateMode::bilinear: return "bilinear";
    case InterpolateMode::bicubic: return "bicubic";
    case InterpolateMode::area: return "area";
  }
  return "?";
}

// What F.interpolate takes after the input. Give exactly one of size and scale_factor, each
// with one value (used for every spatial dimension) or one per spatial dimension.
struct InterpolateOptions {
  // Every member has a default, so designated initializers may name any subset (in order):
  //   interpolate(x, {.size = {64, 96}, .mode = InterpolateMode::bicubic})
  std::vector<std::int64_t> size{};
  std::vector<double> scale_factor{};
  InterpolateMode mode = InterpolateMode::nearest;
  std::optional<bool> align_corners{};  // linear, bilinear, bicubic only; unset means false
  bool recompute_scale_factor = false;  // true: interpolate with in/out, not the given factors
};

namespace detail {
// The resolved geometry: input and output sizes of the (one or two) spatial dimensions and the
// scale factor each dimension's coordinates use, if any.
struct InterpolatePlan {
  InterpolateMode mode = InterpolateMode::nearest;
  bool align_corners = false;
  int spatial = 2;
  std::array<std::int64_t, 2> in{1, 1}, out{1, 1};  // [H, W]; H == 1 for 3-D inputs
  std::array<std::optional<double>, 2> scale;
};

inline InterpolatePlan plan_interpolation(const Shape& shape, const InterpolateOptions& opt) {
  const char* mode = interpolate_mode_name(opt.mode);
  InterpolatePlan p;
  p.mode = opt.mode;
  FIBER_CHECK(shape.rank() == 3 || shape.rank() == 4, "interpolate: expects a 3-D [N, C, W] or 4-D [N, C, H, W] input, got shape ",
              shape);
  p.spatial = shape.rank() - 2;
  if (opt.mode == InterpolateMode::linear)
    FIBER_CHECK(p.spatial == 1, "interpolate: mode 'linear' needs a 3-D [N, C, W] input, got shape ", shape, " (use 'bilinear')");
  if (opt.mode == InterpolateMode::bilinear || opt.mode == InterpolateMode::bicubic)
    FIBER_CHECK(p.spatial == 2, "interpolate: mode '", mode, "' needs a 4-D [N, C, H, W] input, got shape ", shape);
  const bool interpolating = opt.mode == InterpolateMode::linear || opt.mode == InterpolateMode::bilinear ||
                             opt.mode == InterpolateMode::bicubic;
  FIBER_CHECK(interpolating || !opt.align_corners.has_value(), "interpolate: align_corners can only be set with modes linear, ",
              "bilinear and bicubic, not '", mode, "'");
  p.align_corners = opt.align_corners.value_or(false);
  const bool has_size = !opt.size.empty(), has_scale = !opt.scale_factor.empty();
  FIBER_CHECK(has_size != has_scale, "interpolate: give exactly one of size and scale_factor (got ",
              has_size ? "both" : "neither", ")");
  const auto count = has_size ? opt.size.size() : opt.scale_factor.size();
  FIBER_CHECK(count == 1 || static_cast<int>(count) == p.spatial, "interpolate: ", has_size ? "size" : "scale_factor",
              " has ", count, " values for an input of shape ", shape, " with ", p.spatial, " spatial dimension(s)");
  for (int d = 0; d < p.spatial; ++d) {
    const int k = 2 - p.spatial + d;  // slot in the [H, W] arrays
    const std::int64_t in = shape[2 + d];
    FIBER_CHECK(in > 0, "interpolate: spatial dimension ", 2 + d, " of input shape ", shape, " is empty (must be > 0)");
    p.in[k] = in;
    const std::size_t i = count == 1 ? 0 : static_cast<std::size_t>(d);
    if (has_size) {
      FIBER_CHECK(opt.size[i] > 0, "interpolate: output size ", opt.size[i], " for spatial dimension ", d, " must be > 0");
      p.out[k] = opt.size[i];
    } else {
      const double f = opt.scale_factor[i];
      FIBER_CHECK(std::isfinite(f) && f > 0, "interpolate: scale_factor ", f, " for spatial dimension ", d,
                  " must be finite and > 0");
      const double o = std::floor(double(in) * f);
      FIBER_CHECK(o >= 1, "interpolate: scale_factor ", f, " gives output size ", o, " for input size ", in,
                  " in spatial dimension ", d, " (must be > 0)");
      FIBER_CHECK(o < 2147483648.0, "interpolate: scale_factor ", f, " gives output size ", o, " for input size ", in,
                  ", too large");
      p.out[k] = static_cast<std::int64_t>(o);
      if (!opt.recompute_scale_factor) p.scale[k] = f;
    }
  }
  return p;
}

// One spatial dimension's taps: for output position o, input positions index[o*count + t]
// (already multiplied by the dimension's stride) with weights weight[o*count + t].
template <class T>
struct Taps {
  int count = 1;
  std::vector<std::int64_t> index;
  std::vector<T> weight;
};

// PyTorch's area_pixel_compute_scale, in the computation type.
template <class T>
T source_scale(std::int64_t in, std::int64_t out, bool align_corners, std::optional<double> scale) {
  if (align_corners) return out > 1 ? T(in - 1) / T(out - 1) : T(0);
  return scale && *scale > 0 ? T(1.0 / *scale) : T(in) / T(out);
}
// PyTorch's area_pixel_compute_source_index.
template <class T>
T source_coordinate(T scale, std::int64_t dst, bool align_corners, bool cubic) {
  if (align_corners) return scale * T(dst);
  const T src = scale * (T(dst) + T(0.5)) - T(0.5);
  return (!cubic && src < T(0)) ? T(0) : src;
}
// Index (at most in - 1) and fraction (clamped to [0, 1]) of a source coordinate.
template <class T>
void split_coordinate(T real, std::int64_t in, std::int64_t& index, T& frac) {
  index = std::min(static_cast<std::int64_t>(std::floor(real)), in - 1);
  frac = std::min(std::max(real - T(index), T(0)), T(1));
}
template <class T>
void cubic_weights(T t, T w[4]) {
  const T a = T(-0.75);
  auto near = [a](T x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };          // |x| <= 1
  auto far = [a](T x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };     // 1 < |x| < 2
  const T u = T(1) - t;  // the distance to the right neighbour, as PyTorch computes it
  w[0] = far(t + T(1));
  w[1] = near(t);
  w[2] = near(u);
  w[3] = far(u + T(1));
}

template <class T>
Taps<T> make_taps(InterpolateMode mode, std::int64_t in, std::int64_t out, bool align_corners, std::optional<double> scale,
                  std::int64_t stride) {
  Taps<T> taps;
  taps.count = mode == InterpolateMode::bicubic ? 4 : (mode == InterpolateMode::linear || mode == InterpolateMode::bilinear) ? 2 : 1;
  taps.index.resize(static_cast<std::size_t>(out * taps.count));
  taps.weight.resize(taps.index.size());
  for (std::int64_t o = 0; o < out; ++o) {
    std::int64_t* ix = &taps.index[o * taps.count];
    T* w = &taps.weight[o * taps.count];
    switch (mode) {
      case InterpolateMode::nearest:
      case InterpolateMode::nearest_exact: {
        // As PyTorch: a float scale whatever the element type.
        const float s = scale && *scale > 0 ? float(1.0 / *scale) : float(in) / float(out);
        std::int64_t src;
        if (mode == InterpolateMode::nearest_exact)
          src = static_cast<std::int64_t>(std::floor(static_cast<float>((double(o) + 0.5) * double(s))));
        else if (out == in) src = o;
        else if (out == 2 * in) src = o >> 1;
        else src = static_cast<std::int64_t>(std::floor(static_cast<float>(o) * s));
        ix[0] = std::min(src, in - 1);
        w[0] = T(1);
        break;
      }
      case InterpolateMode::linear:
      case InterpolateMode::bilinear: {
        if (out == in) {  // PyTorch copies when the sizes are equal, whatever the scale factor
          ix[0] = ix[1] = o;
          w[0] = T(1);
          w[1] = T(0);
          break;
        }
        std::int64_t i0;
        T frac;
        split_coordinate(source_coordinate(source_scale<T>(in, out, align_corners, scale), o, align_corners, false), in, i0, frac);
        ix[0] = i0;
        ix[1] = i0 + (i0 < in - 1 ? 1 : 0);
        w[0] = T(1) - frac;
        w[1] = frac;
        break;
      }
      case InterpolateMode::bicubic: {
        std::int64_t i0;
        T frac;
        split_coordinate(source_coordinate(source_scale<T>(in, out, align_corners, scale), o, align_corners, true), in, i0, frac);
        cubic_weights(frac, w);
        for (int t = 0; t < 4; ++t) ix[t] = std::clamp<std::int64_t>(i0 - 1 + t, 0, in - 1);
        break;
      }
      case InterpolateMode::area: fail("interpolate: area mode has no taps");
    }
    for (int t = 0; t < taps.count; ++t) ix[t] *= stride;
  }
  return taps;
}

// Planes of x viewed as [planes, H, W] with strides; channel count to split a plane index.
struct PlaneLayout {
  std::int64_t planes, channels, s_n, s_c;
};

// out [planes, OH, OW] contiguous = separable weighted sums of x's planes, rows [b, e) of
// planes * OH.
template <class T, int TY, int TX>
void interpolate_rows(const T* x, const PlaneLayout& pl, T* out, std::int64_t oh, std::int64_t ow, const Taps<T>& ty,
                      const Taps<T>& tx, std::int64_t b, std::int64_t e) {
  const std::int64_t* xi = tx.index.data();
  const T* xw = tx.weight.data();
  for (std::int64_t r = b; r < e; ++r) {
    const std::int64_t p = r / oh, oy = r - p * oh;
    const T* plane = x + (p / pl.channels) * pl.s_n + (p % pl.channels) * pl.s_c;
    const T* rows[TY];
    T wy[TY];
#pragma GCC unroll 4
    for (int a = 0; a < TY; ++a) {
      rows[a] = plane + ty.index[oy * TY + a];
      wy[a] = ty.weight[oy * TY + a];
    }
    T* orow = out + r * ow;
    for (std::int64_t ox = 0; ox < ow; ++ox) {
      const std::int64_t* ii = xi + ox * TX;
      const T* ww = xw + ox * TX;
      T acc = 0;
      // Tap loops unrolled even at -O2 (the counts are compile-time constants).
#pragma GCC unroll 4
      for (int a = 0; a < TY; ++a) {
        T s = 0;
#pragma GCC unroll 4
        for (int t = 0; t < TX; ++t) s += ww[t] * rows[a][ii[t]];
        acc += wy[a] * s;
      }
      orow[ox] = acc;
    }
  }
}

// The y taps turned around: for each input row, the (output row, weight) pairs that read it, in
// (output row, tap) order.
template <class T>
struct RowSources {
  std::vector<std::int64_t> start;  // [H + 1]: pairs of row iy are [start[iy], start[iy + 1])
  std::vector<std::int64_t> out_row;
  std::vector<T> weight;
};
template <class T>
RowSources<T> row_sources(const Taps<T>& ty, std::int64_t h) {
  RowSources<T> r;
  r.start.assign(static_cast<std::size_t>(h + 1), 0);
  for (std::int64_t iy : ty.index) ++r.start[iy + 1];
  for (std::int64_t i = 0; i < h; ++i) r.start[i + 1] += r.start[i];
  r.out_row.resize(ty.index.size());
  r.weight.resize(ty.index.size());
  std::vector<std::int64_t> fill(r.start.begin(), r.start.end() - 1);
  for (std::size_t k = 0; k < ty.index.size(); ++k) {
    const std::int64_t at = fill[ty.index[k]]++;
    r.out_row[at] = static_cast<std::int64_t>(k) / ty.count;
    r.weight[at] = ty.weight[k];
  }
  return r;
}

// The adjoint, separably: for input rows [b, e) of planes * H, first the column adjoint
// (tmp[ox] = sum over the output rows that read this row of wy * g[oy][ox], contiguous and
// vectorised), then the row adjoint (gx[ix] += wx * tmp[ox]). gx: [planes, H, W] contiguous,
// zeros on entry; g: [planes, OH, OW] contiguous. The order of additions per element is fixed by
// the shapes, so it does not depend on the split.
template <class T, int TX>
void interpolate_adjoint_rows(const T* g, T* gx, std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                              const RowSources<T>& ys, const Taps<T>& tx, std::int64_t b, std::int64_t e) {
  const std::int64_t* xi = tx.index.data();
  const T* xw = tx.weight.data();
  std::vector<T> tmp(static_cast<std::size_t>(ow));
  for (std::int64_t r = b; r < e; ++r) {
    const std::int64_t p = r / h, iy = r - p * h;
    const std::int64_t k0 = ys.start[iy], k1 = ys.start[iy + 1];
    if (k0 == k1) continue;  // no output reads this row
    const T* gplane = g + p * oh * ow;
    T* t = tmp.data();
    {
      const T wy = ys.weight[k0];
      const T* grow = gplane + ys.out_row[k0] * ow;
      for (std::int64_t ox = 0; ox < ow; ++ox) t[ox] = wy * grow[ox];
    }
    for (std::int64_t k = k0 + 1; k < k1; ++k) {
      const T wy = ys.weight[k];
      const T* grow = gplane + ys.out_row[k] * ow;
      for (std::int64_t ox = 0; ox < ow; ++ox) t[ox] += wy * grow[ox];
    }
    T* drow = gx + r * w;
    for (std::int64_t ox = 0; ox < ow; ++ox) {
      const T v = t[ox];
      const std::int64_t* ii = xi + ox * TX;
      const T* ww = xw + ox * TX;
#pragma GCC unroll 4
      for (int q = 0; q < TX; ++q) drow[ii[q]] += ww[q] * v;
    }
  }
}

// Calls f.template operator()<TY, TX>() for the tap counts of a plan.
template <class F>
void dispatch_taps(int ty, int tx, F&& f) {
  if (ty == 1 && tx == 1) f.template operator()<1, 1>();
  else if (ty == 1 && tx == 2) f.template operator()<1, 2>();
  else if (ty == 1 && tx == 4) f.template operator()<1, 4>();
  else if (ty == 2 && tx == 2) f.template operator()<2, 2>();
  else if (ty == 4 && tx == 4) f.template operator()<4, 4>();
  else fail("interpolate: unexpected tap counts ", ty, " x ", tx);
}

// The y taps of a plan: an identity for 3-D inputs (one row).
template <class T>
Taps<T> y_taps(const InterpolatePlan& p, std::int64_t stride) {
  if (p.spatial == 1) {
    Taps<T> t;
    t.index = {0};
    t.weight = {T(1)};
    return t;
  }
  return make_taps<T>(p.mode, p.in[0], p.out[0], p.align_corners, p.scale[0], stride);
}

inline std::int64_t interpolate_row_grain(std::int64_t row_work) {
  return std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(row_work, 1));
}

// x4: [N, C, H, W] view (H == 1 for 3-D) -> [N, C, OH, OW] contiguous.
template <class T>
Tensor<T> interpolate_forward(const Tensor<T>& x4, const InterpolatePlan& p) {
  Tensor<T> out = Tensor<T>::empty({x4.size(0), x4.size(1), p.out[0], p.out[1]});
  if (out.numel() == 0) return out;
  const Taps<T> ty = y_taps<T>(p, x4.stride(2));
  const Taps<T> tx = make_taps<T>(p.mode, p.in[1], p.out[1], p.align_corners, p.scale[1], x4.stride(3));
  const PlaneLayout pl{x4.size(0) * x4.size(1), x4.size(1), x4.stride(0), x4.stride(1)};
  const std::int64_t rows = pl.planes * p.out[0];
  dispatch_taps(ty.count, tx.count, [&]<int TY, int TX>() {
    parallel_for(0, rows, interpolate_row_grain(p.out[1] * TY * TX), [&](std::int64_t b, std::int64_t e) {
      interpolate_rows<T, TY, TX>(x4.data(), pl, out.data(), p.out[0], p.out[1], ty, tx, b, e);
    });
  });
  return out;
}

// g: [N, C, OH, OW] -> gradient [N, C, H, W] contiguous.
template <class T>
Tensor<T> interpolate_backward(const Tensor<T>& g_in, const Shape& in4, const InterpolatePlan& p) {
  const Tensor<T> g = g_in.contiguous();
  Tensor<T> gx = Tensor<T>::zeros(in4);
  if (gx.numel() == 0) return gx;
  const std::int64_t h = in4[2], w = in4[3];
  const RowSources<T> ys = row_sources(y_taps<T>(p, 1), h);
  const Taps<T> tx = make_taps<T>(p.mode, p.in[1], p.out[1], p.align_corners, p.scale[1], 1);
  const std::int64_t rows = in4[0] * in4[1] * h;
  const std::int64_t pairs_per_row = static_cast<std::int64_t>(ys.out_row.size()) / h + 1;
  dispatch_taps(1, tx.count, [&]<int, int TX>() {
    parallel_for(0, rows, interpolate_row_grain(p.out[1] * (pairs_per_row + TX)), [&](std::int64_t b, std::int64_t e) {
      interpolate_adjoint_rows<T, TX>(g.data(), gx.data(), h, w, p.out[0], p.out[1], ys, tx, b, e);
    });
  });
  return gx;
}

inline Shape interpolate_output_shape(const Shape& in, const InterpolatePlan& p) {
  Shape s = in;
  if (p.spatial == 2) s[2] = p.out[0];
  s[s.rank() - 1] = p.out[1];
  return s;
}

inline std::vector<std::int64_t> area_size(const InterpolatePlan& p) {
  return p.spatial == 2 ? std::vector<std::int64_t>{p.out[0], p.out[1]} : std::vector<std::int64_t>{p.out[1]};
}
}  // namespace detail

// Resamples x ([N, C, W] or [N, C, H, W], any strides) as F.interpolate(x, **options).
template <class T>
Tensor<T> interpolate(const Tensor<T>& x, const InterpolateOptions& options) {
  static_assert(std::is_floating_point_v<T>, "interpolate: needs a floating-point tensor");
  FIBER_CHECK(x.defined(), "interpolate: undefined input");
  const detail::InterpolatePlan p = detail::plan_interpolation(x.shape(), options);
  if (p.mode == InterpolateMode::area)
    return p.spatial == 2 ? adaptive_avg_pool2d(x, detail::area_size(p)) : adaptive_avg_pool1d(x, p.out[1]);
  const Tensor<T> x4 = p.spatial == 1 ? x.unsqueeze(2) : x;
  return detail::interpolate_forward(x4, p).view(detail::interpolate_output_shape(x.shape(), p));
}

template <class T>
Var<T> interpolate(const Var<T>& x, const InterpolateOptions& options) {
  const detail::InterpolatePlan p = detail::plan_interpolation(x.shape(), options);
  if (p.mode == InterpolateMode::area)
    return p.spatial == 2 ? adaptive_avg_pool2d(x, detail::area_size(p)) : adaptive_avg_pool1d(x, p.out[1]);
  Tensor<T> out = interpolate(x.value(), options);
  if (!needs_graph(x)) return Var<T>(std::move(out));  // the backward saves shapes only
  const Shape in4 = p.spatial == 1 ? Shape{x.size(0), x.size(1), 1, x.size(2)} : x.shape();
  return record("interpolate", out, {&x}, [p, in = x.shape(), in4](const Tensor<T>& g, GradNeeds) {
    const Tensor<T> g4 = g.reshape({in4[0], in4[1], p.out[0], p.out[1]});
    return std::vector<Tensor<T>>{detail::interpolate_backward(g4, in4, p).view(in)};
  });
}

// F.upsample_bilinear(x, size): bilinear with align_corners = true. x: [N, C, H, W].
template <class X>
auto upsample_bilinear(const X& x, std::vector<std::int64_t> size) {
  return interpolate(x, InterpolateOptions{.size = std::move(size), .mode = InterpolateMode::bilinear, .align_corners = true});
}
// F.upsample_nearest(x, size): legacy nearest.
template <class X>
auto upsample_nearest(const X& x, std::vector<std::int64_t> size) {
  return interpolate(x, InterpolateOptions{.size = std::move(size), .mode = InterpolateMode::nearest});
}

}  // namespace fiber
