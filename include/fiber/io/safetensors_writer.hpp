#pragma once
// Writing safetensors, atomically (AtomicFile: temporary file, fsync, rename) and in a stream:
// the header is known from names, dtypes and shapes alone, so tensors can be written one after
// another (or in chunks) and memory stays at one chunk. Tensors are laid out by decreasing
// element size, so with the 8-byte aligned data section every tensor is aligned for its dtype
// and readers can use it in place.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/atomic_file.hpp"
#include "fiber/io/checked_size.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/io/tensor_record.hpp"

namespace fiber::io {

// A tensor to be written: what the header says about it.
struct TensorSpec {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
};

// A named contiguous buffer (row-major) to write as it is.
struct NamedBuffer {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
};

class SafetensorsWriter {
 public:
  // Creates the temporary file and writes the header. Tensors must then be written in the
  // order of specs() (by decreasing element size, otherwise as given).
  SafetensorsWriter(std::filesystem::path path, std::vector<TensorSpec> specs, const Metadata& metadata = {})
      : file_(std::move(path)), specs_(std::move(specs)) {
    const std::string where = file_.target().string();
    std::stable_sort(specs_.begin(), specs_.end(),
                     [](const TensorSpec& a, const TensorSpec& b) { return dtype_size(a.dtype) > dtype_size(b.dtype); });
    // The header is assembled as text, entry by entry: an ordered_json object looks keys up
    // linearly on insertion, which made writing n tensors take O(n^2) time (200k tensors: 40 s).
    std::string text = "{";
    const auto dump = [&](const auto& value) {
      try {
        return value.dump();
      } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not UTF-8
        fail(where, ": cannot write the header: ", e.what());
      }
    };
    if (!metadata.empty()) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata) m[k] = v;
      text += "\"__metadata__\":" + dump(m);
    }
    std::unordered_set<std::string_view> seen;
    seen.reserve(specs_.size());
    std::uint64_t offset = 0;
    for (const TensorSpec& s : specs_) {
      FIBER_CHECK(s.name != "__metadata__", where, ": '__metadata__' cannot be a tensor name");
      FIBER_CHECK(seen.insert(s.name).second, where, ": tensor name '", excerpt(s.name), "' given twice");
      FIBER_CHECK(s.shape.size() <= max_tensor_rank, where, ": tensor '", excerpt(s.name), "' has rank ", s.shape.size());
      const std::string what = "tensor '" + excerpt(s.name) + "'";
      const std::int64_t numel = checked_numel(s.shape, where, what + " shape");
      const std::uint64_t bytes = checked_mul(std::uint64_t(numel), dtype_size(s.dtype), where, what);
      const std::uint64_t end = checked_add(offset, bytes, where, "data size");
      const nlohmann::json entry = {{"dtype", std::string(dtype_name(s.dtype))}, {"shape", s.shape},
                                    {"data_offsets", {offset, end}}};
      if (text.size() > 1) text += ',';
      text += dump(nlohmann::json(s.name));
      text += ':';
      text += dump(entry);
      ends_.push_back(end);
      offset = end;
    }
    text += '}';
    text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
    const std::uint64_t length = text.size();
    file_.write(std::as_bytes(std::span(&length, 1)));
    file_.write(std::as_bytes(std::span(text.data(), text.size())));
  }

  const std::vector<TensorSpec>& specs() const { return specs_; }

  // The next bytes of the data section (row-major elements of the current tensor; a tensor may
  // be written in several calls).
  void write(std::span<const std::byte> bytes) {
    const std::uint64_t total = ends_.empty() ? 0 : ends_.back();
    FIBER_CHECK(bytes.size() <= total - written_, file_.target().string(), ": ", bytes.size(),
                " bytes written past the end of the declared data (", total, " bytes)");
    file_.write(bytes);
    written_ += bytes.size();
  }

  // Writes the next tensor (in specs() order) from a record, converted to the spec's dtype,
  // chunk by chunk. Do not mix with byte writes inside one tensor.
  void write(const TensorRecord& record, std::size_t chunk_bytes = std::size_t(16) << 20) {
    const std::string where = file_.target().string();
    FIBER_CHECK(next_ < specs_.size(), where, ": more tensors written than declared");
    const TensorSpec& spec = specs_[next_];
    FIBER_CHECK(written_ == (next_ == 0 ? 0 : ends_[next_ - 1]), where, ": tensor '", spec.name,
                "' must start at its own offset (a previous tensor is incomplete)");
    FIBER_CHECK(record.shape == spec.shape, where, ": tensor '", record.name, "' does not have the declared shape of '",
                spec.name, "'");
    const std::size_t element = dtype_size(spec.dtype);
    const std::int64_t per_chunk = std::max<std::int64_t>(1, std::int64_t(chunk_bytes / element));
    std::vector<std::byte> buffer;
    for (std::int64_t first = 0, n = record.numel(); first < n; first += per_chunk) {
      const std::int64_t count = std::min(per_chunk, n - first);
      buffer.resize(std::size_t(count) * element);
      record.copy_to(spec.dtype, buffer, first);
      write(buffer);
    }
    ++next_;
  }

  // Checks that every declared byte was written, then makes the file durable and puts it in place.
  void commit() {
    const std::uint64_t total = ends_.empty() ? 0 : ends_.back();
    FIBER_CHECK(written_ == total, file_.target().string(), ": only ", written_, " of ", total,
                " data bytes were written");
    file_.commit();
  }

 private:
  AtomicFile file_;
  std::vector<TensorSpec> specs_;
  std::vector<std::uint64_t> ends_;
  std::uint64_t written_ = 0;
  std::size_t next_ = 0;  // next tensor for write(record)
};

// Writes records (any strides) to `path`, converted to `as` when given (floating tensors only;
// integer and bool tensors keep their dtype).
inline void write_safetensors(const std::filesystem::path& path, std::span<const TensorRecord> records,
                              const Metadata& metadata = {}, std::optional<DType> as = {}) {
  std::vector<TensorSpec> specs;
  for (const TensorRecord& r : records)
    specs.push_back({r.name, as && is_floating(r.dtype) ? *as : r.dtype, r.shape});
  SafetensorsWriter writer(path, std::move(specs), metadata);
  std::unordered_map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < records.size(); ++i) by_name.emplace(records[i].name, i);
  for (const TensorSpec& s : writer.specs()) writer.write(records[by_name.at(s.name)]);
  writer.commit();
}

// Writes contiguous buffers as they are.
inline void write_safetensors(const std::filesystem::path& path, std::span<const NamedBuffer> buffers,
                              const Metadata& metadata = {}) {
  std::vector<TensorSpec> specs;
  for (const NamedBuffer& b : buffers) {
    const std::string where = path.string() + ": tensor '" + b.name + "'";
    const std::int64_t numel = checked_numel(b.shape, where, "shape");
    FIBER_CHECK(b.data.size() == checked_mul(std::uint64_t(numel), dtype_size(b.dtype), where, "size"), where,
                ": buffer of ", b.data.size(), " bytes, but dtype ", dtype_name(b.dtype), " and its shape need ",
                std::uint64_t(numel) * dtype_size(b.dtype));
    specs.push_back({b.name, b.dtype, b.shape});
  }
  SafetensorsWriter writer(path, std::move(specs), metadata);
  std::unordered_map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < buffers.size(); ++i) by_name.emplace(buffers[i].name, i);
  for (const TensorSpec& s : writer.specs()) writer.write(buffers[by_name.at(s.name)].data);
  writer.commit();
}

// Streams the tensors `names` of a checkpoint into a safetensors file, one tensor (in chunks)
// at a time, converting floating tensors to `as` when given; each tensor's pages are released
// after it is written, so memory stays at one chunk whatever the checkpoint's size.
inline void write_safetensors(const std::filesystem::path& path, const Checkpoint& checkpoint,
                              const std::vector<std::string>& names, std::optional<DType> as = {},
                              const Metadata& metadata = {{"format", "pt"}}) {
  std::vector<TensorSpec> specs;
  specs.reserve(names.size());
  for (const std::string& name : names) {
    const TensorInfo& info = checkpoint.info(name);
    specs.push_back({name, as && is_floating(info.dtype) ? *as : info.dtype, info.shape});
  }
  SafetensorsWriter writer(path, std::move(specs), metadata);
  for (const TensorSpec& spec : writer.specs()) {
    const TensorRecord record = checkpoint.record(spec.name);
    writer.write(record);
    checkpoint.release(record);
  }
  writer.commit();
}

}  // namespace fiber::io
