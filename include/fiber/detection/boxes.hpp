#pragma once
// Boxes as the official fine-grained code (maskrcnn_benchmark, GLIP) computes them: [x1, y1, x2, y2]
// in pixels with the inclusive "+1" convention (a box from x1 to x2 is x2 − x1 + 1 wide), and the
// box coder of its detection head.
//   box_iou(a [N, 4], b [M, 4]) -> [N, M]                      boxlist_iou
//   BoxCoder{}.encode(gt [A, 4], anchors [A, 4]) -> [A, 4]    (dx, dy, dw, dh) targets
//   BoxCoder{}.decode(codes [A, 4], anchors [A, 4]) -> [A, 4] boxes
// All in the tensors' own type, with the official order of operations, so that float32 results
// match the official float32 ones.
#include <cmath>
#include <cstdint>

#include "fiber/core/error.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber::detection {

namespace detail {
template <class T>
void check_boxes(const Tensor<T>& boxes, const char* what) {
  FIBER_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, what, " must be [N, 4] boxes (x1, y1, x2, y2), got ", boxes.shape());
}

// Width, height (inclusive, +1) and centre of one [x1, y1, x2, y2] row, as the box coder sees it.
template <class T>
struct CoderBox {
  T w, h, cx, cy;
  explicit CoderBox(const T* b)
      : w(b[2] - b[0] + T(1)), h(b[3] - b[1] + T(1)), cx(b[0] + T(0.5) * w), cy(b[1] + T(0.5) * h) {}
};
}  // namespace detail

// IoU of every pair, widths and heights counted with +1 (boxlist_iou). a: [N, 4], b: [M, 4].
template <class T>
Tensor<T> box_iou(const Tensor<T>& a, const Tensor<T>& b) {
  detail::check_boxes(a, "box_iou: first argument");
  detail::check_boxes(b, "box_iou: second argument");
  const Tensor<T> ac = a.contiguous(), bc = b.contiguous();
  const std::int64_t N = a.size(0), M = b.size(0);
  Tensor<T> out = Tensor<T>::empty({N, M});
  const T* pa = ac.data();
  const T* pb = bc.data();
  T* po = out.data();
  constexpr T one = T(1);
  for (std::int64_t i = 0; i < N; ++i) {
    const T* p = pa + 4 * i;
    const T area_a = (p[2] - p[0] + one) * (p[3] - p[1] + one);
    for (std::int64_t j = 0; j < M; ++j) {
      const T* q = pb + 4 * j;
      const T area_b = (q[2] - q[0] + one) * (q[3] - q[1] + one);
      const T w = std::max(std::min(p[2], q[2]) - std::max(p[0], q[0]) + one, T(0));
      const T h = std::max(std::min(p[3], q[3]) - std::max(p[1], q[1]) + one, T(0));
      const T inter = w * h;
      po[i * M + j] = inter / (area_a + area_b - inter);
    }
  }
  return out;
}

// The detection head's box coder (modeling/box_coder.py): weights (10, 10, 5, 5) and dw, dh
// clamped at log(1000 / 16) before exp when decoding.
struct BoxCoder {
  double wx = 10, wy = 10, ww = 5, wh = 5;
  double clip = std::log(1000.0 / 16);

  // Regression targets of gt boxes relative to anchors (row by row). gt, anchors: [A, 4].
  template <class T>
  Tensor<T> encode(const Tensor<T>& gt, const Tensor<T>& anchors) const {
    detail::check_boxes(gt, "BoxCoder::encode: gt");
    detail::check_boxes(anchors, "BoxCoder::encode: anchors");
    FIBER_CHECK(gt.size(0) == anchors.size(0), "BoxCoder::encode: ", gt.size(0), " gt boxes for ", anchors.size(0),
                " anchors (one per anchor)");
    const Tensor<T> g = gt.contiguous(), a = anchors.contiguous();
    Tensor<T> out = Tensor<T>::empty({gt.size(0), 4});
    for (std::int64_t i = 0; i < gt.size(0); ++i) {
      const detail::CoderBox<T> ex(a.data() + 4 * i), gb(g.data() + 4 * i);
      T* o = out.data() + 4 * i;
      o[0] = T(wx) * (gb.cx - ex.cx) / ex.w;
      o[1] = T(wy) * (gb.cy - ex.cy) / ex.h;
      o[2] = T(ww) * std::log(gb.w / ex.w);
      o[3] = T(wh) * std::log(gb.h / ex.h);
    }
    return out;
  }

  // Boxes from codes relative to anchors. codes, anchors: [A, 4]. x2 and y2 take the −1 of the
  // inclusive convention.
  template <class T>
  Tensor<T> decode(const Tensor<T>& codes, const Tensor<T>& anchors) const {
    detail::check_boxes(codes, "BoxCoder::decode: codes");
    detail::check_boxes(anchors, "BoxCoder::decode: anchors");
    FIBER_CHECK(codes.size(0) == anchors.size(0), "BoxCoder::decode: ", codes.size(0), " codes for ", anchors.size(0),
                " anchors (one per anchor)");
    const Tensor<T> c = codes.contiguous(), a = anchors.contiguous();
    Tensor<T> out = Tensor<T>::empty({codes.size(0), 4});
    for (std::int64_t i = 0; i < codes.size(0); ++i) {
      const detail::CoderBox<T> an(a.data() + 4 * i);
      const T* d = c.data() + 4 * i;
      const T dx = d[0] / T(wx), dy = d[1] / T(wy);
      const T dw = std::min(d[2] / T(ww), T(clip)), dh = std::min(d[3] / T(wh), T(clip));
      const T pcx = dx * an.w + an.cx, pcy = dy * an.h + an.cy;
      const T pw = std::exp(dw) * an.w, ph = std::exp(dh) * an.h;
      T* o = out.data() + 4 * i;
      o[0] = pcx - T(0.5) * pw;
      o[1] = pcy - T(0.5) * ph;
      o[2] = pcx + T(0.5) * pw - T(1);
      o[3] = pcy + T(0.5) * ph - T(1);
    }
    return out;
  }
};

}  // namespace fiber::detection
