#pragma once
// ByteReader: the one place where parsers touch file bytes. Every read names the field it reads;
// a read past the end is a fiber::Error "<file>: <field> at offset N: needs K bytes, M remain",
// never an out-of-bounds access. Offsets in messages are relative to the file, also for readers
// over a part of it (a zip entry).
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "fiber/core/error.hpp"

namespace fiber::io {

static_assert(std::endian::native == std::endian::little,
              "fiber's file readers assume a little-endian host");

class ByteReader {
 public:
  ByteReader(std::span<const std::byte> bytes, std::string_view where, std::uint64_t base_offset = 0)
      : bytes_(bytes), where_(where), base_(base_offset) {}

  std::uint64_t position() const { return pos_; }
  std::uint64_t size() const { return bytes_.size(); }
  std::uint64_t remaining() const { return bytes_.size() - pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }
  std::string_view where() const { return where_; }
  // Offset of the current position in the whole file, for messages.
  std::uint64_t file_offset() const { return base_ + pos_; }

  void skip(std::uint64_t n, std::string_view field) { take(n, field); }

  std::span<const std::byte> bytes(std::uint64_t n, std::string_view field) {
    return bytes_.subspan(take(n, field), n);
  }
  std::string_view chars(std::uint64_t n, std::string_view field) {
    const std::size_t at = take(n, field);
    return {reinterpret_cast<const char*>(bytes_.data()) + at, n};
  }
  // Bytes up to (not including) the next '\n', which is consumed.
  std::string_view line(std::string_view field) {
    const auto* begin = reinterpret_cast<const char*>(bytes_.data()) + pos_;
    const void* nl = std::memchr(begin, '\n', remaining());
    if (!nl) fail(where_, ": ", field, " at offset ", file_offset(), ": no line end before the end of the data");
    const std::size_t n = static_cast<const char*>(nl) - begin;
    pos_ += n + 1;
    return {begin, n};
  }

  std::uint8_t u8(std::string_view field) { return load<std::uint8_t>(field); }
  std::uint16_t u16(std::string_view field) { return load<std::uint16_t>(field); }
  std::uint32_t u32(std::string_view field) { return load<std::uint32_t>(field); }
  std::uint64_t u64(std::string_view field) { return load<std::uint64_t>(field); }
  std::int32_t i32(std::string_view field) { return load<std::int32_t>(field); }
  // A big-endian IEEE double (pickle's BINFLOAT).
  double f64_big_endian(std::string_view field) {
    std::uint64_t v = load<std::uint64_t>(field);
    return std::bit_cast<double>(__builtin_bswap64(v));
  }

  // A reader over [offset, offset + n) of this one, reporting file offsets.
  ByteReader sub(std::uint64_t offset, std::uint64_t n, std::string_view field) const {
    if (offset > bytes_.size() || n > bytes_.size() - offset)
      fail(where_, ": ", field, ": range [", base_ + offset, ", ", base_ + offset, " + ", n,
           ") runs past the end (size ", base_ + bytes_.size(), ")");
    return ByteReader(bytes_.subspan(offset, n), where_, base_ + offset);
  }

 private:
  std::size_t take(std::uint64_t n, std::string_view field) {
    if (n > remaining())
      fail(where_, ": ", field, " at offset ", file_offset(), ": needs ", n, " bytes but only ",
           remaining(), " remain (truncated or corrupt)");
    const std::size_t at = pos_;
    pos_ += n;
    return at;
  }
  template <class T>
  T load(std::string_view field) {
    const std::size_t at = take(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_.data() + at, sizeof(T));
    return v;
  }

  std::span<const std::byte> bytes_;
  std::string where_;
  std::uint64_t base_ = 0;
  std::uint64_t pos_ = 0;
};

}  // namespace fiber::io
