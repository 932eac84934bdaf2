// decode_image / read_image: format sniffing and the malformed inputs every decoder must turn
// into a clear fiber::Error (never a crash, abort or exit). Each case states the message.
#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fiber/io/image_decode.hpp"
#include "image_fixtures.hpp"

using Bytes = std::vector<std::uint8_t>;
using fiber::io::decode_image;
using fiber::io::ImageLimits;
using fiber::test::image_data_dir;

namespace {

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(v >> shift));
}

// A PNG chunk with its length and CRC.
Bytes png_chunk(const std::string& type, const Bytes& data) {
  Bytes out;
  put_u32(out, std::uint32_t(data.size()));
  Bytes body(type.begin(), type.end());
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  put_u32(out, std::uint32_t(crc32(0, body.data(), uInt(body.size()))));
  return out;
}

Bytes ihdr(std::uint32_t w, std::uint32_t h, std::uint8_t depth = 8, std::uint8_t color = 2) {
  Bytes d;
  put_u32(d, w);
  put_u32(d, h);
  d.insert(d.end(), {depth, color, 0, 0, 0});
  return d;
}

Bytes zlib_compress(const Bytes& raw) {
  uLongf size = compressBound(uLong(raw.size()));
  Bytes out(size);
  REQUIRE(compress(out.data(), &size, raw.data(), uLong(raw.size())) == Z_OK);
  out.resize(size);
  return out;
}

// An RGB8 PNG of w x h whose IDAT holds `raw` (filter bytes included) compressed.
Bytes make_png(const Bytes& ihdr_data, const Bytes& raw) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  for (const Bytes& c : {png_chunk("IHDR", ihdr_data), png_chunk("IDAT", zlib_compress(raw)), png_chunk("IEND", {})})
    out.insert(out.end(), c.begin(), c.end());
  return out;
}

Bytes rgb_rows(int w, int h, std::uint8_t filter = 0) {
  Bytes raw;
  for (int y = 0; y < h; ++y) {
    raw.push_back(filter);
    for (int x = 0; x < 3 * w; ++x) raw.push_back(std::uint8_t(x * 7 + y));
  }
  return raw;
}

Bytes fixture(const std::string& name) { return fiber::test::read_bytes(image_data_dir() / "decode" / name); }

// Offset of the first byte of chunk `type` (its length field) in a PNG.
std::size_t find_chunk(const Bytes& png, const std::string& type) {
  const auto it = std::search(png.begin(), png.end(), type.begin(), type.end());
  REQUIRE(it != png.end());
  return std::size_t(it - png.begin()) - 4;
}

// Offset of the first marker 0xFF `code` in a JPEG.
std::size_t find_marker(const Bytes& jpeg, std::uint8_t code) {
  for (std::size_t i = 0; i + 1 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && jpeg[i + 1] == code) return i;
  FAIL("marker not found");
  return 0;
}

}  // namespace

TEST_CASE("decode_image picks the decoder by signature") {
  const auto png = decode_image(fixture("png_rgb8.png"));
  CHECK(png.width == 23);
  const auto jpeg = decode_image(fixture("jpeg_420.jpg"));
  CHECK(jpeg.width == 37);
  CHECK(fiber::io::sniff_image_format(fixture("jpeg_grey.jpg")) == fiber::io::ImageFormat::jpeg);
  // A JPEG named .png is still a JPEG (as Pillow sniffs, not trusts the name).
  const auto dir = std::filesystem::temp_directory_path() / "fiber_test_image_decode";
  std::filesystem::create_directories(dir);
  {
    const Bytes bytes = fixture("jpeg_7x3.jpg");
    std::ofstream(dir / "really_a_jpeg.png", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  CHECK(fiber::io::read_image(dir / "really_a_jpeg.png").width == 7);
  std::filesystem::remove_all(dir);
}

TEST_CASE("malformed files: missing, empty, not an image") {
  const auto dir = std::filesystem::temp_directory_path() / "fiber_test_image_malformed";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "empty.png").close();
  std::ofstream(dir / "notes.txt") << "hello, this is text";
  // 1. a path that does not exist
  const std::string missing = "image '" + (dir / "missing.png").string() + "': no such file";
  CHECK_THROWS_WITH_AS(fiber::io::read_image(dir / "missing.png"), doctest::Contains(missing.c_str()), fiber::Error);
  // 2. an empty file
  CHECK_THROWS_WITH_AS(fiber::io::read_image(dir / "empty.png"), doctest::Contains("empty.png: not an image: the file is empty (0 bytes)"), fiber::Error);
  // 3. a text file
  CHECK_THROWS_WITH_AS(fiber::io::read_image(dir / "notes.txt"),
                       doctest::Contains("notes.txt: not a PNG or JPEG image (first bytes: 68 65 6c 6c 6f 2c 20 74)"), fiber::Error);
  // 4. a directory
  const std::string directory = "image '" + dir.string() + "': is a directory";
  CHECK_THROWS_WITH_AS(fiber::io::read_image(dir), doctest::Contains(directory.c_str()), fiber::Error);
  std::filesystem::remove_all(dir);
  // 5. a format we do not decode
  const Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0};
  CHECK_THROWS_WITH_AS(decode_image(gif), doctest::Contains("GIF images are not supported; expected PNG or JPEG"), fiber::Error);
  // 6. empty data given directly to each decoder
  CHECK_THROWS_WITH_AS(fiber::io::decode_png({}), doctest::Contains("PNG decode failed: the data is empty"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::decode_jpeg({}), doctest::Contains("JPEG decode failed: the data is empty"), fiber::Error);
  // 7. data that is not PNG given to the PNG decoder
  const std::string text(64, 'x');
  CHECK_THROWS_WITH_AS(fiber::io::decode_png(Bytes(text.begin(), text.end())), doctest::Contains("not a PNG file (bad signature)"), fiber::Error);
  // 8. data that is not JPEG given to the JPEG decoder
  CHECK_THROWS_WITH_AS(fiber::io::decode_jpeg(gif), doctest::Contains("JPEG header read failed: Not a JPEG file"), fiber::Error);
}

TEST_CASE("malformed PNGs") {
  const Bytes good = make_png(ihdr(4, 3), rgb_rows(4, 3));
  CHECK(decode_image(good).at(1, 2, 0) == std::uint8_t(3 * 7 + 2));
  // 9. truncated in the middle of IDAT
  CHECK_THROWS_WITH_AS(decode_image(Bytes(good.begin(), good.begin() + 50), {}, "cut.png"),
                       doctest::Contains("cut.png: PNG decode failed: truncated"), fiber::Error);
  // 10. only the signature
  CHECK_THROWS_WITH_AS(decode_image(Bytes(good.begin(), good.begin() + 8)), doctest::Contains("PNG header read failed"), fiber::Error);
  // 11. bad CRC in IHDR
  Bytes bad_crc = good;
  bad_crc[8 + 4 + 4 + 13] ^= 0xFF;
  CHECK_THROWS_WITH_AS(decode_image(bad_crc), doctest::Contains("bad CRC in a chunk"), fiber::Error);
  // 12. bad CRC in an IDAT chunk (the first of five) and in an ancillary chunk (tEXt)
  const Bytes chunked = fixture("png_rgb8_chunks.png");
  Bytes bad_idat = chunked;
  const std::size_t idat = find_chunk(chunked, "IDAT");
  const std::size_t idat_length = (std::size_t(chunked[idat + 2]) << 8) | chunked[idat + 3];
  bad_idat[idat + 8 + idat_length] ^= 0x01;  // the stored CRC
  CHECK_THROWS_WITH_AS(decode_image(bad_idat), doctest::Contains("PNG decode failed: bad CRC in a chunk"), fiber::Error);
  Bytes bad_text = chunked;
  bad_text[find_chunk(chunked, "tEXt") + 10] ^= 0x01;
  CHECK_THROWS_WITH_AS(decode_image(bad_text), doctest::Contains("bad CRC in a chunk"), fiber::Error);
  // 13. IHDR width 0
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(0, 3), rgb_rows(4, 3))), doctest::Contains("IHDR width is 0 or over 2^31-1"), fiber::Error);
  // 14. IHDR height 0
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(4, 0), rgb_rows(4, 3))), doctest::Contains("IHDR height is 0 or over 2^31-1"), fiber::Error);
  // 15. IHDR lies: 400 x 300 announced, data for 4 x 3; refused before allocating 360 kB
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(400, 300), rgb_rows(4, 3))),
                       doctest::Contains("IHDR announces 400x300 pixels (360000 bytes), more than"), fiber::Error);
  //     and a smaller lie, 40 x 30, that only the decoder itself can catch
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(40, 30), rgb_rows(4, 3))),
                       doctest::Contains("PNG decode failed: image data (IDAT) too short for the IHDR size"), fiber::Error);
  // 16. huge dimensions, over the documented pixel limit (Pillow's bomb threshold)
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(20000, 20000), rgb_rows(4, 3)), {}, "huge.png"),
                       doctest::Contains("huge.png: image size 20000x20000 (400000000 pixels) is over the limit of 178956970 pixels"),
                       fiber::Error);
  // 17. a caller's tighter limit
  ImageLimits tight;
  tight.max_pixels = 10;
  CHECK_THROWS_WITH_AS(decode_image(good, tight), doctest::Contains("image size 4x3 (12 pixels) is over the limit of 10 pixels"), fiber::Error);
  // 18. an invalid row filter type
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(4, 3), rgb_rows(4, 3, 9))), doctest::Contains("invalid row filter type"), fiber::Error);
  // 19. IDAT that is not a zlib stream
  Bytes not_zlib = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  for (const Bytes& c : {png_chunk("IHDR", ihdr(4, 3)), png_chunk("IDAT", Bytes(40, 0x55)), png_chunk("IEND", {})})
    not_zlib.insert(not_zlib.end(), c.begin(), c.end());
  CHECK_THROWS_WITH_AS(decode_image(not_zlib), doctest::Contains("PNG decode failed"), fiber::Error);
  // 20. bit depth not allowed for the colour type (RGB at 4 bits)
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(4, 3, 4, 2), rgb_rows(4, 3))), doctest::Contains("PNG header read failed"), fiber::Error);
  // 21. palette image without a PLTE chunk
  CHECK_THROWS_WITH_AS(decode_image(make_png(ihdr(4, 3, 8, 3), Bytes(15, 0))), doctest::Contains("PNG"), fiber::Error);
}

TEST_CASE("malformed JPEGs") {
  const Bytes good = fixture("jpeg_420.jpg");
  // 22. truncated half way through the entropy-coded data
  CHECK_THROWS_WITH_AS(decode_image(Bytes(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2)), {}, "cut.jpg"),
                       doctest::Contains("cut.jpg: JPEG decode failed: truncated (the data ends before the end-of-image marker)"), fiber::Error);
  // 23. only the SOI marker and one more byte
  CHECK_THROWS_WITH_AS(decode_image(Bytes(good.begin(), good.begin() + 3)), doctest::Contains("JPEG header read failed: truncated"), fiber::Error);
  // 24. only the EOI marker missing (Pillow: "image file is truncated" too)
  CHECK_THROWS_WITH_AS(decode_image(Bytes(good.begin(), good.end() - 2)), doctest::Contains("JPEG decode failed: truncated"), fiber::Error);
  // 25. SOF says width 0
  Bytes zero_width = good;
  const std::size_t sof = find_marker(good, 0xC0);
  zero_width[sof + 7] = 0;
  zero_width[sof + 8] = 0;
  CHECK_THROWS_WITH_AS(decode_image(zero_width), doctest::Contains("JPEG header read failed"), fiber::Error);
  // 26. SOF says 65000 x 65000: over the pixel limit, refused before anything is allocated
  Bytes huge = good;
  huge[sof + 5] = huge[sof + 7] = 0xFD;
  huge[sof + 6] = huge[sof + 8] = 0xE8;
  CHECK_THROWS_WITH_AS(decode_image(huge), doctest::Contains("image size 65000x65000 (4225000000 pixels) is over the limit"), fiber::Error);
  // 27. 12-bit samples (Pillow: "cannot handle 12-bit layers")
  Bytes twelve_bit = good;
  twelve_bit[sof + 4] = 12;
  CHECK_THROWS_WITH_AS(decode_image(twelve_bit), doctest::Contains("Unsupported JPEG data precision 12"), fiber::Error);
  // 28. a progressive JPEG with more scans than jpeg_max_scans (its last scan repeated)
  const Bytes progressive = fixture("jpeg_progressive.jpg");
  std::size_t last_sos = 0;
  for (std::size_t i = 0; i + 1 < progressive.size(); ++i)
    if (progressive[i] == 0xFF && progressive[i + 1] == 0xDA) last_sos = i;
  const Bytes scan(progressive.begin() + std::ptrdiff_t(last_sos), progressive.end() - 2);
  Bytes many_scans(progressive.begin(), progressive.end() - 2);
  for (int i = 0; i < fiber::io::jpeg_max_scans; ++i) many_scans.insert(many_scans.end(), scan.begin(), scan.end());
  many_scans.insert(many_scans.end(), {0xFF, 0xD9});
  CHECK_THROWS_WITH_AS(decode_image(many_scans), doctest::Contains("more than 500 scans"), fiber::Error);
  // 29. garbage where the entropy-coded data should be (no 0xFF, so no markers): libjpeg decodes
  // what it can and warns, as in Pillow; the result has the right size.
  Bytes garbage = good;
  const std::size_t sos = find_marker(good, 0xDA);
  for (std::size_t i = sos + 20; i < garbage.size() - 2; ++i) garbage[i] = std::uint8_t((i * 151) % 255);
  CHECK(decode_image(garbage).height == 29);
  // 30. a bad marker inside the entropy-coded data
  Bytes bad_marker = garbage;
  bad_marker[sos + 40] = 0xFF;
  bad_marker[sos + 41] = 0x96;
  CHECK_THROWS_WITH_AS(decode_image(bad_marker), doctest::Contains("JPEG decode failed: Unsupported marker type 0x96"), fiber::Error);
}
