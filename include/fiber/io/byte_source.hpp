#pragma once
// ByteSource: a read-only byte range, the object that keeps it alive, and the name used in error
// messages (normally the file path). Every parser reads from one; a memory-mapped file, an owned
// buffer and an inflated zip entry all look the same to them.
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace fiber::io {

class MappedFile;

struct ByteSource {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;          // keeps `bytes` valid; null when borrowed
  std::string name;                           // for messages: "model.pth"
  std::shared_ptr<const MappedFile> mapping;  // set when `bytes` lie in a file mapping

  std::size_t size() const { return bytes.size(); }
};

// A source over bytes the caller keeps alive (tests, fuzzers, host-owned buffers).
inline ByteSource borrowed_bytes(std::span<const std::byte> bytes, std::string name) {
  return ByteSource{bytes, nullptr, std::move(name), nullptr};
}

}  // namespace fiber::io
