#pragma once
// Loading and saving a module's parameters under their official state-dict keys, by walking the
// module's visit() tree.
//
//   auto report = nn::load_state_dict<float>(model, io::open_checkpoint("fiber.ckpt"));  // strict
//   nn::save_safetensors<float>(model, "fiber.safetensors");
//
// Strict loading (the default) throws one fiber::Error listing every missing key, unexpected key
// and shape or dtype mismatch; non-strict loading returns those lists and loads what matches.
// float16 / bfloat16 / float64 weights are converted to the module's element type.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/io/load_tensor.hpp"
#include "fiber/io/safetensors_writer.hpp"
#include "fiber/nn/module.hpp"

namespace fiber::nn {

// Converts a stored tensor whose shape differs from the module's into that shape, or returns
// nothing to report a mismatch (e.g. a relative-position table resized for another resolution).
template <class T>
using ShapeAdapter = std::function<std::optional<Tensor<T>>(const std::string& key, const Tensor<T>& stored,
                                                            const Shape& expected)>;

template <class T>
struct LoadOptions {
  bool strict = true;
  // File keys to leave unread without calling them unexpected (the ITC queues of a coarse .ckpt).
  std::function<bool(std::string_view key)> ignore;
  ShapeAdapter<T> adapt;
};

struct LoadReport {
  std::vector<std::string> missing;     // the module has them, the file does not
  std::vector<std::string> unexpected;  // the file has them, the module does not
  std::vector<std::string> mismatched;  // "key: file [a, b] float16, module [c, d]"
  std::vector<std::string> ignored;     // skipped on purpose (options.ignore)
  std::vector<std::string> adapted;     // converted by options.adapt
  std::int64_t loaded = 0;              // tensors read

  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // A readable list of the problems, one per line, each list capped at `limit` lines.
  std::string describe(std::size_t limit = 50) const {
    std::ostringstream os;
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      os << "\n  " << keys.size() << " " << what << ":";
      for (std::size_t i = 0; i < keys.size() && i < limit; ++i) os << "\n    " << keys[i];
      if (keys.size() > limit) os << "\n    ... and " << keys.size() - limit << " more";
    };
    list("missing (in the model, not in the file)", missing);
    list("unexpected (in the file, not in the model)", unexpected);
    list("mismatched", mismatched);
    return os.str();
  }
};

namespace detail {
inline std::string shape_text(std::span<const std::int64_t> s) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}
}  // namespace detail

template <class T, class M>
LoadReport load_state_dict(M& module, const io::Checkpoint& checkpoint, const LoadOptions<T>& options = {}) {
  LoadReport report;
  std::unordered_set<std::string> known;
  module.visit("", [&](const std::string& key, Entry<T> e) {
    known.insert(key);
    if (e.role == Role::derived) return;
    if (!checkpoint.contains(key)) {
      report.missing.push_back(key);
      return;
    }
    const io::TensorInfo& info = checkpoint.info(key);
    const Shape expected = e.var->shape();
    if (!is_floating(info.dtype)) {
      report.mismatched.push_back(key + ": file " + detail::shape_text(info.shape) + " " +
                                  std::string(dtype_name(info.dtype)) + ", module " +
                                  detail::shape_text(std::span<const std::int64_t>(expected.begin(), expected.end())) + " floating point");
      return;
    }
    // One tensor at a time; its file pages are dropped once copied, so peak memory stays near
    // the model's own size however large the file (a coarse .ckpt with its queues is gigabytes).
    const io::TensorRecord record = checkpoint.record(key);
    Tensor<T> stored = io::to_tensor<T>(record);
    checkpoint.release(record);
    if (stored.shape() != expected) {
      std::optional<Tensor<T>> fixed = options.adapt ? options.adapt(key, stored, expected) : std::nullopt;
      if (!fixed || fixed->shape() != expected) {
        report.mismatched.push_back(key + ": file " + detail::shape_text(info.shape) + ", module " +
                                    detail::shape_text(std::span<const std::int64_t>(expected.begin(), expected.end())));
        return;
      }
      stored = *fixed;
      report.adapted.push_back(key);
    }
    e.var->value().copy_(stored);  // in place: tied views share the storage they were built on
    ++report.loaded;
  });
  for (const std::string& name : checkpoint.names()) {
    if (known.count(name)) continue;
    if (options.ignore && options.ignore(name)) report.ignored.push_back(name);
    else report.unexpected.push_back(name);
  }
  if (options.strict && !report.ok())
    fail(checkpoint.file(), ": does not match the model", report.describe());
  return report;
}

// Writes every parameter and tied view (not derived buffers) as float32 safetensors, atomically.
template <class T, class M>
void save_safetensors(M& module, const std::filesystem::path& path, const io::Metadata& metadata = {}) {
  std::vector<Tensor<float>> values;
  std::vector<io::NamedBuffer> buffers;
  module.visit("", [&](const std::string& key, Entry<T> e) {
    if (e.role == Role::derived) return;
    Tensor<float> v;
    if constexpr (std::is_same_v<T, float>) v = e.var->value().contiguous();
    else v = e.var->value().template to<float>();  // a new contiguous tensor already
    values.push_back(v);
    const Shape& s = v.shape();
    buffers.push_back({key, DType::f32, std::vector<std::int64_t>(s.begin(), s.end()),
                       std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()),
                                                  static_cast<std::size_t>(v.numel()) * sizeof(float))});
  });
  io::write_safetensors(path, std::span<const io::NamedBuffer>(buffers), metadata);
}

}  // namespace fiber::nn
