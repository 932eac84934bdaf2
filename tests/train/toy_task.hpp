#pragma once
// A small task for the trainer tests: a 4-8-1 MLP regressing generated data. It has everything
// exact resume must carry: randomness drawn from the trainer's generator (input noise), a data
// position (which rows come next) and queue-like state (the last 8 batch losses, feeding a
// regulariser), all saved through save_state. Parameter names hit three optimiser groups.
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fiber/fiber.hpp"

namespace toy {

using fiber::Tensor;
using fiber::Var;

struct Mlp {
  Var<float> w1, b1, w2;
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    fiber::nn::visit_parameter<float>(f, prefix, "encoder.dense.weight", w1);
    fiber::nn::visit_parameter<float>(f, prefix, "encoder.dense.bias", b1);
    fiber::nn::visit_parameter<float>(f, prefix, "itm_score.fc.weight", w2);
  }
};

struct ToyTask {
  Mlp model;
  Tensor<float> xs, ys;  // [64, 4], [64, 1]
  std::int64_t position = 0;
  Tensor<float> queue;   // [8] recent batch losses
  std::int64_t queue_ptr = 0;
  int after_updates = 0;
  bool emit_loss = true;

  explicit ToyTask(std::uint64_t init_seed) {
    fiber::Generator data(7);  // the data never changes; the weights depend on init_seed
    xs = fiber::randn<float>({64, 4}, data);
    Tensor<float> w = fiber::randn<float>({4, 1}, data);
    ys = Tensor<float>::empty({64, 1});
    for (int i = 0; i < 64; ++i) {
      float s = 0;
      for (int j = 0; j < 4; ++j) s += xs.at({i, j}) * w.at({j, 0});
      ys.at({i, 0}) = std::tanh(s);
    }
    fiber::Generator init(init_seed);
    model.w1 = Var<float>::parameter(fiber::randn<float>({8, 4}, init, 0.0f, 0.5f));
    model.b1 = Var<float>::parameter(Tensor<float>::zeros({8}));
    model.w2 = Var<float>::parameter(fiber::randn<float>({1, 8}, init, 0.0f, 0.5f));
    queue = Tensor<float>::zeros({8});
  }

  std::vector<std::pair<std::string, Var<float>*>> parameters() { return fiber::nn::named_parameters<float>(model); }

  fiber::train::StepOutput forward_backward(fiber::Generator& gen) {
    constexpr std::int64_t batch = 4;
    Tensor<float> x = Tensor<float>::empty({batch, 4}), y = Tensor<float>::empty({batch, 1});
    const Tensor<float> noise = fiber::randn<float>({batch, 4}, gen, 0.0f, 0.1f);
    for (std::int64_t r = 0; r < batch; ++r) {
      const std::int64_t row = (position + r) % 64;
      for (std::int64_t j = 0; j < 4; ++j) x.at({r, j}) = xs.at({row, j}) + noise.at({r, j});
      y.at({r, 0}) = ys.at({row, 0});
    }
    position = (position + batch) % 64;
    Var<float> h = fiber::gelu(fiber::linear(Var<float>(x), model.w1, model.b1));
    Var<float> pred = fiber::linear(h, model.w2);
    Var<float> diff = pred - Var<float>(y);
    Var<float> mse = fiber::mean(diff * diff);
    float queue_mean = 0;
    for (float q : queue.to_vector()) queue_mean += q / 8.0f;
    Var<float> reg = fiber::sum(model.w2 * model.w2) * (0.01f * queue_mean);
    Var<float> loss = mse + reg;
    loss.backward();
    queue.at({queue_ptr}) = mse.value().item();
    queue_ptr = (queue_ptr + 1) % 8;
    fiber::train::StepOutput out;
    if (emit_loss) out.losses["loss"] = loss.value().item();
    out.losses["mse"] = mse.value().item();
    out.losses["reg"] = reg.value().item();
    out.samples = batch;
    return out;
  }

  void after_update() { ++after_updates; }

  void save_state(fiber::train::TaskState& out) const {
    out.put("queue", queue.clone());
    out.json["position"] = position;
    out.json["queue_ptr"] = queue_ptr;
  }
  void load_state(const fiber::train::TaskState& in) {
    queue = in.get("queue").clone();
    position = in.json.at("position").get<std::int64_t>();
    queue_ptr = in.json.at("queue_ptr").get<std::int64_t>();
  }
};

}  // namespace toy
