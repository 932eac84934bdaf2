#pragma once
// The fine-grained training losses (modeling/rpn/loss.py, ATSSLossComputation.__call__ with
// USE_DOT_PRODUCT_TOKEN_LOSS, FIBER_SPEC §3 "Losses"):
//   token       sigmoid focal loss (α 0.25, γ 2) of the dot-product grounding logits against the
//               ATSS token targets, over the text-masked tokens, / max(#positives, 1)
//   box         GIoU of the decoded regression against the decoded target of each positive anchor,
//               weighted by its centerness target, / Σ centerness targets, × 2 (REG_LOSS_WEIGHT)
//   centerness  BCE with logits against the centerness targets (sum) / max(#positives, 1)
// The classification loss of the official head is multiplied by 0 there and is not computed here.
//
// token_sigmoid_focal_loss and giou_loss are single fused nodes with hand-derived backwards (the
// logits are [N, A, 256]: millions of elements); their per-element formulas are the official ones.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/detection/atss.hpp"
#include "fiber/ops/binary_cross_entropy.hpp"
#include "fiber/ops/index.hpp"
#include "fiber/ops/join.hpp"

namespace fiber::detection {

struct FocalOptions {
  double alpha = 0.25;  // TOKEN_ALPHA; < 0: no α weighting
  double gamma = 2.0;   // TOKEN_GAMMA
};

namespace detail {

// One element of the binary focal loss (token_sigmoid_binary_focal_loss) and its derivative in x:
//   ce = BCE-with-logits(x, t), p_t = p·t + (1 − p)(1 − t), loss = α_t · ce · (1 − p_t)^γ.
template <class T>
struct FocalTerm {
  T loss, dloss;
};
template <class T>
inline FocalTerm<T> focal_term(T x, T t, T alpha, T gamma) {
  const T p = T(1) / (T(1) + std::exp(-x));
  const T ce = std::max(x, T(0)) - x * t + std::log1p(std::exp(-std::abs(x)));
  const T q = T(1) - (p * t + (T(1) - p) * (T(1) - t));  // 1 − p_t
  const T m = gamma == T(0) ? T(1) : std::pow(q, gamma);
  // d(1 − p_t)/dx = −p(1 − p)(2t − 1); dm/dx = γ q^(γ−1) · that (0 when γ = 0).
  const T dm = gamma == T(0) ? T(0) : gamma * std::pow(q, gamma - T(1)) * (-(p * (T(1) - p)) * (T(2) * t - T(1)));
  const T at = alpha < T(0) ? T(1) : alpha * t + (T(1) - alpha) * (T(1) - t);
  return {at * ce * m, at * ((p - t) * m + ce * dm)};
}

constexpr std::int64_t kLossBlockRows = 64;  // fixed blocks: sums independent of the thread count

}  // namespace detail

// Σ over the text-masked elements of the binary token focal loss. logits: [N, A, L] (Var),
// targets: [N, A, L] (0/1), text_mask: [N, L] (> 0 where a token is real) or undefined (all).
template <class T>
Var<T> token_sigmoid_focal_loss(const Var<T>& logits, const Tensor<T>& targets, const Tensor<T>& text_mask,
                                const FocalOptions& opt = {}) {
  FIBER_CHECK(logits.dim() == 3, "token_sigmoid_focal_loss: logits must be [N, A, L], got ", logits.shape());
  FIBER_CHECK(targets.shape() == logits.shape(), "token_sigmoid_focal_loss: targets of shape ", targets.shape(),
              " for logits of shape ", logits.shape());
  const std::int64_t N = logits.size(0), A = logits.size(1), L = logits.size(2);
  FIBER_CHECK(!text_mask.defined() || text_mask.shape() == Shape({N, L}), "token_sigmoid_focal_loss: text mask must be [",
              N, ", ", L, "], got ", text_mask.shape());
  FIBER_CHECK(opt.gamma >= 0 && std::isfinite(opt.gamma) && opt.alpha <= 1, "token_sigmoid_focal_loss: gamma ", opt.gamma,
              " must be >= 0 and alpha ", opt.alpha, " at most 1");
  const Tensor<T> x = logits.value().contiguous(), t = targets.contiguous();
  const Tensor<T> mask = text_mask.defined() ? text_mask.contiguous() : Tensor<T>();
  const bool need_grad = needs_graph(logits);
  Tensor<T> dx = need_grad ? Tensor<T>::zeros(logits.shape()) : Tensor<T>();
  const std::int64_t rows = N * A, blocks = (rows + detail::kLossBlockRows - 1) / detail::kLossBlockRows;
  std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
  const T alpha = T(opt.alpha), gamma = T(opt.gamma);
  parallel_for(0, blocks, 1, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      double s = 0;
      for (std::int64_t r = b * detail::kLossBlockRows; r < std::min(rows, (b + 1) * detail::kLossBlockRows); ++r) {
        const T* m = mask.defined() ? mask.data() + (r / A) * L : nullptr;
        for (std::int64_t l = 0; l < L; ++l) {
          if (m && !(m[l] > T(0))) continue;
          const auto f = detail::focal_term(x.data()[r * L + l], t.data()[r * L + l], alpha, gamma);
          s += double(f.loss);
          if (need_grad) dx.data()[r * L + l] = f.dloss;
        }
      }
      partial[static_cast<std::size_t>(b)] = s;
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  Tensor<T> out = Tensor<T>::full({}, T(total));
  if (!need_grad) return Var<T>(std::move(out));
  return record("token_sigmoid_focal_loss", std::move(out), {&logits},
                [dx = std::move(dx)](const Tensor<T>& g, GradNeeds) {
                  return std::vector<Tensor<T>>{Tensor<T>(dx * g.item())};
                });
}

namespace detail {
// d max(a, b) / d a as torch.maximum: 1, 0, or ½ on ties (and the same for min).
template <class T>
inline T pick_first(T a, T b, bool larger) {
  if (a == b) return T(0.5);
  return (larger ? a > b : a < b) ? T(1) : T(0);
}
}  // namespace detail

// Σ w_i · (1 − GIoU(decode(codes_i), decode(target_codes_i))) over P positive anchors (GIoULoss):
// the predicted x2, y2 are raised to x1, y1 where the decoded box is inverted, areas without +1,
// 1e-7 added to the union and the enclosing area. weight: [P] or undefined (the official sums the
// unweighted losses also when the weights sum to 0). codes (Var), target_codes, anchors: [P, 4].
template <class T>
Var<T> giou_loss(const Var<T>& codes, const Tensor<T>& target_codes, const Tensor<T>& anchors, const Tensor<T>& weight,
                 const BoxCoder& coder = {}) {
  const std::int64_t P = codes.dim() == 2 ? codes.size(0) : -1;
  FIBER_CHECK(P >= 0 && codes.size(1) == 4 && target_codes.shape() == codes.shape() && anchors.shape() == codes.shape(),
              "giou_loss: codes, target codes and anchors must all be [P, 4], got ", codes.shape(), ", ",
              target_codes.shape(), " and ", anchors.shape());
  FIBER_CHECK(!weight.defined() || weight.shape() == Shape({P}), "giou_loss: weight must be [", P, "], got ", weight.shape());
  const Tensor<T> pred = coder.decode(codes.value(), anchors), tgt = coder.decode(target_codes, anchors);
  const Tensor<T> a = anchors.contiguous(), c = codes.value().contiguous();
  const Tensor<T> w = weight.defined() ? weight.contiguous() : Tensor<T>();
  double wsum = 0;
  if (w.defined())
    for (std::int64_t i = 0; i < P; ++i) wsum += double(w.data()[i]);
  const bool weighted = w.defined() && wsum > 0;
  const bool need_grad = needs_graph(codes);
  Tensor<T> dcodes = need_grad ? Tensor<T>::zeros({P, 4}) : Tensor<T>();
  double total = 0;
  for (std::int64_t i = 0; i < P; ++i) {
    const T* p = pred.data() + 4 * i;
    const T* q = tgt.data() + 4 * i;
    const T x1 = p[0], y1 = p[1], x2 = std::max(p[0], p[2]), y2 = std::max(p[1], p[3]);
    const T pa = (x2 - x1) * (y2 - y1);
    const T ta = (q[2] - q[0]) * (q[3] - q[1]);
    const T ix1 = std::max(x1, q[0]), iy1 = std::max(y1, q[1]), ix2 = std::min(x2, q[2]), iy2 = std::min(y2, q[3]);
    const bool overlap = iy2 > iy1 && ix2 > ix1;
    const T ai = overlap ? (ix2 - ix1) * (iy2 - iy1) : T(0);
    const T ex1 = std::min(x1, q[0]), ey1 = std::min(y1, q[1]), ex2 = std::max(x2, q[2]), ey2 = std::max(y2, q[3]);
    const T ae = (ex2 - ex1) * (ey2 - ey1) + T(1e-7);
    const T au = pa + ta - ai + T(1e-7);
    const T iou = ai / au;
    const T giou = iou - (ae - au) / ae;
    const T wi = weighted ? w.data()[i] : T(1);
    total += double(wi * (T(1) - giou));
    if (!need_grad) continue;
    // loss = 1 − ai/au + (ae − au)/ae = 2 − ai/au − au/ae; gradients with respect to the box
    // (x1, y1, x2, y2) after the max, then through the max, then through the decoder.
    const T d_ai = -T(1) / au;                                   // ∂loss/∂ai through iou (au held)
    const T d_au = ai / (au * au) - T(1) / ae;                   // ∂loss/∂au
    const T d_ae = au / (ae * ae);                               // ∂loss/∂ae
    const T g_ai = d_ai - d_au;                                  // au = pa + ta − ai
    T gx1 = -(y2 - y1) * d_au, gx2 = (y2 - y1) * d_au;          // through pa
    T gy1 = -(x2 - x1) * d_au, gy2 = (x2 - x1) * d_au;
    if (overlap) {
      gx1 += -(iy2 - iy1) * g_ai * detail::pick_first(x1, q[0], true);
      gx2 += (iy2 - iy1) * g_ai * detail::pick_first(x2, q[2], false);
      gy1 += -(ix2 - ix1) * g_ai * detail::pick_first(y1, q[1], true);
      gy2 += (ix2 - ix1) * g_ai * detail::pick_first(y2, q[3], false);
    }
    gx1 += -(ey2 - ey1) * d_ae * detail::pick_first(x1, q[0], false);
    gx2 += (ey2 - ey1) * d_ae * detail::pick_first(x2, q[2], true);
    gy1 += -(ex2 - ex1) * d_ae * detail::pick_first(y1, q[1], false);
    gy2 += (ex2 - ex1) * d_ae * detail::pick_first(y2, q[3], true);
    // x2 = max(p0, p2): p2 gets gx2 where it is the larger, p0 where the box is inverted.
    const T kx = detail::pick_first(p[2], p[0], true), ky = detail::pick_first(p[3], p[1], true);
    const T g0 = gx1 + (T(1) - kx) * gx2, g2 = kx * gx2, g1 = gy1 + (T(1) - ky) * gy2, g3 = ky * gy2;
    // Decoder: x1 = cx − pw/2, x2 = cx + pw/2 − 1 with cx = c0/wx · w + ctr, pw = exp(min(c2/ww, clip)) · w.
    const detail::CoderBox<T> an(a.data() + 4 * i);
    const T* ci = c.data() + 4 * i;
    const T pw = p[2] - p[0] + T(1), ph = p[3] - p[1] + T(1);  // exp(dw)·w, exp(dh)·h
    const T clamp_w = ci[2] / T(coder.ww) < T(coder.clip) ? T(1) : T(0);
    const T clamp_h = ci[3] / T(coder.wh) < T(coder.clip) ? T(1) : T(0);
    T* d = dcodes.data() + 4 * i;
    d[0] = wi * (g0 + g2) * an.w / T(coder.wx);
    d[1] = wi * (g1 + g3) * an.h / T(coder.wy);
    d[2] = wi * (g2 - g0) * T(0.5) * pw / T(coder.ww) * clamp_w;
    d[3] = wi * (g3 - g1) * T(0.5) * ph / T(coder.wh) * clamp_h;
  }
  Tensor<T> out = Tensor<T>::full({}, T(total));
  if (!need_grad) return Var<T>(std::move(out));
  return record("giou_loss", std::move(out), {&codes}, [dcodes = std::move(dcodes)](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{Tensor<T>(dcodes * g.item())};
  });
}

template <class T>
struct GroundingLosses {
  Var<T> token, box, centerness;  // box already × the regression weight
  std::int64_t positives = 0;
  Var<T> total() const { return Var<T>(token + box + centerness); }
};

struct GroundingLossOptions {
  FocalOptions focal{};
  double box_weight = 2.0;  // MODEL.ATSS.REG_LOSS_WEIGHT
  BoxCoder coder{};
};

// The three losses of a batch. logits: [N, A, L] dot-product grounding logits, box_regression:
// [N, A, 4], centerness: [N, A] (logits), anchors: [A, 4] (the same for every image of the padded
// batch), targets: one AtssTargets per image (atss_targets over these anchors), text_mask: [N, L].
// Anchor order everywhere: levels one after another, each row-major (the official flattening).
template <class T>
GroundingLosses<T> grounding_losses(const Var<T>& logits, const Var<T>& box_regression, const Var<T>& centerness,
                                    const Tensor<T>& anchors, std::type_identity_t<std::span<const AtssTargets<T>>> targets,
                                    const Tensor<T>& text_mask, const GroundingLossOptions& opt = {}) {
  const auto N = std::int64_t(targets.size());
  const std::int64_t A = anchors.dim() == 2 ? anchors.size(0) : -1;
  FIBER_CHECK(A >= 0 && anchors.size(1) == 4, "grounding_losses: anchors must be [A, 4], got ", anchors.shape());
  FIBER_CHECK(logits.dim() == 3 && logits.size(0) == N && logits.size(1) == A, "grounding_losses: logits must be [", N,
              ", ", A, ", L] for ", N, " images of ", A, " anchors, got ", logits.shape());
  FIBER_CHECK(box_regression.shape() == Shape({N, A, 4}), "grounding_losses: box regression must be [", N, ", ", A,
              ", 4], got ", box_regression.shape());
  FIBER_CHECK(centerness.shape() == Shape({N, A}), "grounding_losses: centerness must be [", N, ", ", A, "], got ",
              centerness.shape());
  const std::int64_t L = logits.size(2);
  std::vector<Tensor<T>> token_rows, box_rows;  // per image [A, L] and [A, 4]
  std::vector<std::int64_t> pos;                // flat index n·A + a of every positive anchor
  for (std::int64_t n = 0; n < N; ++n) {
    const AtssTargets<T>& t = targets[static_cast<std::size_t>(n)];
    FIBER_CHECK(std::int64_t(t.matched.size()) == A && t.token_targets.shape() == Shape({A, L}) &&
                    t.box_targets.shape() == Shape({A, 4}),
                "grounding_losses: the targets of image ", n, " are not for ", A, " anchors and ", L, " tokens");
    token_rows.push_back(t.token_targets);
    box_rows.push_back(t.box_targets);
    for (std::int64_t a = 0; a < A; ++a)
      if (t.matched[static_cast<std::size_t>(a)] >= 0) pos.push_back(n * A + a);
  }
  const Tensor<T> token_targets = concat(token_rows, 0).reshape({N, A, L});
  GroundingLosses<T> out;
  const auto P = std::int64_t(pos.size());
  out.positives = P;
  const T num_pos = T(std::max<double>(double(P), 1.0));
  out.token = Var<T>(token_sigmoid_focal_loss(logits, token_targets, text_mask, opt.focal) / num_pos);
  if (P == 0) {  // the official sums of empty selections: zero losses that still reach the graph
    out.box = Var<T>(sum(box_regression) * T(0));
    out.centerness = Var<T>(sum(centerness) * T(0));
    return out;
  }
  const Tensor<std::int64_t> idx = Tensor<std::int64_t>::from_data({P}, pos);
  std::vector<std::int64_t> pos_anchor(pos.size());
  for (std::size_t k = 0; k < pos.size(); ++k) pos_anchor[k] = pos[k] % A;
  const Tensor<T> pos_targets = index_select(concat(box_rows, 0), 0, idx);
  const Tensor<T> pos_anchors = index_select(anchors, 0, Tensor<std::int64_t>::from_data({P}, pos_anchor));
  const Tensor<T> ctr = centerness_targets(pos_targets, pos_anchors, opt.coder);
  double ctr_sum = 0;
  for (std::int64_t k = 0; k < P; ++k) ctr_sum += double(ctr.data()[k]);
  const Var<T> pos_codes = index_select(box_regression.reshape({N * A, 4}), 0, idx);
  out.box = Var<T>(giou_loss(pos_codes, pos_targets, pos_anchors, ctr, opt.coder) * T(opt.box_weight / ctr_sum));
  const Var<T> pos_ctr = index_select(centerness.reshape({N * A}), 0, idx);
  BinaryCrossEntropyOptions<T> bce;
  bce.reduction = Reduction::sum;
  out.centerness = Var<T>(binary_cross_entropy_with_logits(pos_ctr, Var<T>(ctr), bce) / num_pos);
  return out;
}

}  // namespace fiber::detection
