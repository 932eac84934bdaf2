#pragma once
// Image-text contrastive loss of coarse FIBER (FIBER_SPEC §2; official objectives.compute_itc,
// after ALBEF). The queue holds earlier batches' features as extra negatives; it is not a
// momentum encoder: it stores the current features, detached.
//
//   sim_i2t = image_feat @ [text_feat^T (detached) | text_queue] / temp    [B, B + Q]
//   sim_t2i = text_feat  @ [image_feat^T (detached) | image_queue] / temp  [B, B + Q]
//   loss    = (CE(sim_i2t, diag) + CE(sim_t2i, diag)) / 2
//
// In each direction the keys (the positives included) are detached, so a gradient reaches an
// encoder only through its own query; temp receives the gradient of both directions. The caller
// clamps temp to [0.001, 1] before the forward (clamp_temperature), as the official step does.
#include <algorithm>
#include <cstdint>

#include "fiber/autograd/grad_mode.hpp"
#include "fiber/autograd/var.hpp"
#include "fiber/ops/cross_entropy.hpp"
#include "fiber/ops/join.hpp"
#include "fiber/ops/linalg.hpp"

namespace fiber::losses {

template <class T>
struct ItcOutput {
  Var<T> loss;        // [] (i2t + t2i) / 2
  Var<T> loss_i2t;    // []
  Var<T> loss_t2i;    // []
  Tensor<T> sim_i2t;  // [B, B + Q] detached logits: the hard-negative draw reads them
  Tensor<T> sim_t2i;  // [B, B + Q]
};

// Clamps the learnable temperature to [0.001, 1] in place (torch.no_grad() temp.clamp_).
template <class T>
void clamp_temperature(Var<T>& temp) {
  const Tensor<T>& t = temp.value();
  t.assign(clamp(t, T(0.001), T(1)));
}

// image_feat, text_feat: [B, H] (L2-normalised ITC features); temp: []; image_queue, text_queue:
// [H, Q] or undefined (no queue).
template <class T>
ItcOutput<T> itc_loss(const Var<T>& image_feat, const Var<T>& text_feat, const Var<T>& temp,
                      const Tensor<T>& image_queue = {}, const Tensor<T>& text_queue = {}) {
  FIBER_CHECK(image_feat.dim() == 2 && image_feat.shape() == text_feat.shape(), "itc_loss: image features ",
              image_feat.shape(), " and text features ", text_feat.shape(), " must both be [B, H]");
  FIBER_CHECK(temp.numel() == 1, "itc_loss: the temperature must be a scalar, got ", temp.shape());
  FIBER_CHECK(image_queue.defined() == text_queue.defined(), "itc_loss: give both queues or neither");
  const std::int64_t B = image_feat.size(0), H = image_feat.size(1);
  if (image_queue.defined())
    FIBER_CHECK(image_queue.dim() == 2 && image_queue.size(0) == H && image_queue.shape() == text_queue.shape(),
                "itc_loss: queues must be [", H, ", Q], got ", image_queue.shape(), " and ", text_queue.shape());
  // keys: [H, B + Q], constants of the graph
  auto keys = [&](const Var<T>& feat, const Tensor<T>& queue) {
    const Tensor<T> own = feat.value().t();
    return Var<T>(queue.defined() ? concat<T>({own, queue}, 1) : own);
  };
  ItcOutput<T> out;
  const Var<T> sim_i2t(matmul(image_feat, keys(text_feat, text_queue)) / temp);
  const Var<T> sim_t2i(matmul(text_feat, keys(image_feat, image_queue)) / temp);
  // The positives are the diagonal: column b of row b.
  const Tensor<std::int64_t> diag = Tensor<std::int64_t>::arange(B);
  out.loss_i2t = cross_entropy(sim_i2t, diag);
  out.loss_t2i = cross_entropy(sim_t2i, diag);
  out.loss = Var<T>((out.loss_i2t + out.loss_t2i) * T(0.5));
  out.sim_i2t = sim_i2t.value();
  out.sim_t2i = sim_t2i.value();
  return out;
}

}  // namespace fiber::losses
