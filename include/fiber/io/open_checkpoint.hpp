#pragma once
// open_checkpoint: opens a weight file whatever its format, recognised by content, not by name:
//   safetensors        8-byte header length, then '{'
//   PyTorch zip        "PK\3\4" (torch.save since 1.6; .pt, .pth, Lightning .ckpt)
//   legacy PyTorch     a bare pickle or tar (torch.save before 1.6, or _use_new_zipfile_serialization=False):
//                      refused with the command that re-saves it in the zip format.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include "fiber/core/error.hpp"
#include "fiber/io/byte_source.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/io/mapped_file.hpp"
#include "fiber/io/safetensors.hpp"
#include "fiber/io/torch_checkpoint.hpp"

namespace fiber::io {

// The format of the bytes in `source`; fiber::Error for anything unsupported.
inline CheckpointFormat detect_format(const ByteSource& source) {
  const auto* p = reinterpret_cast<const unsigned char*>(source.bytes.data());
  const std::size_t n = source.size();
  if (n >= 4 && p[0] == 'P' && p[1] == 'K' && ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6)))
    return CheckpointFormat::torch_zip;
  if (n >= 9) {
    std::uint64_t header = 0;
    std::memcpy(&header, p, 8);
    if (p[8] == '{' && header >= 2 && header <= n - 8) return CheckpointFormat::safetensors;
  }
  const bool pickle = n >= 2 && p[0] == 0x80 && p[1] <= 5;
  const bool tar = n >= 262 && std::memcmp(p + 257, "ustar", 5) == 0;
  if (pickle || tar)
    fail(source.name, ": legacy PyTorch serialization (", pickle ? "a bare pickle" : "a tar archive",
         ", written by torch < 1.6 or with _use_new_zipfile_serialization=False) is not supported; re-save it in the"
         " zip format with torch >= 1.6: python -c \"import torch; torch.save(torch.load('OLD', map_location='cpu',"
         " weights_only=False), 'NEW.pth')\"");
  fail(source.name, ": neither a safetensors file nor a PyTorch zip checkpoint (", n < 9 ? "too short" : "unknown content",
       ")");
}

inline Checkpoint open_checkpoint(ByteSource source, const OpenOptions& options = {}) {
  switch (detect_format(source)) {
    case CheckpointFormat::safetensors: return read_safetensors(std::move(source), options);
    case CheckpointFormat::torch_zip: return read_torch_checkpoint(std::move(source), options);
  }
  fail(source.name, ": unknown format");
}

// Maps `path` read-only and reads its index; tensors are read when asked for.
inline Checkpoint open_checkpoint(const std::filesystem::path& path, const OpenOptions& options = {}) {
  return open_checkpoint(map_file(path), options);
}

}  // namespace fiber::io
