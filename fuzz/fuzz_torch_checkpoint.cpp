// libFuzzer target: PyTorch zip checkpoints, i.e. the zip reader and the restricted unpickler.
// The first byte picks what the rest is:
//   bit 0 clear: a whole zip archive (central directory, local headers, zip64, deflate, ...);
//   bit 0 set:   a pickle, wrapped here into a valid torch.save-style zip whose storages
//                archive/data/0..7 hold 64 bytes each, so mutations reach deep into the
//                unpickler instead of stopping at the pickle's CRC;
//   bit 1:       checks storage CRCs when tensors are read.
// fiber::Error is the expected outcome for bad input; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fiber/io/open_checkpoint.hpp"
#include "../tests/io/support/pickle_builder.hpp"

namespace {

const std::vector<fiber::test::Bytes>& storages() {
  static const std::vector<fiber::test::Bytes> s = [] {
    std::vector<fiber::test::Bytes> v;
    for (int i = 0; i < 8; ++i) {
      fiber::test::Bytes b(64);
      for (std::size_t j = 0; j < b.size(); ++j) b[j] = std::byte(std::uint8_t(j * 37 + i));
      v.push_back(b);
    }
    return v;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fiber;
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const auto rest = std::as_bytes(std::span(data + 1, size - 1));
  fiber::test::Bytes wrapped;
  std::span<const std::byte> input = rest;
  if (mode & 1) {
    std::vector<const fiber::test::Bytes*> refs;
    for (const auto& s : storages()) refs.push_back(&s);
    wrapped = fiber::test::torch_zip(fiber::test::Bytes(rest.begin(), rest.end()), refs);
    input = wrapped;
  }
  try {
    io::OpenOptions options;
    options.verify_checksums = (mode & 2) != 0;
    options.pickle.max_nodes = 1 << 16;
    options.pickle.max_items = 1 << 20;
    options.pickle.max_stack = 1 << 16;
    options.pickle.max_memo = 1 << 16;
    options.pickle.max_visits = 1 << 18;
    options.zip.max_entries = 1 << 12;
    options.zip.max_inflated_entry = 16 << 20;
    options.zip.max_inflated_total = 64 << 20;
    options.everything = (mode & 4) != 0;
    const io::Checkpoint ck = io::open_checkpoint(io::borrowed_bytes(input, "fuzz.pt"), options);
    for (const auto& name : ck.names()) {
      const io::TensorRecord r = ck.record(name);
      const std::int64_t n = std::min<std::int64_t>(r.numel(), 4096);
      std::vector<double> out(static_cast<std::size_t>(n));
      r.copy_to(std::span<double>(out));
      std::vector<std::byte> same(static_cast<std::size_t>(n) * dtype_size(r.dtype));
      r.copy_to(r.dtype, same, r.numel() - n);
    }
    std::size_t chars = 0;
    for (const auto& p : ck.placeholders()) chars += p.path.size() + p.type.size();
    (void)chars;
  } catch (const fiber::Error&) {
  }
  return 0;
}
