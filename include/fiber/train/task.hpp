#pragma once
// What the Trainer needs from a task (a model, its data and its losses). A task is any type T
// with these members (the `Task` concept checks them at compile time):
//
//   std::vector<std::pair<std::string, Var<float>*>> parameters();
//       Every trainable parameter under its official state-dict name (nn::named_parameters of
//       the model). The optimiser groups them by these names (param_groups.hpp), the checkpoint
//       stores them under these names. Called once, when the Trainer is built: the pointers
//       must stay valid for the Trainer's life.
//   StepOutput forward_backward(fiber::Generator& gen);
//       One micro-batch: take the next batch, run forward, call backward on the UNSCALED
//       micro-batch loss (gradients accumulate in the parameters; the Trainer averages them over
//       the accumulation steps itself), return the named losses as doubles ("loss" = the total
//       that was back-propagated, plus parts such as "itc", "itm", "mlm") and the number of
//       samples (images) in the batch. All randomness (masking, dropout, sampling, shuffling)
//       must come from `gen` or from state saved by save_state, so that resume is exact.
//   void after_update();
//       Called after each optimiser step (clamp a temperature, update a momentum encoder, ...).
//   void save_state(TaskState& out) const;
//   void load_state(const TaskState& in);
//       Everything else the task needs to continue exactly: tensors (ITC queues, queue pointer
//       as a tensor or in the JSON) and a JSON object (data position, epoch, shuffling seed).
//       load_state receives exactly what save_state wrote.
//
// Optional:
//   std::map<std::string, double> evaluate();
//       Detected with a requires-expression (EvaluableTask); run every `eval_every` steps and
//       logged as "eval.<name>".
#include <nlohmann/json.hpp>

#include <concepts>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber::train {

// The result of one micro-batch.
struct StepOutput {
  std::map<std::string, double> losses;  // must hold "loss" (the total); parts by name
  std::int64_t samples = 0;              // images (or examples) in this micro-batch
};

// A task's own state in a checkpoint: tensors stored as "task.<name>" (float32) and a JSON object
// stored in the checkpoint's metadata.
struct TaskState {
  std::vector<std::pair<std::string, Tensor<float>>> tensors;
  nlohmann::json json = nlohmann::json::object();

  void put(std::string name, Tensor<float> t) { tensors.emplace_back(std::move(name), std::move(t)); }
  // The tensor `name` (fiber::Error naming it when absent).
  const Tensor<float>& get(const std::string& name) const {
    for (const auto& [n, t] : tensors)
      if (n == name) return t;
    fail("task state: no tensor named '", name, "' (the checkpoint was written by another task?)");
  }
};

template <class T>
concept Task = requires(T& task, const T& const_task, Generator& gen, TaskState& out, const TaskState& in) {
  { task.parameters() } -> std::convertible_to<std::vector<std::pair<std::string, Var<float>*>>>;
  { task.forward_backward(gen) } -> std::same_as<StepOutput>;
  task.after_update();
  const_task.save_state(out);
  task.load_state(in);
};

template <class T>
concept EvaluableTask = Task<T> && requires(T& task) {
  { task.evaluate() } -> std::convertible_to<std::map<std::string, double>>;
};

}  // namespace fiber::train
