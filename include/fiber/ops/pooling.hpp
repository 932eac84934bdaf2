#pragma once
// Adaptive average pooling (as F.adaptive_avg_pool2d / F.adaptive_avg_pool1d): output cell i of
// a dimension of size n pooled to m averages input positions [floor(i*n/m), ceil((i+1)*n/m)).
// Windows may overlap (m does not divide n) and may be used for upsampling (m > n).
//
//   Tensor<float> y = adaptive_avg_pool2d(x, {7, 7});   // x: [N, C, H, W] -> [N, C, 7, 7]
//
// Inputs are [N, C, H, W] or [C, H, W] (2-d), [N, C, L] or [C, L] (1-d), any strides. The
// backward adds each output's share into its window; threads own disjoint input rows and
// visit the outputs in a fixed order, so results are the same for any thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber {

namespace detail {
// Window [begin[i], end[i]) of every output cell along one dimension.
struct PoolWindows {
  std::vector<std::int64_t> begin, end;
};
inline PoolWindows adaptive_windows(std::int64_t in, std::int64_t out) {
  PoolWindows w;
  w.begin.resize(static_cast<std::size_t>(out));
  w.end.resize(static_cast<std::size_t>(out));
  for (std::int64_t i = 0; i < out; ++i) {
    w.begin[i] = (i * in) / out;
    w.end[i] = ((i + 1) * in + out - 1) / out;
  }
  return w;
}

// The planes of a pooling input: x viewed as [planes, H, W] with its own strides.
struct PoolGeometry {
  std::int64_t planes = 0, channels = 0, h = 0, w = 0, oh = 0, ow = 0;
  std::int64_t s_n = 0, s_c = 0, s_h = 0, s_w = 0;
};

template <class T>
PoolGeometry pool_geometry(const Tensor<T>& x4, std::int64_t oh, std::int64_t ow) {
  PoolGeometry g;
  g.channels = x4.size(1);
  g.planes = x4.size(0) * g.channels;
  g.h = x4.size(2);
  g.w = x4.size(3);
  g.oh = oh;
  g.ow = ow;
  g.s_n = x4.stride(0);
  g.s_c = x4.stride(1);
  g.s_h = x4.stride(2);
  g.s_w = x4.stride(3);
  return g;
}

// The sum of p[0, n) in a fixed order: eight interleaved partial sums (vectorisable), then the
// tail. The order depends only on n, never on threads.
template <class T>
T sum_run(const T* p, std::int64_t n) {
  T lanes[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) lanes[k] += p[i + k];
  T s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; i < n; ++i) s += p[i];
  return s;
}

// x4: [N, C, H, W] (any strides) -> [N, C, oh, ow] contiguous. Windows of contiguous rows are
// summed with sum_run, others element by element.
template <class T>
Tensor<T> adaptive_avg_pool_forward(const Tensor<T>& x4, std::int64_t oh, std::int64_t ow) {
  const PoolGeometry g = pool_geometry(x4, oh, ow);
  Tensor<T> out = Tensor<T>::empty({x4.size(0), x4.size(1), oh, ow});
  if (out.numel() == 0) return out;
  const PoolWindows wh = adaptive_windows(g.h, oh), ww = adaptive_windows(g.w, ow);
  const T* src = x4.data();
  T* dst = out.data();
  const std::int64_t cells = std::max<std::int64_t>(1, (g.h / std::max<std::int64_t>(oh, 1) + 1) * g.w);
  parallel_for(0, g.planes * oh, std::max<std::int64_t>(1, 32768 / cells), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      const std::int64_t p = r / oh, i = r - p * oh;
      const T* plane = src + (p / g.channels) * g.s_n + (p % g.channels) * g.s_c;
      const std::int64_t h0 = wh.begin[i], h1 = wh.end[i];
      T* orow = dst + r * ow;
      for (std::int64_t j = 0; j < ow; ++j) {
        const std::int64_t w0 = ww.begin[j], w1 = ww.end[j];
        T sum = 0;
        if (g.s_w == 1 && w0 == 0 && w1 == g.w && g.s_h == g.w) {
          sum = sum_run(plane + h0 * g.w, (h1 - h0) * g.w);  // the window is one contiguous run
        } else if (g.s_w == 1) {
          for (std::int64_t y = h0; y < h1; ++y) sum += sum_run(plane + y * g.s_h + w0, w1 - w0);
        } else {
          for (std::int64_t y = h0; y < h1; ++y) {
            const T* row = plane + y * g.s_h;
            for (std::int64_t x = w0; x < w1; ++x) sum += row[x * g.s_w];
          }
        }
        orow[j] = sum / T(h1 - h0) / T(w1 - w0);
      }
    }
  });
  return out;
}

// The adjoint: g [N, C, oh, ow] -> gx [N, C, H, W] (contiguous).
template <class T>
Tensor<T> adaptive_avg_pool_backward(const Tensor<T>& g_in, const Shape& in4) {
  const Tensor<T> g = g_in.contiguous();
  const std::int64_t planes = in4[0] * in4[1], h = in4[2], w = in4[3], oh = g.size(2), ow = g.size(3);
  Tensor<T> gx = Tensor<T>::zeros(in4);
  if (gx.numel() == 0 || g.numel() == 0) return gx;
  const PoolWindows wh = adaptive_windows(h, oh), ww = adaptive_windows(w, ow);
  const T* gp = g.data();
  T* dp = gx.data();
  // Tasks own input rows [lo, hi) of a plane and walk the outputs in (i, y, j, x) order.
  parallel_for(0, planes * h, std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(w, 1)), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t p = b / h; p * h < e; ++p) {
      const std::int64_t lo = std::max(b - p * h, std::int64_t(0)), hi = std::min(e - p * h, h);
      const T* gplane = gp + p * oh * ow;
      T* dplane = dp + p * h * w;
      for (std::int64_t i = 0; i < oh; ++i) {
        const std::int64_t h0 = std::max(wh.begin[i], lo), h1 = std::min(wh.end[i], hi);
        const T kh = T(wh.end[i] - wh.begin[i]);
        for (std::int64_t y = h0; y < h1; ++y) {
          T* drow = dplane + y * w;
          for (std::int64_t j = 0; j < ow; ++j) {
            const T share = gplane[i * ow + j] / kh / T(ww.end[j] - ww.begin[j]);
            for (std::int64_t x = ww.begin[j]; x < ww.end[j]; ++x) drow[x] += share;
          }
        }
      }
    }
  });
  return gx;
}

// Normalises a pooling input to [N, C, H, W] (a view) and checks sizes; `spatial` is 1 or 2.
template <class T>
Tensor<T> as_pool_input(const Tensor<T>& x, int spatial, const char* op) {
  FIBER_CHECK(x.defined(), op, ": undefined input");
  FIBER_CHECK(x.dim() == spatial + 1 || x.dim() == spatial + 2, op, ": expects a ", spatial + 1, "-D or ", spatial + 2,
              "-D input (", spatial == 2 ? "[C, H, W] or [N, C, H, W]" : "[C, L] or [N, C, L]", "), got shape ", x.shape());
  for (int d = x.dim() - spatial; d < x.dim(); ++d)
    FIBER_CHECK(x.size(d) > 0, op, ": spatial dimension ", d, " of shape ", x.shape(), " is empty (must be > 0)");
  Tensor<T> v = x.dim() == spatial + 1 ? x.unsqueeze(0) : x;
  return spatial == 1 ? v.unsqueeze(2) : v;
}

inline std::vector<std::int64_t> pool_output_size(const std::vector<std::int64_t>& size, int spatial, const char* op) {
  FIBER_CHECK(size.size() == 1 || static_cast<int>(size.size()) == spatial, op, ": output size needs 1 or ", spatial,
              " values, got ", size.size());
  std::vector<std::int64_t> out(static_cast<std::size_t>(spatial), size[0]);
  if (size.size() > 1) out = size;
  for (std::size_t i = 0; i < out.size(); ++i)
    FIBER_CHECK(out[i] >= 0, op, ": output size ", out[i], " (dimension ", i, ") must not be negative");
  return out;
}

template <class T>
Tensor<T> adaptive_avg_pool(const Tensor<T>& x, const std::vector<std::int64_t>& size, int spatial, const char* op) {
  static_assert(std::is_floating_point_v<T>, "adaptive_avg_pool: needs a floating-point tensor");
  const Tensor<T> x4 = as_pool_input(x, spatial, op);
  const auto os = pool_output_size(size, spatial, op);
  Tensor<T> out = adaptive_avg_pool_forward(x4, spatial == 2 ? os[0] : 1, os.back());
  Shape s = x.shape();
  for (int i = 0; i < spatial; ++i) s[x.dim() - spatial + i] = os[i];
  return out.view(s);
}

template <class T>
Var<T> adaptive_avg_pool(const Var<T>& x, const std::vector<std::int64_t>& size, int spatial, const char* op) {
  Tensor<T> out = adaptive_avg_pool(x.value(), size, spatial, op);
  if (!needs_graph(x)) return Var<T>(std::move(out));  // the backward saves shapes only
  const Shape in4 = as_pool_input(x.value(), spatial, op).shape();
  const auto os = pool_output_size(size, spatial, op);
  const Shape out4{in4[0], in4[1], spatial == 2 ? os[0] : 1, os.back()};
  return record(op, out, {&x}, [in = x.shape(), in4, out4](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{adaptive_avg_pool_backward(g.reshape(out4), in4).view(in)};
  });
}
}  // namespace detail

// x: [N, C, H, W] or [C, H, W]; output_size: {oh, ow} or {s} for both.
template <class T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, const std::vector<std::int64_t>& output_size) {
  return detail::adaptive_avg_pool(x, output_size, 2, "adaptive_avg_pool2d");
}
template <class T>
Var<T> adaptive_avg_pool2d(const Var<T>& x, const std::vector<std::int64_t>& output_size) {
  return detail::adaptive_avg_pool(x, output_size, 2, "adaptive_avg_pool2d");
}
// x: [N, C, L] or [C, L].
template <class T>
Tensor<T> adaptive_avg_pool1d(const Tensor<T>& x, std::int64_t output_size) {
  return detail::adaptive_avg_pool(x, {output_size}, 1, "adaptive_avg_pool1d");
}
template <class T>
Var<T> adaptive_avg_pool1d(const Var<T>& x, std::int64_t output_size) {
  return detail::adaptive_avg_pool(x, {output_size}, 1, "adaptive_avg_pool1d");
}

}  // namespace fiber
