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

// The format of the bytes in `source`; fiber::Error for anything unsupported. A file that is
// neither format is told what is wrong with it as a safetensors file (the format whose signature
// is weakest): too short, header length 0 or past the end of the file, a BOM, not JSON.
inline CheckpointFormat detect_format(const ByteSource& source) {
  const auto* p = reinterpret_cast<const unsigned char*>(source.bytes.data());
  const std::size_t n = source.size();
  if (n >= 4 && p[0] == 'P' && p[1] == 'K' && ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6)))
    return CheckpointFormat::torch_zip;
  // Before the legacy check: a header length such as 0x280 begins with the byte 0x80 a pickle does.
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
  const std::string neither = source.name + ": not a PyTorch zip checkpoint (no \"PK\" signature), and not a valid " +
                              "safetensors file: ";
  if (n < 8)
    fail(neither, "the file holds ", n, " bytes, fewer than the 8-byte header length a safetensors file starts with");
  std::uint64_t header = 0;
  std::memcpy(&header, p, 8);
  const std::string length = "the header length (first 8 bytes, little-endian) is " + std::to_string(header);
  if (header < 2) fail(neither, length, ", too small for a JSON object");
  if (header > n - 8)
    fail(neither, length, ", past the end of the file (", n, " bytes, so at most ", n - 8,
         "): truncated inside its header, or not a safetensors file");
  if (header >= 3 && p[8] == 0xef && p[9] == 0xbb && p[10] == 0xbf)
    fail(neither, "its JSON header starts with a UTF-8 byte order mark (EF BB BF); a safetensors header starts"
                  " with '{'");
  // '{' is the format; any other start of a JSON value is parsed so the message can say what the
  // header holds instead ("a JSON array, expected an object", "not valid JSON").
  if (std::strchr("{[\"-0123456789tfn \t\r\n", p[8]) != nullptr && p[8] != 0) return CheckpointFormat::safetensors;
  static const char hex[] = "0123456789abcdef";
  fail(neither, "its JSON header (", header, " bytes) starts with byte 0x", hex[p[8] >> 4], hex[p[8] & 15],
       ", not '{'");
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
