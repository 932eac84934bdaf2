#pragma once
// The trainer's checkpoint: one safetensors file per checkpoint, RUN/checkpoint-000100.safetensors
// (the step, 6 digits or more), written atomically (io::AtomicFile through the safetensors
// writer: a reader sees the complete file or none, a killed writer leaves nothing behind).
//
//   <official name>                  a model parameter, float32, under its plain state-dict key,
//                                    so nn::load_state_dict(model, ckpt, {.strict = false}) (or
//                                    with `ignore = is_trainer_entry`) loads the model part
//   optimizer.exp_avg.<name>         AdamW m of that parameter (absent before its first update)
//   optimizer.exp_avg_sq.<name>      AdamW v
//   task.<name>                      the task's own tensors (TaskState::tensors)
//   __metadata__ "format": "pt", "fiber.trainer": a JSON object (as a string):
//       {"version": 1, "step": updates done, "total_steps", "seed", "generator_offset",
//        "optimizer": {"step": {name: t}}, "scheduler": {"position": step},
//        "task": the task's JSON}
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/safetensors_writer.hpp"
#include "fiber/train/task.hpp"

namespace fiber::train {

inline constexpr std::string_view checkpoint_metadata_key = "fiber.trainer";
inline constexpr std::string_view exp_avg_prefix = "optimizer.exp_avg.";
inline constexpr std::string_view exp_avg_sq_prefix = "optimizer.exp_avg_sq.";
inline constexpr std::string_view task_prefix = "task.";

// True for the entries of a trainer checkpoint that are not model parameters.
inline bool is_trainer_entry(std::string_view key) {
  return key.starts_with("optimizer.") || key.starts_with(task_prefix);
}

struct OptimizerEntry {
  std::string name;
  Tensor<float> exp_avg, exp_avg_sq;  // undefined when the parameter has had no update
  std::int64_t step = 0;
};

// Everything a checkpoint holds, in memory.
struct TrainerCheckpoint {
  std::int64_t step = 0;         // optimiser updates done (the scheduler's position)
  std::int64_t total_steps = 0;  // the run's total
  std::uint64_t seed = 0;
  std::uint64_t generator_offset = 0;
  std::vector<std::pair<std::string, Tensor<float>>> parameters;
  std::vector<OptimizerEntry> optimizer;
  TaskState task;
};

inline std::filesystem::path checkpoint_path(const std::filesystem::path& run_dir, std::int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "checkpoint-%06lld.safetensors", static_cast<long long>(step));
  return run_dir / name;
}

// The step of a file named checkpoint-<digits>.safetensors, or -1.
inline std::int64_t checkpoint_step(const std::filesystem::path& file) {
  const std::string name = file.filename().string();
  constexpr std::string_view head = "checkpoint-", tail = ".safetensors";
  if (!name.starts_with(head) || !name.ends_with(tail) || name.size() <= head.size() + tail.size()) return -1;
  const std::string_view digits(name.data() + head.size(), name.size() - head.size() - tail.size());
  std::int64_t step = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  if (ec != std::errc() || end != digits.data() + digits.size() || step < 0) return -1;
  return step;
}

// The checkpoint files of a run directory, by step, oldest first (none when it does not exist).
inline std::vector<std::pair<std::int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& run_dir) {
  std::vector<std::pair<std::int64_t, std::filesystem::path>> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(run_dir, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(run_dir, ec)) {
    const std::int64_t step = checkpoint_step(e.path());
    if (step >= 0 && e.is_regular_file(ec)) out.emplace_back(step, e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Deletes all but the newest `keep_last` checkpoints (0: keep all). Called after a new one is
// in place, so a crash at any point leaves at least the newest complete one.
inline void prune_checkpoints(const std::filesystem::path& run_dir, std::int64_t keep_last) {
  if (keep_last <= 0) return;
  auto all = list_checkpoints(run_dir);
  for (std::size_t i = 0; i + std::size_t(keep_last) < all.size(); ++i) {
    std::error_code ec;
    std::filesystem::remove(all[i].second, ec);  // best effort: a leftover old file harms nothing
  }
}

namespace checkpoint_detail {
inline io::NamedBuffer buffer(std::string name, const Tensor<float>& t) {
  const Shape& s = t.shape();
  return {std::move(name), DType::f32, std::vector<std::int64_t>(s.begin(), s.end()),
          std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.data()), std::size_t(t.numel()) * sizeof(float))};
}
}  // namespace checkpoint_detail

// Writes `c` to `path` atomically.
inline void write_trainer_checkpoint(const std::filesystem::path& path, const TrainerCheckpoint& c) {
  std::vector<Tensor<float>> keep;  // contiguous copies of views, alive until written
  std::vector<io::NamedBuffer> buffers;
  auto add = [&](std::string name, const Tensor<float>& t) {
    FIBER_CHECK(t.defined(), path.string(), ": tensor '", name, "' is undefined");
    keep.push_back(t.contiguous());
    buffers.push_back(checkpoint_detail::buffer(std::move(name), keep.back()));
  };
  keep.reserve(c.parameters.size() + 2 * c.optimizer.size() + c.task.tensors.size());
  nlohmann::json steps = nlohmann::json::object();
  for (const auto& [name, t] : c.parameters) {
    FIBER_CHECK(!is_trainer_entry(name), path.string(), ": parameter name '", name,
                "' starts with a prefix the checkpoint reserves (optimizer., task.)");
    add(name, t);
  }
  for (const OptimizerEntry& o : c.optimizer) {
    steps[o.name] = o.step;
    if (!o.exp_avg.defined()) continue;
    add(std::string(exp_avg_prefix) + o.name, o.exp_avg);
    add(std::string(exp_avg_sq_prefix) + o.name, o.exp_avg_sq);
  }
  for (const auto& [name, t] : c.task.tensors) add(std::string(task_prefix) + name, t);
  FIBER_CHECK(c.task.json.is_object(), path.string(), ": the task state's JSON must be an object");
  const nlohmann::json meta = {{"version", 1},
                               {"step", c.step},
                               {"total_steps", c.total_steps},
                               {"seed", c.seed},
                               {"generator_offset", c.generator_offset},
                               {"optimizer", {{"step", steps}}},
                               {"scheduler", {{"position", c.step}}},
                               {"task", c.task.json}};
  io::write_safetensors(path, std::span<const io::NamedBuffer>(buffers),
                        {{"format", "pt"}, {std::string(checkpoint_metadata_key), meta.dump()}});
}

// Reads a checkpoint completely; fiber::Error naming the file for anything missing or damaged
// (truncated, not safetensors, no trainer metadata, an optimiser entry without its pair).
inline TrainerCheckpoint read_trainer_checkpoint(const std::filesystem::path& path) {
  const io::Checkpoint file = io::open_checkpoint(path);
  const std::string where = path.string();
  std::string text;
  for (const auto& [k, v] : file.metadata())
    if (k == checkpoint_metadata_key) text = v;
  FIBER_CHECK(!text.empty(), where, ": no '", checkpoint_metadata_key,
              "' metadata: not a trainer checkpoint (a plain weight file?)");
  nlohmann::json meta;
  TrainerCheckpoint c;
  try {
    meta = nlohmann::json::parse(text);
    FIBER_CHECK(meta.at("version").get<int>() == 1, where, ": trainer checkpoint version ", meta.at("version").dump(),
                " is not supported (this fiber reads version 1)");
    c.step = meta.at("step").get<std::int64_t>();
    c.total_steps = meta.at("total_steps").get<std::int64_t>();
    c.seed = meta.at("seed").get<std::uint64_t>();
    c.generator_offset = meta.at("generator_offset").get<std::uint64_t>();
    c.task.json = meta.at("task");
    FIBER_CHECK(c.task.json.is_object(), where, ": metadata field 'task' is not an object");
    for (const auto& [name, t] : meta.at("optimizer").at("step").items())
      c.optimizer.push_back({name, {}, {}, t.get<std::int64_t>()});
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": metadata '", checkpoint_metadata_key, "' is damaged: ", e.what());
  }
  FIBER_CHECK(c.step >= 0 && c.total_steps >= 0, where, ": negative step in the metadata");
  for (const std::string& name : file.names()) {
    Tensor<float> t = io::load_tensor<float>(file, name);
    if (name.starts_with(task_prefix)) {
      c.task.put(name.substr(task_prefix.size()), std::move(t));
    } else if (name.starts_with("optimizer.")) {
      const bool sq = name.starts_with(exp_avg_sq_prefix);
      FIBER_CHECK(sq || name.starts_with(exp_avg_prefix), where, ": unknown optimiser entry '", name, "'");
      const std::string param = name.substr(sq ? exp_avg_sq_prefix.size() : exp_avg_prefix.size());
      auto it = std::find_if(c.optimizer.begin(), c.optimizer.end(), [&](const OptimizerEntry& o) { return o.name == param; });
      FIBER_CHECK(it != c.optimizer.end(), where, ": '", name, "' has no step count in the metadata");
      (sq ? it->exp_avg_sq : it->exp_avg) = std::move(t);
    } else {
      c.parameters.emplace_back(name, std::move(t));
    }
  }
  for (const OptimizerEntry& o : c.optimizer)
    FIBER_CHECK(o.exp_avg.defined() == o.exp_avg_sq.defined() && (o.step == 0) == !o.exp_avg.defined(), where,
                ": optimiser state of '", o.name, "' is incomplete (step ", o.step, ", exp_avg ",
                o.exp_avg.defined() ? "present" : "absent", ", exp_avg_sq ", o.exp_avg_sq.defined() ? "present" : "absent",
                ")");
  return c;
}

}  // namespace fiber::train
