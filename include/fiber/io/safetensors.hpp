#pragma once
// Reading safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]},
// "__metadata__": {str: str}}, then the data. The JSON is parsed by nlohmann-json; every field
// is checked (dtype known, shape non-negative without overflow, offsets inside the data and
// consistent with dtype x shape, no two tensors overlapping) before any tensor is handed out.
// Tensors are spans into the mapped file: zero-copy, aligned when the writer aligned them (ours
// and the reference writer do).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/byte_reader.hpp"
#include "fiber/io/checked_size.hpp"
#include "fiber/io/checkpoint.hpp"

namespace fiber::io {

namespace safetensors_detail {

class Source : public Checkpoint::Source {
 public:
  Source(ByteSource data, std::vector<std::uint64_t> begins) : data_(std::move(data)), begins_(std::move(begins)) {}
  TensorRecord load(const TensorInfo& info, std::size_t index) const override {
    TensorRecord r{info, data_.bytes.subspan(begins_[index], info.nbytes()), data_.owner, data_.name, data_.mapping};
    r.validate();
    return r;
  }

 private:
  ByteSource data_;                   // the data section (after the header)
  std::vector<std::uint64_t> begins_;  // byte offset of each tensor in the data section
};

inline DType dtype_field(const nlohmann::json& v, const std::string& where) {
  FIBER_CHECK(v.is_string(), where, ": field 'dtype' is not a string");
  const std::string& name = v.get_ref<const std::string&>();
  for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i64, DType::i32, DType::i16, DType::i8,
                  DType::u8, DType::boolean})
    if (dtype_name(t) == name) return t;
  fail(where, ": field 'dtype': unknown or unsupported dtype '", excerpt(name),
       "' (fiber reads F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
}

inline std::uint64_t unsigned_field(const nlohmann::json& v, const std::string& where, std::string_view field) {
  FIBER_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0), where, ": field '",
              field, "' holds ", v.is_number() ? "a negative or non-integer number" : v.type_name(),
              ", expected a non-negative integer");
  return v.get<std::uint64_t>();
}

}  // namespace safetensors_detail

// Parses the header of `source` (already in memory or mapped) and returns its tensors.
inline Checkpoint read_safetensors(ByteSource source, const OpenOptions& options = {}) {
  using nlohmann::json;
  const std::string& file = source.name;
  FIBER_CHECK(options.state_dict_key.empty(), file, ": a safetensors file holds one state dict; it has no '",
              options.state_dict_key, "' to choose (that option is for torch checkpoints)");
  ByteReader reader(source.bytes, file);
  const std::uint64_t header_length = reader.u64("safetensors header length");
  FIBER_CHECK(header_length <= reader.remaining(), file, ": safetensors header length ", header_length,
              " runs past the end of the file (", source.size(), " bytes): truncated or not a safetensors file");
  FIBER_CHECK(header_length <= options.max_header_bytes, file, ": safetensors header length ", header_length,
              " exceeds the limit of ", options.max_header_bytes, " bytes (corrupt, or not a safetensors file)");
  FIBER_CHECK(header_length >= 2, file, ": safetensors header length ", header_length,
              " is too small for a JSON object");
  const std::string_view text = reader.chars(header_length, "safetensors header");
  FIBER_CHECK(!text.starts_with("\xef\xbb\xbf"), file, ": the safetensors header starts with a UTF-8 byte order mark"
              " (EF BB BF); a safetensors header starts with '{'");
  json header;
  try {
    header = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail(file, ": safetensors header is not valid JSON: ", e.what());
  }
  FIBER_CHECK(header.is_object(), file, ": safetensors header is a JSON ", header.type_name(), ", expected an object");

  const std::uint64_t data_size = reader.remaining();
  struct Item {
    TensorInfo info;
    std::uint64_t begin, end;
  };
  std::vector<Item> items;
  Metadata metadata;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      FIBER_CHECK(value.is_object(), file, ": '__metadata__' is a JSON ", value.type_name(), ", expected an object");
      for (const auto& [k, v] : value.items()) {
        FIBER_CHECK(v.is_string(), file, ": '__metadata__' entry '", excerpt(k), "' is not a string");
        metadata.emplace_back(k, v.get<std::string>());
      }
      continue;
    }
    const std::string where = file + ": tensor '" + excerpt(key) + "'";
    FIBER_CHECK(value.is_object(), where, ": entry is a JSON ", value.type_name(), ", expected an object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      FIBER_CHECK(value.contains(field), where, ": missing field '", field, "'");
    Item item;
    item.info.name = key;
    item.info.dtype = safetensors_detail::dtype_field(value.at("dtype"), where);
    const json& shape = value.at("shape");
    FIBER_CHECK(shape.is_array(), where, ": field 'shape' is not an array");
    FIBER_CHECK(shape.size() <= max_tensor_rank, where, ": field 'shape' has ", shape.size(),
                " dimensions, more than ", max_tensor_rank);
    for (const json& d : shape) {
      const std::uint64_t dim = safetensors_detail::unsigned_field(d, where, "shape");
      FIBER_CHECK(dim <= std::uint64_t(INT64_MAX), where, ": field 'shape': dimension ", dim, " is absurd");
      item.info.shape.push_back(std::int64_t(dim));
    }
    const std::int64_t numel = checked_numel(item.info.shape, where, "field 'shape'");
    const std::uint64_t nbytes = checked_mul(std::uint64_t(numel), dtype_size(item.info.dtype), where, "byte size");
    item.info.strides = contiguous_strides(item.info.shape);
    const json& offsets = value.at("data_offsets");
    FIBER_CHECK(offsets.is_array() && offsets.size() == 2, where, ": field 'data_offsets' is not [begin, end]");
    item.begin = safetensors_detail::unsigned_field(offsets[0], where, "data_offsets");
    item.end = safetensors_detail::unsigned_field(offsets[1], where, "data_offsets");
    FIBER_CHECK(item.begin <= item.end, where, ": field 'data_offsets': begin ", item.begin, " > end ", item.end);
    FIBER_CHECK(item.end <= data_size, where, ": field 'data_offsets': end ", item.end,
                " runs past the end of the data (", data_size, " bytes): truncated or corrupt");
    FIBER_CHECK(item.end - item.begin == nbytes, where, ": field 'data_offsets' spans ", item.end - item.begin,
                " bytes, but dtype ", dtype_name(item.info.dtype), " and its shape need ", nbytes);
    items.push_back(std::move(item));
  }
  // File order; and no two tensors may share bytes.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.info.name < b.info.name;
  });
  for (std::size_t i = 1; i < items.size(); ++i)
    FIBER_CHECK(items[i - 1].end <= items[i].begin || items[i - 1].begin == items[i - 1].end ||
                    items[i].begin == items[i].end,
                file, ": tensors '", excerpt(items[i - 1].info.name), "' and '", excerpt(items[i].info.name),
                "' overlap in the data section (the header lies)");

  std::vector<TensorInfo> infos;
  std::vector<std::uint64_t> begins;
  infos.reserve(items.size());
  for (auto& item : items) {
    infos.push_back(std::move(item.info));
    begins.push_back(item.begin);
  }
  // The index is read: its pages (zip headers, pickle, JSON) need not stay in our resident set.
  if (source.mapping) source.mapping->release_all();
  ByteSource data = source;
  data.bytes = source.bytes.subspan(reader.position());
  auto loader = std::make_shared<safetensors_detail::Source>(std::move(data), std::move(begins));
  return Checkpoint(CheckpointFormat::safetensors, CheckpointLayout::safetensors, file, std::move(infos), {}, {},
                    std::move(metadata), std::move(loader), source.mapping);
}

}  // namespace fiber::io
