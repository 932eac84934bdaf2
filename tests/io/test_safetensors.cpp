// safetensors: files written by the safetensors package read back exactly, zero-copy; our writer
// round-trips, streams, aligns and is atomic.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/safetensors_writer.hpp"
#include "support/fixtures.hpp"

using namespace fiber;
using namespace fiber::test;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("fiber_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

}  // namespace

TEST_CASE("the safetensors package's file matches torch.save's file tensor for tensor") {
  auto st = io::open_checkpoint(checkpoint_fixture("dtypes.safetensors"));
  auto pt = io::open_checkpoint(checkpoint_fixture("dtypes.pt"));
  CHECK(st.format() == io::CheckpointFormat::safetensors);
  CHECK(st.metadata() == io::Metadata{{"format", "pt"}});
  CHECK(st.size() == pt.size());
  for (const auto& name : pt.names()) {
    CAPTURE(name);
    REQUIRE(st.contains(name));
    CHECK(same_bytes(st.record(name), pt.record(name)));
  }
  // Spot values from the script (special_floats(), ints): independent of both readers.
  const auto f32 = st.record("f32").to_vector<float>();
  CHECK(f32[4] == 65504.0f);
  CHECK(std::isinf(f32[17]));
  CHECK(std::isnan(f32[19]));
  CHECK(st.record("i64").to_vector<std::int64_t>()[4] == INT64_MIN);
  CHECK(st.record("u8").to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 255, 128, 7});
  CHECK(st.record("bool").to_vector<std::uint8_t>() == std::vector<std::uint8_t>{1, 0, 1, 1, 0});
  CHECK(st.info("scalar").shape.empty());
  CHECK(st.info("empty").shape == std::vector<std::int64_t>{0, 3});
  CHECK(st.record("f16").to_vector<float>()[5] == INFINITY);  // 65520 rounds to inf in fp16
}

TEST_CASE("tensors are spans into the mapped file, in data order") {
  const Bytes file = read_bytes(checkpoint_fixture("dtypes.safetensors"));
  auto ck = io::open_checkpoint(io::borrowed_bytes(file, "dtypes.safetensors"));
  const std::uint64_t header = read_le(file, 0, 8);
  const auto r = ck.record(ck.names().front());
  CHECK(r.storage.data() == file.data() + 8 + header);  // the first tensor starts the data section
  for (const auto& name : ck.names()) CHECK(ck.record(name).is_aligned());
}

TEST_CASE("write and read back: every dtype, conversion to f16/bf16, metadata, alignment") {
  TempDir dir;
  auto source = io::open_checkpoint(checkpoint_fixture("views.pt"));
  std::vector<io::TensorRecord> records;
  for (const auto& name : source.names()) records.push_back(source.record(name));  // strided views included
  const fs::path out = dir.path / "views.safetensors";
  io::write_safetensors(out, records, {{"format", "pt"}, {"note", "written by fiber"}});
  auto back = io::open_checkpoint(out);
  CHECK(back.metadata() == io::Metadata{{"format", "pt"}, {"note", "written by fiber"}});
  for (const auto& r : records) {
    CAPTURE(r.name);
    CHECK(same_bytes(back.record(r.name), r));
    CHECK(back.record(r.name).is_aligned());  // laid out by decreasing element size
  }
  io::write_safetensors(out, records, {}, DType::bf16);  // overwrites atomically
  auto bf = io::open_checkpoint(out);
  CHECK(bf.info("itm_score.fc.weight").dtype == DType::bf16);
  CHECK(bf.info("i64_every_other").dtype == DType::i64);  // integers keep their dtype
  const auto want = source.record("transposed_slice").to_vector<BFloat16>();
  const auto got = bf.record("transposed_slice").to_vector<BFloat16>();
  CHECK(std::equal(want.begin(), want.end(), got.begin(), [](BFloat16 a, BFloat16 b) { return a.bits == b.bits; }));
}

TEST_CASE("named buffers and the streaming writer") {
  TempDir dir;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<std::uint8_t> b = {9};
  const io::NamedBuffer buffers[] = {{"b", DType::u8, {1}, std::as_bytes(std::span(b))},
                                     {"a", DType::f32, {2, 3}, std::as_bytes(std::span(a))}};
  io::write_safetensors(dir.path / "n.safetensors", buffers);
  auto ck = io::open_checkpoint(dir.path / "n.safetensors");
  CHECK(ck.names() == std::vector<std::string>{"a", "b"});  // 4-byte elements first
  CHECK(ck.record("a").to_vector<float>() == a);

  // Streaming in small chunks gives the same file as one write.
  io::SafetensorsWriter w(dir.path / "s.safetensors", {{"a", DType::f16, {2, 3}}, {"z", DType::u8, {0}}});
  io::TensorRecord r = ck.record("a");
  w.write(r, 4);  // 2 fp16 elements per chunk
  w.write(ck.record("a").storage.first(0));  // zero-size tensor: nothing to write
  w.commit();
  auto s = io::open_checkpoint(dir.path / "s.safetensors");
  CHECK(s.record("a").to_vector<float>() == a);
  CHECK(s.info("z").numel() == 0);
}

TEST_CASE("writer errors and atomicity") {
  TempDir dir;
  const fs::path target = dir.path / "w.safetensors";
  std::vector<float> a = {1, 2};
  const io::NamedBuffer one[] = {{"a", DType::f32, {2}, std::as_bytes(std::span(a))}};
  io::write_safetensors(target, one);
  const auto before = fs::file_size(target);
  {
    io::SafetensorsWriter w(target, {{"a", DType::f32, {2}}, {"b", DType::f32, {1000}}});
    w.write(std::as_bytes(std::span(a)));
    CHECK_THROWS_WITH_AS(w.commit(), doctest::Contains("only 8 of 4008 data bytes were written"), Error);
  }  // abandoned: the old file is intact and no temporary is left behind
  CHECK(fs::file_size(target) == before);
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  CHECK(io::open_checkpoint(target).record("a").to_vector<float>() == a);

  const io::NamedBuffer wrong[] = {{"a", DType::f32, {3}, std::as_bytes(std::span(a))}};
  CHECK_THROWS_WITH_AS(io::write_safetensors(target, wrong), doctest::Contains("buffer of 8 bytes, but dtype F32 and its shape need 12"),
                       Error);
  CHECK_THROWS_WITH_AS(io::SafetensorsWriter(target, {{"x", DType::f32, {1}}, {"x", DType::f32, {1}}}),
                       doctest::Contains("tensor name 'x' given twice"), Error);
  CHECK_THROWS_WITH_AS(io::SafetensorsWriter(target, {{"__metadata__", DType::f32, {1}}}),
                       doctest::Contains("'__metadata__' cannot be a tensor name"), Error);
  io::SafetensorsWriter w(target, {{"a", DType::f32, {2}}});
  CHECK_NOTHROW(w.write(std::as_bytes(std::span(a)).first(4)));
  CHECK_THROWS_WITH_AS(w.write(std::as_bytes(std::span(a))), doctest::Contains("bytes written past the end"), Error);
  CHECK_THROWS_WITH_AS(io::SafetensorsWriter(dir.path / "no/such/dir/x.safetensors", {}),
                       doctest::Contains("no/such/dir' does not exist"), Error);
}

TEST_CASE("writing is linear in the number of tensors (issue 14, item 8)") {
  // The header used to be built in an ordered_json, whose insertion is a linear search: 50k
  // tensors took 2.1 s and 200k 41.6 s (x20 for x4). Timed as a ratio, so a busy machine does
  // not fail it: linear gives about x4.
  const auto path = std::filesystem::temp_directory_path() / ("fiber_test_many_" + std::to_string(::getpid()) + ".safetensors");
  const float zero = 0;
  const auto seconds_for = [&](std::size_t n) {
    std::vector<io::NamedBuffer> buffers(n);
    for (std::size_t i = 0; i < n; ++i)
      buffers[i] = {"layer." + std::to_string(i) + ".weight", DType::f32, {}, std::as_bytes(std::span(&zero, 1))};
    const auto start = std::chrono::steady_clock::now();
    io::write_safetensors(path, std::span<const io::NamedBuffer>(buffers));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const double small = seconds_for(50'000), large = seconds_for(200'000);
  MESSAGE("50k tensors written in " << small << " s, 200k in " << large << " s");
  CHECK(large < 8 * small + 0.5);
  const auto ck = io::open_checkpoint(path);
  CHECK(ck.size() == 200'000);
  CHECK(ck.names()[199'999] == "layer.199999.weight");
  std::filesystem::remove(path);
}
