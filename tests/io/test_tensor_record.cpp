// TensorRecord: view checks, strided copies and dtype conversion into contiguous buffers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "fiber/io/tensor_record.hpp"

using namespace fiber;
using fiber::io::TensorRecord;

namespace {

// A record over `values` (kept alive by the caller) with the given view.
template <class T>
TensorRecord record_over(const std::vector<T>& values, std::vector<std::int64_t> shape, std::vector<std::int64_t> strides,
                         std::int64_t offset = 0) {
  TensorRecord r;
  r.name = std::string(1, 't');  // (not = "t": GCC 12 -Wrestrict false positive)
  r.source = "test";
  r.dtype = dtype_of_v<T>;
  r.shape = std::move(shape);
  r.strides = std::move(strides);
  r.storage_offset = offset;
  r.storage = std::as_bytes(std::span(values));
  return r;
}

}  // namespace

TEST_CASE("contiguous strides and contiguity") {
  CHECK(io::contiguous_strides(std::vector<std::int64_t>{2, 3, 4}) == std::vector<std::int64_t>{12, 4, 1});
  CHECK(io::contiguous_strides(std::vector<std::int64_t>{}).empty());
  std::vector<float> v(24);
  CHECK(record_over(v, {2, 3, 4}, {12, 4, 1}).is_contiguous());
  CHECK(record_over(v, {2, 1, 4}, {4, 99, 1}).is_contiguous());  // size-1 dimension: any stride
  CHECK_FALSE(record_over(v, {4, 3}, {1, 4}).is_contiguous());
}

TEST_CASE("a transposed slice copies in row-major order") {
  // base: [5, 4] = 0..19; view = base.t()[1:] -> [3, 5], strides (1, 4), offset 1
  std::vector<float> base(20);
  std::iota(base.begin(), base.end(), 0.0f);
  auto r = record_over(base, {3, 5}, {1, 4}, 1);
  CHECK(r.to_vector<float>() == std::vector<float>{1, 5, 9, 13, 17, 2, 6, 10, 14, 18, 3, 7, 11, 15, 19});
  // Any chunk [first, first + n) equals the same slice of the full copy.
  const auto full = r.to_vector<double>();
  for (std::int64_t first = 0; first < 15; ++first)
    for (std::int64_t n = 0; first + n <= 15; ++n) {
      std::vector<double> part(std::size_t(n), -1.0);
      r.copy_to(std::span<double>(part), first);
      REQUIRE(std::equal(part.begin(), part.end(), full.begin() + first));
    }
}

TEST_CASE("stride 0, scalars and empty tensors") {
  std::vector<std::int32_t> row = {7, 8, 9};
  CHECK(record_over(row, {2, 3}, {0, 1}).to_vector<std::int64_t>() == std::vector<std::int64_t>{7, 8, 9, 7, 8, 9});
  CHECK(record_over(row, {}, {}, 2).to_vector<float>() == std::vector<float>{9});
  CHECK(record_over(row, {0, 5}, {5, 1}).to_vector<float>().empty());
  CHECK(record_over(row, {0}, {1}, 3).numel() == 0);  // offset at the end of the storage is fine when empty
}

TEST_CASE("dtype conversions") {
  std::vector<float> f = {1.0f, -2.5f, 65520.0f, 1e-8f, NAN};
  auto r = record_over(f, {5}, {1});
  const auto h = r.to_vector<Half>();
  CHECK(h[0].bits == 0x3c00);
  CHECK(h[1].bits == 0xc100);
  CHECK(h[2].bits == 0x7c00);  // overflow -> infinity
  CHECK(h[3].bits == 0x0000);  // below half the smallest subnormal -> 0
  CHECK(std::isnan(float(h[4])));
  const auto b = r.to_vector<BFloat16>();
  CHECK(b[1].bits == 0xc020);
  CHECK(r.to_vector<double>()[1] == -2.5);

  std::vector<std::int64_t> big = {1, -1, 300};
  auto ints = record_over(big, {3}, {1});
  CHECK(ints.to_vector<float>() == std::vector<float>{1, -1, 300});
  CHECK(ints.to_vector<std::int16_t>() == std::vector<std::int16_t>{1, -1, 300});
  CHECK_THROWS_WITH_AS(ints.to_vector<std::int8_t>(), doctest::Contains("test: tensor 't': value 300 does not fit in I8"), Error);
  CHECK_THROWS_WITH_AS(ints.to_vector<std::uint8_t>(), doctest::Contains("value -1 does not fit in U8"), Error);
  CHECK_THROWS_WITH_AS(r.to_vector<std::int64_t>(), doctest::Contains("cannot convert F32 to I64"), Error);

  std::vector<std::uint8_t> raw_bools = {0, 1, 2, 255};  // a file may hold bytes other than 0/1
  auto bools = record_over(raw_bools, {4}, {1});
  bools.dtype = DType::boolean;
  CHECK(bools.to_vector<std::uint8_t>() == std::vector<std::uint8_t>{0, 1, 1, 1});
  CHECK(bools.to_vector<float>() == std::vector<float>{0, 1, 1, 1});
  std::vector<std::uint8_t> out(4);
  bools.copy_to(DType::boolean, std::as_writable_bytes(std::span(out)));
  CHECK(out == std::vector<std::uint8_t>{0, 1, 1, 1});
  CHECK_THROWS_WITH_AS(ints.copy_to(DType::boolean, std::as_writable_bytes(std::span(out)).first(3)),
                       doctest::Contains("cannot convert I64 to BOOL"), Error);
}

TEST_CASE("views are checked against their storage") {
  std::vector<float> v(6);
  CHECK_NOTHROW(record_over(v, {2, 3}, {3, 1}).validate());
  CHECK_THROWS_WITH_AS(record_over(v, {2, 3}, {3, 1}, 1).validate(),
                       doctest::Contains("test: tensor 't': view (offset 1, last element 6) runs past the end of its storage (6 F32 elements, 24 bytes)"),
                       Error);
  CHECK_THROWS_WITH_AS(record_over(v, {2, -3}, {3, 1}).validate(), doctest::Contains("dimension -3 is negative"), Error);
  CHECK_THROWS_WITH_AS(record_over(v, {2, 3}, {3, -1}).validate(), doctest::Contains("stride -1 of dimension 1 is negative"), Error);
  CHECK_THROWS_WITH_AS(record_over(v, {2, 3}, {3}).validate(), doctest::Contains("1 strides for 2 dimensions"), Error);
  CHECK_THROWS_WITH_AS(record_over(v, {1 << 30, 1 << 30, 1 << 30}, {0, 0, 0}).validate(),
                       doctest::Contains("element count overflows 64 bits"), Error);
  CHECK_THROWS_WITH_AS(record_over(v, {3, 3}, {INT64_MAX, INT64_MAX}).validate(), doctest::Contains("strides: size overflows 64 bits"),
                       Error);
  std::vector<float> out(5);
  CHECK_THROWS_WITH_AS(record_over(v, {2, 3}, {3, 1}).copy_to(std::span<float>(out), 2),
                       doctest::Contains("elements [2, 2 + 5) are outside its 6 elements"), Error);
}

TEST_CASE("zero-copy access when dtype, layout and alignment allow") {
  std::vector<float> v = {1, 2, 3, 4};
  auto r = record_over(v, {2, 2}, {2, 1});
  CHECK(r.data_if_in_place<float>() == v.data());
  CHECK(r.data_if_in_place<double>() == nullptr);
  CHECK(record_over(v, {2, 2}, {1, 2}).data_if_in_place<float>() == nullptr);
  CHECK(r.contiguous_bytes().size() == 16);
  // Misaligned: a float storage starting one byte into a buffer.
  std::vector<std::byte> bytes(17);
  r.storage = std::span<const std::byte>(bytes).subspan(1, 16);
  CHECK_FALSE(r.is_aligned());
  CHECK(r.data_if_in_place<float>() == nullptr);
  CHECK(r.to_vector<float>().size() == 4);  // copies work at any alignment
}

TEST_CASE("large strided copies split over the thread pool give the same result") {
  const std::int64_t rows = 3000, cols = 2000;  // 6M elements: above the parallel threshold
  std::vector<float> base(std::size_t(rows * cols));
  for (std::size_t i = 0; i < base.size(); ++i) base[i] = float(i % 9973);
  auto t = record_over(base, {cols, rows}, {1, cols});  // transposed
  const auto out = t.to_vector<float>();
  bool same = true;
  for (std::int64_t i = 0; i < cols && same; i += 7)
    for (std::int64_t j = 0; j < rows; j += 13) same &= out[std::size_t(i * rows + j)] == base[std::size_t(j * cols + i)];
  CHECK(same);
}
