// Malformed weight files: each must give a fiber::Error that names the file and the field, never a
// crash. Every case opens the bytes and reads every tensor (so lazy checks run too) and states
// the message it must give.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "fiber/io/open_checkpoint.hpp"
#include "support/fixtures.hpp"
#include "support/pickle_builder.hpp"

using namespace fiber;
using namespace fiber::test;

namespace {

struct Case {
  std::string label;
  std::function<Bytes()> bytes;
  std::string message;
  bool safetensors_only = false;  // call read_safetensors (past format detection)
  io::OpenOptions options = {};
};

void load_all(const Case& c) {
  const Bytes b = c.bytes();
  const auto source = io::borrowed_bytes(b, "bad.file");
  auto ck = c.safetensors_only ? io::read_safetensors(source, c.options) : io::open_checkpoint(source, c.options);
  for (const auto& name : ck.names()) {
    const auto r = ck.record(name);
    Bytes out(r.nbytes());
    r.copy_to(r.dtype, out);
  }
}

// ---- safetensors ---------------------------------------------------------------------------

Bytes safetensors(const std::string& header, std::size_t data_bytes, std::uint64_t length_override = 0) {
  Bytes b;
  put_le(b, length_override ? length_override : header.size(), 8);
  const Bytes h = to_bytes(header);
  b.insert(b.end(), h.begin(), h.end());
  b.resize(b.size() + data_bytes, std::byte{0});
  return b;
}

std::vector<Case> safetensors_cases() {
  return {
      {"5-byte file", [] { return Bytes(5); }, "bad.file: safetensors header length at offset 0: needs 8 bytes but only 5 remain", true},
      {"header length past the end", [] { return safetensors("{}", 10, 100); },
       "bad.file: safetensors header length 100 runs past the end of the file (20 bytes)", true},
      {"absurd header length", [] { return safetensors("{}", 0, std::uint64_t(1) << 62); },
       "bad.file: safetensors header length 4611686018427387904 runs past the end of the file (10 bytes)", true},
      {"header above the limit", [] { return safetensors("{}", 0); },
       "bad.file: safetensors header length 2 exceeds the limit of 1 bytes", true, [] {
         io::OpenOptions o;
         o.max_header_bytes = 1;
         return o;
       }()},
      {"header is not JSON", [] { return safetensors("{\"w\": [1, 2", 0); }, "bad.file: safetensors header is not valid JSON"},
      {"header is an array", [] { return safetensors("[1, 2]", 0, 0); }, "safetensors header is a JSON array, expected an object", true},
      {"missing dtype", [] { return safetensors(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8); },
       "bad.file: tensor 'w': missing field 'dtype'"},
      {"unknown dtype", [] { return safetensors(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2); },
       "bad.file: tensor 'w': field 'dtype': unknown or unsupported dtype 'F8_E4M3'"},
      {"negative dimension", [] { return safetensors(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8); },
       "bad.file: tensor 'w': field 'shape' holds a negative or non-integer number"},
      {"shape not an array", [] { return safetensors(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8); },
       "bad.file: tensor 'w': field 'shape' is not an array"},
      {"data_offsets of three", [] { return safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", 8); },
       "bad.file: tensor 'w': field 'data_offsets' is not [begin, end]"},
      {"begin after end", [] { return safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8); },
       "bad.file: tensor 'w': field 'data_offsets': begin 8 > end 4"},
      {"tensor past the end", [] { return safetensors(R"({"w":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}})", 8); },
       "bad.file: tensor 'w': field 'data_offsets': end 100 runs past the end of the data (8 bytes)"},
      {"offsets disagree with shape", [] { return safetensors(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8); },
       "bad.file: tensor 'w': field 'data_offsets' spans 8 bytes, but dtype F32 and its shape need 12"},
      {"absurd shape", [] { return safetensors(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})", 8); },
       "bad.file: tensor 'w': field 'shape': element count overflows 64 bits"},
      {"rank above 64", [] {
         std::string shape = "1";
         for (int i = 0; i < 64; ++i) shape += ",1";
         return safetensors(R"({"w":{"dtype":"F32","shape":[)" + shape + R"(],"data_offsets":[0,4]}})", 4); },
       "bad.file: tensor 'w': field 'shape' has 65 dimensions, more than 64"},
      {"overlapping tensors", [] { return safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12); },
       "bad.file: tensors 'a' and 'b' overlap in the data section (the header lies)"},
      {"metadata value not a string", [] { return safetensors(R"({"__metadata__":{"n":1},)" + std::string(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"), 8); },
       "bad.file: '__metadata__' entry 'n' is not a string"},
      {"tensor entry not an object", [] { return safetensors(R"({"w":5})", 0); }, "bad.file: tensor 'w': entry is a JSON number, expected an object"},
      {"truncated file", [] {
         Bytes b = read_bytes(checkpoint_fixture("dtypes.safetensors"));
         b.resize(b.size() - 10);
         return b;
       }, "runs past the end of the data"},
  };
}

// The 8-byte length `length`, then `rest`.
Bytes safetensors_raw(std::uint64_t length, const std::string& rest) {
  Bytes b;
  put_le(b, length, 8);
  const Bytes r = to_bytes(rest);
  b.insert(b.end(), r.begin(), r.end());
  return b;
}

// ---- format detection ----------------------------------------------------------------------

std::vector<Case> detection_cases() {
  return {
      {"empty file", [] { return Bytes(); },
       "bad.file: not a PyTorch zip checkpoint (no \"PK\" signature), and not a valid safetensors file: the file holds 0"
       " bytes, fewer than the 8-byte header length a safetensors file starts with"},
      {"text file", [] { return to_bytes("hello, this is not a checkpoint\n"); },
       "not a valid safetensors file: the header length (first 8 bytes, little-endian) is 8367736964726416744, past the"
       " end of the file (32 bytes, so at most 24): truncated inside its header, or not a safetensors file"},
      // What is wrong with it as a safetensors file (issue 14, item 11).
      {"safetensors header length 0", [] { return safetensors_raw(0, "{}"); },
       "bad.file: not a PyTorch zip checkpoint (no \"PK\" signature), and not a valid safetensors file: the header"
       " length (first 8 bytes, little-endian) is 0, too small for a JSON object"},
      {"safetensors header length 2^63", [] { return safetensors_raw(std::uint64_t(1) << 63, "{}"); },
       "the header length (first 8 bytes, little-endian) is 9223372036854775808, past the end of the file (10 bytes, so"
       " at most 2)"},
      {"safetensors header length past the file", [] { return safetensors_raw(1000, "{\"a\":1}"); },
       "the header length (first 8 bytes, little-endian) is 1000, past the end of the file (15 bytes, so at most 7)"},
      {"safetensors header cut short", [] {
         Bytes b = safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 0);
         b.resize(30);
         return b;
       }, "is 54, past the end of the file (30 bytes, so at most 22): truncated inside its header"},
      {"safetensors header is a JSON array", [] { return safetensors("[1, 2]", 0); },
       "bad.file: safetensors header is a JSON array, expected an object"},
      {"safetensors header is a JSON string", [] { return safetensors("\"text\"", 0); },
       "bad.file: safetensors header is a JSON string, expected an object"},
      {"safetensors header with a BOM", [] { return safetensors("\xef\xbb\xbf{}", 0); },
       "not a valid safetensors file: its JSON header starts with a UTF-8 byte order mark (EF BB BF)"},
      {"safetensors header of binary", [] { return safetensors("\x01\x02", 0); },
       "not a valid safetensors file: its JSON header (2 bytes) starts with byte 0x01, not '{'"},
      {"legacy torch.save format", [] { return read_bytes(checkpoint_fixture("legacy.pt")); },
       "bad.file: legacy PyTorch serialization (a bare pickle, written by torch < 1.6 or with "
       "_use_new_zipfile_serialization=False) is not supported; re-save it in the zip format"},
      {"TorchScript archive", [] { return read_bytes(checkpoint_fixture("torchscript.pt")); },
       "bad.file: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint"},
  };
}

// ---- zip structure -------------------------------------------------------------------------

io::OpenOptions verifying() {
  io::OpenOptions o;
  o.verify_checksums = true;
  return o;
}

// A valid two-tensor torch checkpoint and where its parts are.
struct Base {
  Bytes file;
  ZipLayout layout;
  std::vector<TorchTensorSpec> tensors;
};
Base base(ZipOptions options = {.align = 64, .zip64 = false, .data_descriptor = true, .comment = {}}) {
  Base b;
  b.tensors = {{"w", DType::f32, {3}, Bytes(12)}, {"b", DType::f32, {2}, Bytes(8)}};
  std::vector<const Bytes*> storages = {&b.tensors[0].data, &b.tensors[1].data};
  b.file = torch_zip(torch_state_dict_pickle(b.tensors), storages, "archive/", options, &b.layout);
  return b;
}
// Entry indices in base(): 0 data.pkl, 1 .format_version, 2 .storage_alignment, 3 byteorder, 4 data/0, 5 data/1, 6 version
Bytes patched(std::function<void(Base&)> edit) {
  Base b = base();
  edit(b);
  return b.file;
}

std::vector<Case> zip_cases() {
  return {
      {"truncated archive", [] { Bytes f = base().file; f.resize(f.size() / 2); return f; },
       "bad.file: zip end of central directory not found (not a zip file, or truncated)"},
      {"central directory offset past the end", [] { return patched([](Base& b) {
         Base plain = base({.align = 64, .zip64 = false, .data_descriptor = false, .comment = {}});
         b = plain;
         patch_le(b.file, b.layout.eocd + 16, 0x7fffffff, 4); }); },
       "bad.file: central directory (offset 2147483647, size"},
      {"absurd entry count", [] { return patched([](Base& b) {
         b = base({.align = 0, .zip64 = false, .data_descriptor = false, .comment = {}});
         patch_le(b.file, b.layout.eocd + 8, 0xffff, 2);
         patch_le(b.file, b.layout.eocd + 10, 0xffff, 2); }); },
       "central directory entry count 65535 cannot fit in its"},
      {"bad central directory signature", [] { return patched([](Base& b) { patch_le(b.file, b.layout.central_offsets[2], 0x12345678, 4); }); },
       "bad.file: central directory record 2 at offset"},
      {"bad local header signature", [] { return patched([](Base& b) { patch_le(b.file, b.layout.local_offsets[4], 0, 4); }); },
       "bad.file: zip entry 'archive/data/0': no local header at offset"},
      {"local name differs", [] { return patched([](Base& b) { b.file[b.layout.local_offsets[4] + 30] = std::byte{'X'}; }); },
       "bad.file: zip entry 'archive/data/0': local header names it 'Xrchive/data/0'"},
      {"entry data past the central directory", [] { return patched([](Base& b) {
         patch_le(b.file, b.layout.central_offsets[6] + 20, 1 << 20, 4);
         patch_le(b.file, b.layout.central_offsets[6] + 24, 1 << 20, 4); }); },
       "bad.file: zip entry 'archive/version': data ["},
      {"entry name with ..", [] { return patched([](Base& b) {
         for (int i = 0; i < 3; ++i) b.file[b.layout.central_offsets[4] + 46 + i] = std::byte("../"[i]); }); },
       "bad.file: zip entry name '../hive/data/0' is unsafe (absolute, '..' component, backslash or NUL)"},
      {"absolute entry name", [] { return patched([](Base& b) { b.file[b.layout.central_offsets[5] + 46] = std::byte{'/'}; }); },
       "bad.file: zip entry name '/rchive/data/1' is unsafe"},
      {"encrypted entry", [] { return patched([](Base& b) { patch_le(b.file, b.layout.central_offsets[0] + 8, 0x0809, 2); }); },
       "bad.file: zip entry 'archive/data.pkl': encrypted entries are not supported"},
      {"unknown compression method", [] { return patched([](Base& b) { patch_le(b.file, b.layout.central_offsets[4] + 10, 12, 2); }); },
       "bad.file: zip entry 'archive/data/0': compression method 12 is not supported (only stored (0) and deflate (8))"},
      {"stored entry with two sizes", [] { return patched([](Base& b) { patch_le(b.file, b.layout.central_offsets[4] + 20, 4, 4); }); },
       "bad.file: zip entry 'archive/data/0': stored entry with compressed size 4 != size 12"},
      {"duplicate entry name", [] {
         ZipBuilder z;
         z.add("archive/data.pkl", "x").add("archive/data.pkl", "y");
         return z.build(); },
       "bad.file: zip entry 'archive/data.pkl': duplicate entry name"},
      {"overlapping entries", [] { return patched([](Base& b) {
         // data/0 claims to run over data/1's local header.
         const auto grown = b.layout.local_offsets[5] + 40 - b.layout.data_offsets[4];
         patch_le(b.file, b.layout.central_offsets[4] + 20, grown, 4);
         patch_le(b.file, b.layout.central_offsets[4] + 24, grown, 4); }); },
       "bad.file: zip entries 'archive/data/0' and 'archive/data/1' overlap (a zip bomb or a corrupt directory)"},
      {"zip bomb: impossible inflation ratio", [] {
         ZipLayout layout;
         ZipBuilder z;
         z.add("archive/data.pkl", torch_state_dict_pickle({}), true);
         Bytes f = z.build({.align = 0, .zip64 = false, .data_descriptor = true, .comment = {}}, &layout);
         patch_le(f, layout.central_offsets[0] + 24, 1u << 30, 4);
         return f; },
       "bad.file: zip entry 'archive/data.pkl': claims 1073741824 bytes from"},
      {"deflated entry longer than declared", [] {
         ZipLayout layout;
         ZipBuilder z;
         z.add("archive/data.pkl", torch_state_dict_pickle({}), true);
         Bytes f = z.build({.align = 0, .zip64 = false, .data_descriptor = true, .comment = {}}, &layout);
         patch_le(f, layout.central_offsets[0] + 24, 10, 4);
         return f; },
       "bad.file: zip entry 'archive/data.pkl': inflates to more than its declared 10 bytes"},
      {"corrupt deflate stream", [] {
         ZipLayout layout;
         ZipBuilder z;
         z.add("archive/data.pkl", torch_state_dict_pickle({}), true);
         Bytes f = z.build({}, &layout);
         f[layout.data_offsets[0]] = std::byte{0xff};  // block type 3 does not exist
         return f; },
       "bad.file: zip entry 'archive/data.pkl': deflate data is corrupt or truncated"},
      {"pickle CRC mismatch", [] { return patched([](Base& b) { b.file[b.layout.data_offsets[0] + 5] ^= std::byte{0x20}; }); },
       "bad.file: zip entry 'archive/data.pkl': CRC-32 mismatch"},
      {"storage CRC mismatch (verify_checksums)", [] { return patched([](Base& b) { b.file[b.layout.data_offsets[5]] ^= std::byte{1}; }); },
       "bad.file: zip entry 'archive/data/1': CRC-32 mismatch", false, verifying()},
      {"zip64 locator points nowhere", [] {
         Base b = base({.align = 64, .zip64 = true, .data_descriptor = false, .comment = {}});
         patch_le(b.file, b.layout.eocd - 20 + 8, b.layout.zip64_eocd - 8, 8);
         return b.file; },
       "bad.file: zip64 end of central directory signature missing at offset"},
      {"zip64 locator past its own position", [] {
         Base b = base({.align = 64, .zip64 = true, .data_descriptor = false, .comment = {}});
         patch_le(b.file, b.layout.eocd - 20 + 8, b.file.size(), 8);
         return b.file; },
       "is not before its locator"},
      {"zip64 sizes without the extra field", [] {
         Base b = base({.align = 64, .zip64 = false, .data_descriptor = false, .comment = {}});
         patch_le(b.file, b.layout.central_offsets[4] + 24, 0xffffffffu, 4);
         return b.file; },
       "bad.file: zip entry 'archive/data/0': sizes or offset are 0xffffffff but there is no zip64 extra field"},
      {"split archive", [] { return patched([](Base& b) { patch_le(b.file, b.layout.eocd + 4, 1, 2); }); },
       "bad.file: multi-disk (split) zip archives are not supported"},
  };
}

// ---- torch checkpoint structure ------------------------------------------------------------

// A torch zip whose pickle is `pickle` and whose storages are data/0 (12 bytes) and data/1 (8).
Bytes with_pickle(const PickleBuilder& pickle) {
  static const Bytes s0(12), s1(8);
  return torch_zip(pickle.bytes(), {&s0, &s1});
}
// {"w": tensor} with the given view of storage data/0 (3 floats).
PickleBuilder one_tensor(std::string_view type, std::int64_t numel, std::int64_t offset, std::vector<std::int64_t> shape,
                         std::vector<std::int64_t> strides, std::string key = "0") {
  PickleBuilder p;
  p.proto().empty_dict().str("w").tensor(type, key, numel, offset, shape, strides).setitem().stop();
  return p;
}

std::vector<Case> torch_cases() {
  return {
      {"no data.pkl", [] { return ZipBuilder().add("archive/data/0", "abcd").build(); },
       "bad.file: no data.pkl entry: this zip is not a PyTorch checkpoint"},
      {"two data.pkl", [] { return ZipBuilder().add("a/data.pkl", "x").add("b/data.pkl", "y").build(); },
       "bad.file: several <archive>/data.pkl entries: ambiguous PyTorch checkpoint"},
      {"big-endian checkpoint", [] { return read_bytes(checkpoint_fixture("bigendian.pt")); },
       "bad.file: the checkpoint was saved on a big-endian machine (bigendian/byteorder = big); fiber reads little-endian"},
      {"byteorder garbage", [] { return ZipBuilder().add("a/data.pkl", "x").add("a/byteorder", "middle").build(); },
       "bad.file: a/byteorder holds 'middle', expected 'little' or 'big'"},
      {"missing storage", [] { return with_pickle(one_tensor("FloatStorage", 3, 0, {3}, {1}, "7")); },
       "bad.file: tensor 'w': its storage 'archive/data/7' is missing from the archive"},
      {"storage size disagrees", [] { return with_pickle(one_tensor("FloatStorage", 2, 0, {2}, {1}, "0")); },
       "bad.file: tensor 'w': storage 'archive/data/0' holds 12 bytes, but the pickle says 2 F32 elements (8 bytes)"},
      {"view past its storage", [] { return with_pickle(one_tensor("FloatStorage", 3, 1, {3}, {1})); },
       "bad.file: tensor 'w': view (offset 1, last element 3) runs past the end of its storage (3 F32 elements, 12 bytes)"},
      {"negative dimension", [] { return with_pickle(one_tensor("FloatStorage", 3, 0, {-1}, {1})); },
       "bad.file: tensor 'w' shape: dimension -1 is negative"},
      {"absurd element count", [] { return with_pickle(one_tensor("FloatStorage", std::int64_t(1) << 62, 0, {1}, {1})); },
       "bad.file: tensor 'w' storage size: size overflows 64 bits"},
      {"top level is an int", [] { return with_pickle(PickleBuilder().proto().integer(3).stop()); },
       "bad.file: the checkpoint holds a int, not a state dict"},
      {"top level calls os.system: nothing runs, clear error", [] {
         return with_pickle(PickleBuilder().proto().global("os", "system").str("touch /tmp/pwned").op(0x85).reduce().stop()); },
       "bad.file: the checkpoint's top-level object cannot be read: it is an object built by 'os.system'"},
      {"state_dict is an opaque object", [] {
         return with_pickle(PickleBuilder().proto().empty_dict().str("state_dict").global("evil", "Module").empty_tuple()
                                .op(0x81).setitem().stop()); },
       "bad.file: the checkpoint's 'state_dict' cannot be read: it is an object built by 'evil.Module'"},
      {"cyclic state dict", [] {
         return with_pickle(PickleBuilder().proto().empty_dict().binput(0).str("self").binget(0).setitem().stop()); },
       "bad.file: objects nest deeper than 100 levels at 'self.self.self"},
  };
}

// ---- pickle ---------------------------------------------------------------------------------

std::vector<Case> pickle_cases() {
  io::OpenOptions few_nodes;
  few_nodes.pickle.max_nodes = 50;
  PickleBuilder deep;
  deep.proto().empty_dict();
  for (int i = 0; i < 150; ++i) deep.str("k").empty_dict();
  for (int i = 0; i < 150; ++i) deep.setitem();
  deep.stop();
  return {
      {"unknown opcode", [] { return with_pickle(PickleBuilder().proto().op(0xff).stop()); },
       "bad.file: archive/data.pkl: unknown pickle opcode 0xff at offset 2"},
      {"protocol 0 opcode", [] { return with_pickle(PickleBuilder().proto().op('i').raw("os\nsystem\n").stop()); },
       "bad.file: archive/data.pkl: pickle opcode INST (0x69) at offset 2 is not supported (torch.save does not emit it)"},
      {"no STOP", [] { return with_pickle(PickleBuilder().proto().empty_dict()); },
       "bad.file: archive/data.pkl: pickle ends at offset 3 before its STOP opcode (truncated)"},
      {"stack underflow", [] { return with_pickle(PickleBuilder().proto().reduce().stop()); },
       "bad.file: archive/data.pkl: pickle opcode REDUCE at offset 2: stack underflow"},
      {"memo key never stored", [] { return with_pickle(PickleBuilder().proto().binget(5).stop()); },
       "bad.file: archive/data.pkl: pickle opcode BINGET at offset 2: memo key 5 was never stored"},
      {"TUPLE without MARK", [] { return with_pickle(PickleBuilder().proto().integer(1).tuple().stop()); },
       "bad.file: archive/data.pkl: pickle opcode TUPLE at offset 4: no MARK on the stack"},
      {"nesting too deep", [deep] { return with_pickle(deep); }, "bad.file: objects nest deeper than 100 levels"},
      {"object limit", [] {
         PickleBuilder p;
         p.proto().op(']').mark();
         for (int i = 0; i < 60; ++i) p.op(']');
         return with_pickle(p.op('e').stop()); },
       "bad.file: archive/data.pkl: pickle: more than 50 objects (memory limit", false, few_nodes},
      {"string past the end", [] { return with_pickle(PickleBuilder().proto().op('X').le(1000, 4).raw("abc")); },
       "bad.file: archive/data.pkl: pickle opcode BINUNICODE at offset 2: length 1000 runs past the end of the pickle"},
      {"invalid UTF-8", [] { return with_pickle(PickleBuilder().proto().op('X').le(2, 4).raw("\xc3\x28").stop()); },
       "bad.file: archive/data.pkl: pickle opcode BINUNICODE at offset 2: string is not valid UTF-8"},
      {"bad persistent id", [] { return with_pickle(PickleBuilder().proto().str("storage").op(0x85).op('Q').stop()); },
       "pickle opcode BINPERSID at offset 15: persistent id is not ('storage', type, key, location, numel)"},
      {"rebuild with two arguments", [] {
         return with_pickle(PickleBuilder().proto().global("torch._utils", "_rebuild_tensor_v2").integer(1).integer(2)
                                .op(0x86).reduce().stop()); },
       "torch._utils._rebuild_tensor_v2: 2 arguments, expected (storage, offset, size, stride, ...)"},
      {"size holds a string", [] {
         PickleBuilder p;
         p.proto().global("torch._utils", "_rebuild_tensor_v2").mark();
         p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(3).tuple().op('Q');
         p.integer(0).str("3").op(0x85).tuple_of({1}).tuple().reduce().stop();
         return with_pickle(p); },
       "torch._utils._rebuild_tensor_v2: size is a str, expected an int"},
      {"size holds a huge int", [] {
         PickleBuilder p;
         p.proto().global("torch._utils", "_rebuild_tensor_v2").mark();
         p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(3).tuple().op('Q');
         p.integer(0).op(0x8a).le(9, 1).le(0, 8).le(1, 1).op(0x85).tuple_of({1}).tuple().reduce().stop();
         return with_pickle(p); },
       "torch._utils._rebuild_tensor_v2: size is a int (more than 64 bits), expected an int"},
      {"rank above 64", [] { return with_pickle(one_tensor("FloatStorage", 3, 0, std::vector<std::int64_t>(65, 1),
                                                           std::vector<std::int64_t>(65, 1))); },
       "torch._utils._rebuild_tensor_v2: size has 65 dimensions, more than 64"},
      {"SETITEMS on a list", [] { return with_pickle(PickleBuilder().proto().op(']').mark().str("k").integer(1).setitems().stop()); },
       "bad.file: archive/data.pkl: pickle opcode SETITEMS at offset 12: target is a list, expected a dict"},
      {"protocol from the future", [] { return with_pickle(PickleBuilder().proto(9).none().stop()); },
       "bad.file: archive/data.pkl: pickle opcode PROTO at offset 0: protocol 9 is newer than 5"},
      {"GLOBAL that is not an identifier", [] { return with_pickle(PickleBuilder().proto().global("os;rm", "x").stop()); },
       "pickle opcode GLOBAL at offset 2: module or name contains byte 59 (not an identifier)"},
      {"BUILD on a list", [] { return with_pickle(PickleBuilder().proto().op(']').empty_dict().op('b').stop()); },
       "pickle opcode BUILD at offset 4: cannot set the state of a list"},
      {"odd DICT items", [] { return with_pickle(PickleBuilder().proto().mark().integer(1).op('d').stop()); },
       "pickle opcode DICT at offset 5: odd number of values (1) for key/value pairs"},
  };
}

void run_cases(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    CAPTURE(c.label);
    CHECK_THROWS_WITH_AS(load_all(c), doctest::Contains(c.message.c_str()), Error);
  }
}

}  // namespace

TEST_CASE("malformed safetensors") { run_cases(safetensors_cases()); }
TEST_CASE("unrecognised and unsupported formats") { run_cases(detection_cases()); }
TEST_CASE("malformed zip archives") { run_cases(zip_cases()); }
TEST_CASE("malformed torch checkpoints") { run_cases(torch_cases()); }
TEST_CASE("malformed pickles") { run_cases(pickle_cases()); }

TEST_CASE("the base inputs of the malformed cases are valid") {
  // So each case fails because of its one edit, not because its base was broken.
  CHECK_NOTHROW(load_all({"base", [] { return base().file; }, ""}));
  CHECK_NOTHROW(load_all({"zip64 base", [] { return base({.align = 64, .zip64 = true, .data_descriptor = false, .comment = {}}).file; }, ""}));
  CHECK_NOTHROW(load_all({"one tensor", [] { return with_pickle(one_tensor("FloatStorage", 3, 0, {3}, {1})); }, ""}));
  CHECK(safetensors_cases().size() + detection_cases().size() + zip_cases().size() + torch_cases().size() +
            pickle_cases().size() >= 50);
}
