// libFuzzer target: the safetensors reader (header length, nlohmann-json header, offsets, views)
// and TensorRecord conversions of whatever it accepts. fiber::Error is the expected outcome for
// bad input; anything else (another exception, a sanitizer report, a crash) is a bug.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fiber/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fiber;
  try {
    io::OpenOptions options;
    options.max_header_bytes = 1 << 20;
    const auto bytes = std::as_bytes(std::span(data, size));
    const io::Checkpoint ck = io::read_safetensors(io::borrowed_bytes(bytes, "fuzz.safetensors"), options);
    for (const auto& name : ck.names()) {
      const io::TensorRecord r = ck.record(name);
      const std::int64_t n = std::min<std::int64_t>(r.numel(), 4096);
      std::vector<double> as_double(static_cast<std::size_t>(n));
      r.copy_to(std::span<double>(as_double), r.numel() - n);
      std::vector<std::byte> same(static_cast<std::size_t>(n) * dtype_size(r.dtype));
      r.copy_to(r.dtype, same);
      if (is_floating(r.dtype)) {
        std::vector<Half> half(static_cast<std::size_t>(n));
        r.copy_to(std::span<Half>(half));
      }
    }
  } catch (const fiber::Error&) {
  }
  return 0;
}
