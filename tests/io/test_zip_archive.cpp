// ZipArchive on archives built like torch writes them and like other tools do (comments,
// data descriptors, zip64 records and extras, deflate).
#include <doctest/doctest.h>

#include <string>

#include "fiber/io/zip_archive.hpp"
#include "support/fixtures.hpp"
#include "support/zip_builder.hpp"
#include "test_util.hpp"

using namespace fiber;
using namespace fiber::test;

namespace {
std::string text_of(const io::ByteSource& s) { return std::string(reinterpret_cast<const char*>(s.bytes.data()), s.size()); }
}  // namespace

TEST_CASE("stored, deflated, zip64, data descriptors and comments all read the same") {
  std::string long_text(100000, 'x');
  for (std::size_t i = 0; i < long_text.size(); i += 7) long_text[i] = char('a' + i % 26);
  for (bool zip64 : {false, true})
    for (bool descriptor : {false, true})
      for (std::string comment : {"", "a zip comment"})
        for (bool deflate : {false, true}) {
          CAPTURE(zip64);
          CAPTURE(descriptor);
          CAPTURE(deflate);
          ZipBuilder b;
          b.add("dir/a.txt", "hello", deflate).add("dir/b.bin", long_text, deflate).add("empty", "", deflate);
          const Bytes file = b.build({.align = 64, .zip64 = zip64, .data_descriptor = descriptor, .comment = comment});
          io::ZipArchive zip(io::borrowed_bytes(file, "t.zip"));
          REQUIRE(zip.entries().size() == 3);
          CHECK(text_of(zip.read(*zip.find("dir/a.txt"), true)) == "hello");
          CHECK(text_of(zip.read(*zip.find("dir/b.bin"), true)) == long_text);
          CHECK(zip.read(*zip.find("empty"), true).size() == 0);
          CHECK(zip.find("missing") == nullptr);
          if (!deflate) {
            // Stored data is returned in place, 64-byte aligned inside the file.
            const auto* e = zip.find("dir/b.bin");
            CHECK(zip.read(*e, false).bytes.data() == file.data() + e->data_offset);
            CHECK(e->data_offset % 64 == 0);
          }
        }
}

TEST_CASE("the zip64 fixture written by Python's zipfile") {
  io::ZipArchive zip(io::map_file(checkpoint_fixture("zip64.pt")));
  const auto* pkl = zip.find("zip64/data.pkl");
  REQUIRE(pkl != nullptr);
  CHECK(zip.read(*pkl, true).size() == pkl->size);
}

TEST_CASE("inflated entries are limited per entry and per archive") {
  std::string zeros(1 << 20, '\0');
  const Bytes file = ZipBuilder().add("a", zeros, true).add("b", zeros, true).build();
  io::ZipLimits limits;
  limits.max_inflated_entry = 1 << 19;
  io::ZipArchive small(io::borrowed_bytes(file, "z.zip"), limits);
  CHECK_THROWS_WITH_AS(small.read(*small.find("a"), true),
                       doctest::Contains("z.zip: zip entry 'a': inflates to 1048576 bytes, above the limit of 524288 bytes per entry"),
                       Error);
  limits.max_inflated_entry = 1 << 20;
  limits.max_inflated_total = (1 << 20) + 10;
  io::ZipArchive total(io::borrowed_bytes(file, "z.zip"), limits);
  CHECK(total.read(*total.find("a"), true).size() == zeros.size());
  CHECK_THROWS_WITH_AS(total.read(*total.find("b"), true), doctest::Contains("above the limit of 1048586 (a zip bomb?)"), Error);
}

TEST_CASE("CRC-32 of large entries is computed in parts and combined") {
  // Several threads, so that the parts really are computed apart and combined.
  const fiber::test::RestoreThreads restore_threads;
  set_num_threads(4);
  Bytes big(std::size_t(40) << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::byte((i * 2654435761u) >> 13);
  CHECK(io::ZipArchive::crc_of(big) == io::ZipArchive::crc_serial(big));
  CHECK(io::ZipArchive::crc_of(big) == ZipBuilder::crc(big));
}
