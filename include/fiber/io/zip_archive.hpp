#pragma once
// ZipArchive: a reader for the zip files torch.save writes (and any other plain zip): finds the
// end of central directory (after a comment, through the zip64 locator), reads the central
// directory, checks every local header against it, and hands out entry bytes.
//
// Stored entries (what torch writes, 64-byte aligned) are returned in place, without a copy.
// Deflated entries are inflated with zlib into an owned buffer, under limits that make zip bombs
// harmless: the declared size must be plausible for its compressed size (deflate cannot exceed
// 1032:1), below a per-entry and a per-archive budget, and inflation stops at the declared size.
// Entries whose bytes overlap another's are refused (the overlapping-entries zip bomb), and so
// are names that could escape a directory ("..", absolute paths, backslashes).
// zconf.h defines FAR (empty; a 16-bit DOS relic) as libjpeg's headers do. fiber leaves no FAR
// behind (see libjpeg_macros.hpp) and keeps one that was defined before it.
#pragma push_macro("FAR")
#include <zlib.h>
#undef FAR
#pragma pop_macro("FAR")

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/io/byte_reader.hpp"
#include "fiber/io/byte_source.hpp"
#include "fiber/io/checked_size.hpp"
#include "fiber/io/mapped_file.hpp"

namespace fiber::io {

struct ZipLimits {
  std::uint64_t max_entries = 1u << 20;
  std::uint64_t max_inflated_entry = std::uint64_t(4) << 30;  // bytes one deflated entry may grow to
  std::uint64_t max_inflated_total = std::uint64_t(16) << 30;  // all inflations of one archive
};

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 stored, 8 deflated
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;  // uncompressed
  std::uint64_t local_header_offset = 0;
  std::uint64_t data_offset = 0;  // first byte of the (compressed) data in the file
};

class ZipArchive {
 public:
  explicit ZipArchive(ByteSource source, ZipLimits limits = {})
      : source_(std::move(source)), limits_(limits),
        inflated_total_(std::make_shared<std::atomic<std::uint64_t>>(0)) {
    read_central_directory();
  }

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const std::string& name() const { return source_.name; }

  const ZipEntry* find(std::string_view entry_name) const {
    auto it = index_.find(std::string(entry_name));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }

  // The entry's uncompressed bytes: in place for a stored entry, inflated into an owned buffer
  // for a deflated one. With verify_crc the CRC-32 is checked (a pass over the data).
  ByteSource read(const ZipEntry& entry, bool verify_crc) const {
    const std::string where = source_.name + ": zip entry '" + entry.name + "'";
    ByteSource out;
    out.name = source_.name;
    if (entry.method == 0) {
      out.bytes = source_.bytes.subspan(entry.data_offset, entry.size);
      out.owner = source_.owner;
      out.mapping = source_.mapping;
    } else {
      auto buffer = inflate(entry, where);
      out.bytes = std::span<const std::byte>(buffer->data(), buffer->size());
      out.owner = std::move(buffer);
    }
    if (verify_crc) {
      const std::uint32_t actual = crc_of(out.bytes);
      FIBER_CHECK(actual == entry.crc32, where, ": CRC-32 mismatch (stored ", hex(entry.crc32), ", data has ",
                  hex(actual), "): the file is corrupt");
    }
    return out;
  }

  // CRC-32 of `bytes`; large spans are split over the thread pool and the parts combined.
  static std::uint32_t crc_of(std::span<const std::byte> bytes) {
    constexpr std::size_t part_min = std::size_t(16) << 20;
    const std::size_t parts = std::min<std::size_t>(std::size_t(num_threads()), bytes.size() / part_min);
    if (parts < 2 || in_parallel_region()) return crc_serial(bytes);
    std::vector<std::uint32_t> crcs(parts);
    const std::size_t step = bytes.size() / parts;
    thread_pool().run(std::int64_t(parts), [&](std::int64_t p) {
      const std::size_t begin = std::size_t(p) * step, end = p + 1 == std::int64_t(parts) ? bytes.size() : begin + step;
      crcs[std::size_t(p)] = crc_serial(bytes.subspan(begin, end - begin));
    });
    uLong crc = crcs[0];
    for (std::size_t p = 1; p < parts; ++p) {
      const std::size_t length = p + 1 == parts ? bytes.size() - p * step : step;
      crc = ::crc32_combine(crc, crcs[p], z_off_t(length));
    }
    return std::uint32_t(crc);
  }

  static std::uint32_t crc_serial(std::span<const std::byte> bytes) {
    uLong crc = ::crc32(0L, Z_NULL, 0);
    const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
    std::size_t n = bytes.size();
    while (n > 0) {  // zlib takes 32-bit lengths
      const uInt chunk = uInt(std::min<std::size_t>(n, 1u << 30));
      crc = ::crc32(crc, p, chunk);
      p += chunk;
      n -= chunk;
    }
    return std::uint32_t(crc);
  }

 private:
  static constexpr std::uint32_t local_signature = 0x04034b50;
  static constexpr std::uint32_t central_signature = 0x02014b50;
  static constexpr std::uint32_t eocd_signature = 0x06054b50;
  static constexpr std::uint32_t zip64_eocd_signature = 0x06064b50;
  static constexpr std::uint32_t zip64_locator_signature = 0x07064b50;
  static constexpr std::uint64_t eocd_size = 22;
  static constexpr std::uint64_t max_comment = 0xffff;

  static std::string hex(std::uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    std::string s = "0x";
    for (int i = 28; i >= 0; i -= 4) s += digits[(v >> i) & 0xf];
    return s;
  }

  struct Directory {
    std::uint64_t entries = 0, size = 0, offset = 0;
    std::uint64_t end = 0;  // where the records after the central directory begin
  };

  // The last end-of-central-directory record whose comment fits in the file.
  std::uint64_t find_eocd(const ByteReader& file) const {
    const std::uint64_t size = file.size();
    if (size < eocd_size)
      fail(name(), ": zip end of central directory not found (file of ", size, " bytes is too short)");
    const std::uint64_t lowest = size > eocd_size + max_comment ? size - eocd_size - max_comment : 0;
    for (std::uint64_t pos = size - eocd_size + 1; pos-- > lowest;) {
      ByteReader r = file.sub(pos, eocd_size, "end of central directory");
      if (r.u32("signature") != eocd_signature) continue;
      r.skip(16, "record");
      const std::uint64_t comment = r.u16("comment length");
      if (pos + eocd_size + comment <= size) return pos;
    }
    fail(name(), ": zip end of central directory not found (not a zip file, or truncated)");
  }

  Directory read_directory_location(const ByteReader& file) const {
    const std::uint64_t eocd = find_eocd(file);
    ByteReader r = file.sub(eocd, eocd_size, "end of central directory");
    r.skip(4, "signature");
    const std::uint16_t disk = r.u16("disk number"), cd_disk = r.u16("central directory disk");
    const std::uint16_t disk_entries = r.u16("entries on this disk");
    Directory d;
    d.entries = r.u16("entry count");
    d.size = r.u32("central directory size");
    d.offset = r.u32("central directory offset");
    d.end = eocd;
    FIBER_CHECK(disk == 0 && cd_disk == 0 && disk_entries == d.entries, name(),
                ": multi-disk (split) zip archives are not supported");
    // zip64: a locator right before the EOCD points to the zip64 EOCD record.
    if (eocd >= 20) {
      ByteReader loc = file.sub(eocd - 20, 20, "zip64 end of central directory locator");
      if (loc.u32("signature") == zip64_locator_signature) {
        const std::uint32_t z_disk = loc.u32("zip64 locator disk");
        const std::uint64_t z_offset = loc.u64("zip64 end of central directory offset");
        FIBER_CHECK(z_disk == 0 && loc.u32("disk count") <= 1, name(), ": multi-disk zip64 archives are not supported");
        FIBER_CHECK(z_offset <= eocd - 20 && eocd - 20 - z_offset >= 56, name(),
                    ": zip64 end of central directory offset ", z_offset, " is not before its locator (at ",
                    eocd - 20, ")");
        ByteReader z = file.sub(z_offset, 56, "zip64 end of central directory");
        FIBER_CHECK(z.u32("signature") == zip64_eocd_signature, name(),
                    ": zip64 end of central directory signature missing at offset ", z_offset);
        z.skip(8 + 2 + 2, "record size and versions");
        FIBER_CHECK(z.u32("disk") == 0 && z.u32("central directory disk") == 0, name(),
                    ": multi-disk zip64 archives are not supported");
        const std::uint64_t z_disk_entries = z.u64("entries on this disk");
        d.entries = z.u64("zip64 entry count");
        FIBER_CHECK(z_disk_entries == d.entries, name(), ": multi-disk zip64 archives are not supported");
        d.size = z.u64("zip64 central directory size");
        d.offset = z.u64("zip64 central directory offset");
        d.end = z_offset;
      }
    }
    FIBER_CHECK(d.offset <= d.end && d.size <= d.end - d.offset, name(), ": central directory (offset ", d.offset,
                ", size ", d.size, ") does not lie before the end-of-directory record at ", d.end);
    FIBER_CHECK(d.entries <= limits_.max_entries, name(), ": central directory entry count ", d.entries,
                " exceeds the limit of ", limits_.max_entries);
    FIBER_CHECK(d.entries <= d.size / 46, name(), ": central directory entry count ", d.entries,
                " cannot fit in its ", d.size, " bytes");
    return d;
  }

  static void check_entry_name(std::string_view entry, const std::string& file) {
    FIBER_CHECK(!entry.empty(), file, ": zip entry with an empty name");
    const bool absolute = entry.front() == '/';
    bool dot_dot = false;
    for (std::size_t begin = 0; begin <= entry.size();) {
      std::size_t end = entry.find('/', begin);
      if (end == std::string_view::npos) end = entry.size();
      if (entry.substr(begin, end - begin) == "..") dot_dot = true;
      begin = end + 1;
    }
    const bool odd = entry.find('\\') != std::string_view::npos || entry.find('\0') != std::string_view::npos;
    FIBER_CHECK(!absolute && !dot_dot && !odd, file, ": zip entry name '", entry,
                "' is unsafe (absolute, '..' component, backslash or NUL)");
  }

  // Applies the zip64 extra field (id 1) to the fields that were saturated in the record.
  static void apply_zip64_extra(ByteReader extra, ZipEntry& e, bool size_sat, bool compressed_sat,
                                bool offset_sat, const std::string& where) {
    while (extra.remaining() >= 4) {
      const std::uint16_t id = extra.u16("extra field id");
      const std::uint16_t length = extra.u16("extra field length");
      ByteReader field = extra.sub(extra.position(), length, "extra field");
      extra.skip(length, "extra field");
      if (id != 1) continue;
      if (size_sat) e.size = field.u64("zip64 uncompressed size");
      if (compressed_sat) e.compressed_size = field.u64("zip64 compressed size");
      if (offset_sat) e.local_header_offset = field.u64("zip64 local header offset");
      return;
    }
    FIBER_CHECK(!size_sat && !compressed_sat && !offset_sat, where,
                ": sizes or offset are 0xffffffff but there is no zip64 extra field");
  }

  void read_central_directory() {
    ByteReader file(source_.bytes, source_.name);
    const Directory dir = read_directory_location(file);
    ByteReader cd = file.sub(dir.offset, dir.size, "central directory");
    entries_.reserve(std::size_t(dir.entries));
    for (std::uint64_t i = 0; i < dir.entries; ++i) {
      if (cd.u32("central directory record signature") != central_signature)
        fail(name(), ": central directory record ", i, " at offset ", cd.file_offset() - 4, " has a bad signature");
      ZipEntry e;
      cd.skip(4, "versions");
      const std::uint16_t flags = cd.u16("flags");
      e.method = cd.u16("compression method");
      cd.skip(4, "modification time");
      e.crc32 = cd.u32("crc-32");
      e.compressed_size = cd.u32("compressed size");
      e.size = cd.u32("uncompressed size");
      const std::uint16_t name_length = cd.u16("name length");
      const std::uint16_t extra_length = cd.u16("extra length");
      const std::uint16_t comment_length = cd.u16("comment length");
      cd.skip(8, "disk and attributes");
      e.local_header_offset = cd.u32("local header offset");
      e.name = std::string(cd.chars(name_length, "entry name"));
      const std::string where = name() + ": zip entry '" + e.name + "'";
      check_entry_name(e.name, name());
      apply_zip64_extra(cd.sub(cd.position(), extra_length, "extra field"), e, e.size == 0xffffffffu,
                        e.compressed_size == 0xffffffffu, e.local_header_offset == 0xffffffffu, where);
      cd.skip(std::uint64_t(extra_length) + comment_length, "extra field and comment");
      FIBER_CHECK(!(flags & 0x1) && !(flags & 0x40), where, ": encrypted entries are not supported");
      FIBER_CHECK(e.method == 0 || e.method == 8, where, ": compression method ", e.method,
                  " is not supported (only stored (0) and deflate (8))");
      FIBER_CHECK(e.method != 0 || e.compressed_size == e.size, where, ": stored entry with compressed size ",
                  e.compressed_size, " != size ", e.size);
      check_local_header(file, e, dir, where);
      if (!index_.emplace(e.name, entries_.size()).second) fail(where, ": duplicate entry name");
      entries_.push_back(std::move(e));
    }
    check_no_overlap();
  }

  void check_local_header(const ByteReader& file, ZipEntry& e, const Directory& dir, const std::string& where) const {
    FIBER_CHECK(e.local_header_offset < dir.offset, where, ": local header offset ", e.local_header_offset,
                " is not before the central directory (", dir.offset, ")");
    ByteReader r = file.sub(e.local_header_offset, dir.offset - e.local_header_offset, "local header");
    FIBER_CHECK(r.remaining() >= 30 && r.u32("local header signature") == local_signature, where,
                ": no local header at offset ", e.local_header_offset);
    r.skip(2, "version");
    const std::uint16_t flags = r.u16("local flags");
    const std::uint16_t method = r.u16("local compression method");
    r.skip(4, "modification time");
    const std::uint32_t crc = r.u32("local crc-32");
    const std::uint32_t compressed = r.u32("local compressed size");
    const std::uint32_t size = r.u32("local uncompressed size");
    const std::uint16_t name_length = r.u16("local name length");
    const std::uint16_t extra_length = r.u16("local extra length");
    const std::string_view local_name = r.chars(name_length, "local entry name");
    FIBER_CHECK(local_name == e.name, where, ": local header names it '", local_name, "'");
    FIBER_CHECK(method == e.method, where, ": local header says compression method ", method,
                ", central directory says ", e.method);
    // Without a data descriptor (flag bit 3) the local fields must agree with the directory.
    if (!(flags & 0x8)) {
      FIBER_CHECK(crc == e.crc32, where, ": local header CRC-32 differs from the central directory");
      FIBER_CHECK((compressed == 0xffffffffu || compressed == e.compressed_size) &&
                      (size == 0xffffffffu || size == e.size),
                  where, ": local header sizes (", compressed, ", ", size, ") differ from the central directory (",
                  e.compressed_size, ", ", e.size, ")");
    }
    r.skip(extra_length, "local extra field");
    e.data_offset = r.file_offset();
    // Reading the header mapped its page (a whole large folio, maybe): unmap it again.
    if (source_.mapping)
      source_.mapping->release_around(source_.bytes.subspan(e.local_header_offset, e.data_offset - e.local_header_offset));
    const std::uint64_t end = checked_add(e.data_offset, e.compressed_size, where, "data end");
    FIBER_CHECK(end <= dir.offset, where, ": data [", e.data_offset, ", ", end,
                ") runs past the start of the central directory (", dir.offset, "): truncated or corrupt");
  }

  // Each entry's [local header, end of data) must not reach into the next entry.
  void check_no_overlap() const {
    std::vector<const ZipEntry*> order;
    order.reserve(entries_.size());
    for (const auto& e : entries_) order.push_back(&e);
    std::sort(order.begin(), order.end(),
              [](const ZipEntry* a, const ZipEntry* b) { return a->local_header_offset < b->local_header_offset; });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const ZipEntry& prev = *order[i - 1];
      const std::uint64_t prev_end = prev.data_offset + prev.compressed_size;
      FIBER_CHECK(prev_end <= order[i]->local_header_offset, name(), ": zip entries '", prev.name, "' and '",
                  order[i]->name, "' overlap (a zip bomb or a corrupt directory)");
    }
  }

  std::shared_ptr<std::vector<std::byte>> inflate(const ZipEntry& e, const std::string& where) const {
    // Deflate expands at most 1032:1; a larger claim is a lie.
    const std::uint64_t plausible = checked_mul(e.compressed_size, 1032, where, "compressed size") + 1024;
    FIBER_CHECK(e.size <= plausible, where, ": claims ", e.size, " bytes from ", e.compressed_size,
                " compressed, beyond deflate's 1032:1 maximum (a zip bomb?)");
    FIBER_CHECK(e.size <= limits_.max_inflated_entry, where, ": inflates to ", e.size,
                " bytes, above the limit of ", limits_.max_inflated_entry, " bytes per entry (a zip bomb?)");
    const std::uint64_t total = inflated_total_->fetch_add(e.size) + e.size;
    FIBER_CHECK(total <= limits_.max_inflated_total, where, ": inflating it would bring this archive to ", total,
                " inflated bytes, above the limit of ", limits_.max_inflated_total, " (a zip bomb?)");
    auto out = std::make_shared<std::vector<std::byte>>(std::size_t(e.size));
    z_stream z{};
    FIBER_CHECK(inflateInit2(&z, -MAX_WBITS) == Z_OK, where, ": zlib initialisation failed");
    const auto* in = reinterpret_cast<const Bytef*>(source_.bytes.data() + e.data_offset);
    std::uint64_t in_left = e.compressed_size, out_done = 0;
    int status = Z_OK;
    unsigned char overflow_probe = 0;
    for (;;) {
      const uInt in_chunk = uInt(std::min<std::uint64_t>(in_left, 1u << 30));
      z.next_in = const_cast<Bytef*>(in);
      z.avail_in = in_chunk;
      const bool output_full = out_done == e.size;
      // Once the declared size is reached, offer one byte more: any output there means it lied.
      z.next_out = output_full ? &overflow_probe : reinterpret_cast<Bytef*>(out->data()) + out_done;
      z.avail_out = output_full ? 1 : uInt(std::min<std::uint64_t>(e.size - out_done, 1u << 30));
      const uInt out_offered = z.avail_out;
      status = ::inflate(&z, Z_NO_FLUSH);
      const uInt produced = out_offered - z.avail_out, consumed = in_chunk - z.avail_in;
      in += consumed;
      in_left -= consumed;
      if (output_full && produced > 0) {
        inflateEnd(&z);
        fail(where, ": inflates to more than its declared ", e.size, " bytes (a zip bomb or corrupt)");
      }
      if (!output_full) out_done += produced;
      if (status == Z_BUF_ERROR && (produced > 0 || consumed > 0)) continue;
      if (status != Z_OK) break;  // Z_STREAM_END, an error, or no progress possible
    }
    const std::string message = z.msg ? std::string(", ") + z.msg : std::string();
    inflateEnd(&z);
    FIBER_CHECK(status == Z_STREAM_END, where, ": deflate data is corrupt or truncated (zlib status ", status,
                message, ")");
    FIBER_CHECK(out_done == e.size, where, ": inflates to ", out_done, " bytes, but its size is declared as ",
                e.size);
    return out;
  }

  ByteSource source_;
  ZipLimits limits_;
  std::shared_ptr<std::atomic<std::uint64_t>> inflated_total_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace fiber::io
