#pragma once
// PickleBuilder: emits pickle opcodes for tests (malformed pickles, one opcode at a time), and
// build_torch_checkpoint(): a complete torch.save-style zip (archive/data.pkl with an
// OrderedDict of _rebuild_tensor_v2 calls, archive/data/<key>, byteorder, version) from named
// buffers, as torch 2.x lays it out. Benchmarks and fuzz seeds use it too.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/core/dtype.hpp"
#include "zip_builder.hpp"

namespace fiber::test {

class PickleBuilder {
 public:
  PickleBuilder& op(std::uint8_t code) {
    out_.push_back(std::byte(code));
    return *this;
  }
  PickleBuilder& raw(std::string_view bytes) {
    for (char c : bytes) out_.push_back(std::byte(static_cast<unsigned char>(c)));
    return *this;
  }
  PickleBuilder& le(std::uint64_t v, int width) {
    put_le(out_, v, width);
    return *this;
  }
  PickleBuilder& proto(int v = 2) { return op(0x80).le(std::uint64_t(v), 1); }
  PickleBuilder& mark() { return op('('); }
  PickleBuilder& stop() { return op('.'); }
  PickleBuilder& none() { return op('N'); }
  PickleBuilder& boolean(bool b) { return op(b ? 0x88 : 0x89); }
  PickleBuilder& str(std::string_view s) { return op('X').le(s.size(), 4).raw(s); }
  PickleBuilder& global(std::string_view module, std::string_view name) {
    return op('c').raw(module).raw("\n").raw(name).raw("\n");
  }
  PickleBuilder& integer(std::int64_t v) {
    if (v >= 0 && v < 256) return op('K').le(std::uint64_t(v), 1);
    if (v >= INT32_MIN && v <= INT32_MAX) return op('J').le(std::uint64_t(std::uint32_t(std::int32_t(v))), 4);
    return op(0x8a).le(8, 1).le(std::uint64_t(v), 8);
  }
  PickleBuilder& tuple_of(const std::vector<std::int64_t>& values) {
    if (values.empty()) return op(')');
    mark();
    for (auto v : values) integer(v);
    return op('t');
  }
  PickleBuilder& empty_dict() { return op('}'); }
  PickleBuilder& empty_tuple() { return op(')'); }
  PickleBuilder& tuple() { return op('t'); }
  PickleBuilder& reduce() { return op('R'); }
  PickleBuilder& setitem() { return op('s'); }
  PickleBuilder& setitems() { return op('u'); }
  PickleBuilder& binput(std::uint8_t k) { return op('q').le(k, 1); }
  PickleBuilder& binget(std::uint8_t k) { return op('h').le(k, 1); }

  // Pushes torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
  PickleBuilder& tensor(std::string_view storage_type, std::string_view key, std::int64_t numel, std::int64_t offset,
                        const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    mark().str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).tuple().op('Q');
    integer(offset).tuple_of(shape).tuple_of(strides).boolean(false);
    global("collections", "OrderedDict").empty_tuple().reduce();
    tuple();
    return reduce();
  }

  const Bytes& bytes() const { return out_; }

 private:
  Bytes out_;
};

inline std::string_view storage_type_of(DType t) {
  switch (t) {
    case DType::f32: return "FloatStorage";
    case DType::f64: return "DoubleStorage";
    case DType::f16: return "HalfStorage";
    case DType::bf16: return "BFloat16Storage";
    case DType::i64: return "LongStorage";
    case DType::i32: return "IntStorage";
    case DType::i16: return "ShortStorage";
    case DType::i8: return "CharStorage";
    case DType::u8: return "ByteStorage";
    case DType::boolean: return "BoolStorage";
  }
  return "?";
}

struct TorchTensorSpec {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  Bytes data;  // contiguous, row-major
};

// The pickle of an OrderedDict of contiguous tensors, storage keys "0", "1", ...
inline Bytes torch_state_dict_pickle(const std::vector<TorchTensorSpec>& tensors) {
  PickleBuilder p;
  p.proto(2).global("collections", "OrderedDict").empty_tuple().reduce().mark();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    std::vector<std::int64_t> strides(t.shape.size());
    std::int64_t s = 1;
    for (std::size_t d = t.shape.size(); d-- > 0;) {
      strides[d] = s;
      s *= t.shape[d];
    }
    p.str(t.name).tensor(storage_type_of(t.dtype), std::to_string(i),
                         std::int64_t(t.data.size() / dtype_size(t.dtype)), 0, t.shape, strides);
  }
  p.setitems().stop();
  return p.bytes();
}

// A torch.save-style zip around `pickle` and `storages` (entry "<prefix>data/<i>" for the i-th).
inline Bytes torch_zip(const Bytes& pickle, const std::vector<const Bytes*>& storages, std::string prefix = "archive/",
                       const ZipOptions& options = {.align = 64, .zip64 = false, .data_descriptor = true, .comment = {}},
                       ZipLayout* layout = nullptr) {
  ZipBuilder zip;
  zip.add(prefix + "data.pkl", pickle);
  zip.add(prefix + ".format_version", "1");
  zip.add(prefix + ".storage_alignment", "64");
  zip.add(prefix + "byteorder", "little");
  for (std::size_t i = 0; i < storages.size(); ++i) zip.add(prefix + "data/" + std::to_string(i), *storages[i]);
  zip.add(prefix + "version", "3\n");
  return zip.build(options, layout);  // entries: data.pkl, .format_version, .storage_alignment, byteorder, data/..., version
}

inline Bytes build_torch_checkpoint(const std::vector<TorchTensorSpec>& tensors, std::string prefix = "archive/") {
  std::vector<const Bytes*> storages;
  for (const auto& t : tensors) storages.push_back(&t.data);
  return torch_zip(torch_state_dict_pickle(tensors), storages, std::move(prefix));
}

}  // namespace fiber::test
