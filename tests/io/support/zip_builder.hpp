#pragma once
// ZipBuilder: writes small zip archives in memory for tests, fuzz seeds and benchmarks, the way
// torch does (stored, data 64-byte aligned through a padding extra field, optional data
// descriptors and zip64 records) or with deflated entries. It records where each part landed
// so malformed-input tests can patch exactly one field.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fiber::test {

using Bytes = std::vector<std::byte>;

inline Bytes to_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(p, p + s.size());
}

inline void put_le(Bytes& out, std::uint64_t v, int width) {
  for (int i = 0; i < width; ++i) out.push_back(std::byte((v >> (8 * i)) & 0xff));
}
inline void patch_le(Bytes& out, std::size_t at, std::uint64_t v, int width) {
  for (int i = 0; i < width; ++i) out.at(at + i) = std::byte((v >> (8 * i)) & 0xff);
}
inline std::uint64_t read_le(const Bytes& b, std::size_t at, int width) {
  std::uint64_t v = 0;
  for (int i = 0; i < width; ++i) v |= std::uint64_t(std::to_integer<std::uint8_t>(b.at(at + i))) << (8 * i);
  return v;
}

struct ZipLayout {
  std::vector<std::size_t> local_offsets, data_offsets, central_offsets;
  std::size_t central_directory = 0, zip64_eocd = 0, eocd = 0;
  bool has_zip64 = false;
};

struct ZipOptions {
  std::size_t align = 64;        // data alignment (torch: 64); 0 for none
  bool zip64 = false;            // zip64 extras with saturated 32-bit fields, zip64 EOCD + locator
  bool data_descriptor = false;  // flag bit 3, zero sizes in local headers (torch does this)
  std::string comment;           // archive comment after the EOCD
};

class ZipBuilder {
 public:
  using Options = ZipOptions;

  ZipBuilder& add(std::string name, Bytes data, bool deflate = false) {
    entries_.push_back({std::move(name), std::move(data), deflate});
    return *this;
  }
  ZipBuilder& add(std::string name, std::string_view text, bool deflate = false) {
    return add(std::move(name), to_bytes(text), deflate);
  }

  Bytes build(const Options& o = {}, ZipLayout* layout_out = nullptr) const {
    Bytes out;
    ZipLayout layout;
    struct Written {
      std::uint32_t crc;
      std::uint64_t compressed, size, offset;
      std::uint16_t method;
    };
    std::vector<Written> written;
    for (const Entry& e : entries_) {
      Written w{crc(e.data), 0, e.data.size(), out.size(), std::uint16_t(e.deflate ? 8 : 0)};
      const Bytes payload = e.deflate ? deflate(e.data) : e.data;
      w.compressed = payload.size();
      layout.local_offsets.push_back(out.size());
      const bool dd = o.data_descriptor;
      put_le(out, 0x04034b50, 4);
      put_le(out, o.zip64 ? 45 : 20, 2);
      put_le(out, dd ? 0x0808 : 0x0800, 2);
      put_le(out, w.method, 2);
      put_le(out, 0, 4);  // time, date
      put_le(out, dd ? 0 : w.crc, 4);
      put_le(out, dd ? 0 : (o.zip64 ? 0xffffffffu : w.compressed), 4);
      put_le(out, dd ? 0 : (o.zip64 ? 0xffffffffu : w.size), 4);
      put_le(out, e.name.size(), 2);
      Bytes extra;
      if (o.zip64 && !dd) {
        put_le(extra, 1, 2);
        put_le(extra, 16, 2);
        put_le(extra, w.size, 8);
        put_le(extra, w.compressed, 8);
      }
      const std::size_t data_at = out.size() + 2 + e.name.size() + extra.size();
      if (o.align > 0) {  // a padding extra field ("FB", as torch writes) to align the data
        std::size_t pad = (o.align - (data_at + 4) % o.align) % o.align;
        put_le(extra, 0x4246, 2);
        put_le(extra, pad, 2);
        extra.insert(extra.end(), pad, std::byte{'Z'});
      }
      put_le(out, extra.size(), 2);
      const auto* name = reinterpret_cast<const std::byte*>(e.name.data());
      out.insert(out.end(), name, name + e.name.size());
      out.insert(out.end(), extra.begin(), extra.end());
      layout.data_offsets.push_back(out.size());
      out.insert(out.end(), payload.begin(), payload.end());
      if (dd) {
        put_le(out, 0x08074b50, 4);
        put_le(out, w.crc, 4);
        put_le(out, w.compressed, o.zip64 ? 8 : 4);
        put_le(out, w.size, o.zip64 ? 8 : 4);
      }
      written.push_back(w);
    }
    const std::size_t cd_offset = out.size();
    layout.central_directory = cd_offset;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      const Written& w = written[i];
      layout.central_offsets.push_back(out.size());
      put_le(out, 0x02014b50, 4);
      put_le(out, 0x031e, 2);
      put_le(out, o.zip64 ? 45 : 20, 2);
      put_le(out, o.data_descriptor ? 0x0808 : 0x0800, 2);
      put_le(out, w.method, 2);
      put_le(out, 0, 4);
      put_le(out, w.crc, 4);
      put_le(out, o.zip64 ? 0xffffffffu : w.compressed, 4);
      put_le(out, o.zip64 ? 0xffffffffu : w.size, 4);
      put_le(out, e.name.size(), 2);
      put_le(out, o.zip64 ? 28 : 0, 2);
      put_le(out, 0, 2);   // comment
      put_le(out, 0, 2);   // disk
      put_le(out, 0, 2);   // internal attributes
      put_le(out, 0, 4);   // external attributes
      put_le(out, o.zip64 ? 0xffffffffu : w.offset, 4);
      const auto* name = reinterpret_cast<const std::byte*>(e.name.data());
      out.insert(out.end(), name, name + e.name.size());
      if (o.zip64) {
        put_le(out, 1, 2);
        put_le(out, 24, 2);
        put_le(out, w.size, 8);
        put_le(out, w.compressed, 8);
        put_le(out, w.offset, 8);
      }
    }
    const std::size_t cd_size = out.size() - cd_offset;
    if (o.zip64) {
      layout.has_zip64 = true;
      layout.zip64_eocd = out.size();
      put_le(out, 0x06064b50, 4);
      put_le(out, 44, 8);
      put_le(out, 45, 2);
      put_le(out, 45, 2);
      put_le(out, 0, 4);
      put_le(out, 0, 4);
      put_le(out, entries_.size(), 8);
      put_le(out, entries_.size(), 8);
      put_le(out, cd_size, 8);
      put_le(out, cd_offset, 8);
      put_le(out, 0x07064b50, 4);  // locator
      put_le(out, 0, 4);
      put_le(out, layout.zip64_eocd, 8);
      put_le(out, 1, 4);
    }
    layout.eocd = out.size();
    put_le(out, 0x06054b50, 4);
    put_le(out, 0, 2);
    put_le(out, 0, 2);
    put_le(out, o.zip64 ? 0xffff : entries_.size(), 2);
    put_le(out, o.zip64 ? 0xffff : entries_.size(), 2);
    put_le(out, o.zip64 ? 0xffffffffu : cd_size, 4);
    put_le(out, o.zip64 ? 0xffffffffu : cd_offset, 4);
    put_le(out, o.comment.size(), 2);
    const auto* c = reinterpret_cast<const std::byte*>(o.comment.data());
    out.insert(out.end(), c, c + o.comment.size());
    if (layout_out) *layout_out = layout;
    return out;
  }

  static std::uint32_t crc(const Bytes& b) {
    return std::uint32_t(::crc32(::crc32(0, Z_NULL, 0), reinterpret_cast<const Bytef*>(b.data()), uInt(b.size())));
  }
  static Bytes deflate(const Bytes& b) {
    z_stream z{};
    deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    Bytes out(deflateBound(&z, uLong(b.size())) + 16);
    z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(b.data()));
    z.avail_in = uInt(b.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = uInt(out.size());
    ::deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  }

 private:
  struct Entry {
    std::string name;
    Bytes data;
    bool deflate;
  };
  std::vector<Entry> entries_;
};

}  // namespace fiber::test
