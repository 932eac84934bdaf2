#pragma once
// Reads NumPy .npy files (version 1/2, little-endian, C order) into tensors: the format the
// reference scripts in tests/reference/ write their fixtures in (numpy.save). Test code only.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fiber/core/tensor.hpp"

namespace fiber::test {

namespace detail {
inline std::string npy_descr_of(const std::string& header) {
  const auto at = header.find("'descr'");
  FIBER_CHECK(at != std::string::npos, "npy: no descr in header");
  const auto q1 = header.find('\'', header.find(':', at) + 1);
  const auto q2 = header.find('\'', q1 + 1);
  return header.substr(q1 + 1, q2 - q1 - 1);
}
inline Shape npy_shape_of(const std::string& header) {
  const auto at = header.find("'shape'");
  FIBER_CHECK(at != std::string::npos, "npy: no shape in header");
  const auto open = header.find('(', at), close = header.find(')', open);
  Shape s;
  std::string dims = header.substr(open + 1, close - open - 1);
  std::size_t pos = 0;
  while (pos < dims.size()) {
    while (pos < dims.size() && (dims[pos] == ' ' || dims[pos] == ',')) ++pos;
    if (pos >= dims.size()) break;
    std::size_t used = 0;
    s.push_back(std::stoll(dims.substr(pos), &used));
    pos += used;
  }
  return s;
}
template <class T>
const char* npy_descr() {
  if constexpr (std::is_same_v<T, float>) return "<f4";
  else if constexpr (std::is_same_v<T, double>) return "<f8";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "<i8";
  else if constexpr (std::is_same_v<T, std::int32_t>) return "<i4";
  else if constexpr (std::is_same_v<T, std::uint8_t>) return "|u1";
  else if constexpr (std::is_same_v<T, bool>) return "|b1";
  else static_assert(sizeof(T) == 0, "npy: unsupported type");
}
}  // namespace detail

// Loads `path` (absolute, or relative to tests/data) as a Tensor<T>; the file's dtype must be T's.
template <class T>
Tensor<T> load_npy(const std::string& path) {
#ifdef FIBER_TEST_DATA_DIR
  const std::string full = (!path.empty() && path[0] == '/') ? path : std::string(FIBER_TEST_DATA_DIR) + "/" + path;
#else
  const std::string& full = path;
#endif
  std::ifstream in(full, std::ios::binary);
  FIBER_CHECK(in, "npy: cannot open ", full);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  FIBER_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0, "npy: ", full, " is not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, header_at = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    header_at = 10;
  } else {
    FIBER_CHECK(bytes.size() >= 12, "npy: truncated header in ", full);
    for (int i = 0; i < 4; ++i) header_len |= std::size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_at = 12;
  }
  FIBER_CHECK(header_at + header_len <= bytes.size(), "npy: truncated header in ", full);
  const std::string header(bytes.data() + header_at, header_len);
  FIBER_CHECK(header.find("'fortran_order': False") != std::string::npos, "npy: ", full, " is Fortran-ordered");
  const std::string descr = detail::npy_descr_of(header);
  FIBER_CHECK(descr == detail::npy_descr<T>(), "npy: ", full, " holds ", descr, ", expected ", detail::npy_descr<T>());
  const Shape shape = detail::npy_shape_of(header);
  const std::size_t data_at = header_at + header_len;
  const std::size_t need = static_cast<std::size_t>(shape.numel()) * sizeof(T);
  FIBER_CHECK(bytes.size() - data_at == need, "npy: ", full, " has ", bytes.size() - data_at, " data bytes, expected ", need);
  Tensor<T> t = Tensor<T>::empty(shape);
  if (need) std::memcpy(t.data(), bytes.data() + data_at, need);
  return t;
}

}  // namespace fiber::test
