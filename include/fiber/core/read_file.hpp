#pragma once
// A whole file read into memory (images, vocab.json, merges.txt: files parsed at once). Errors
// say what the file was for and its path: "image '/data/x.png': no such file". Checkpoints are
// mapped instead (io/mapped_file.hpp): they are large and read in parts.
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "fiber/core/error.hpp"

namespace fiber::detail {

// Bytes: std::string or std::vector of a byte type.
template <class Bytes>
Bytes read_whole_file(const std::filesystem::path& path, std::string_view what) {
  const std::string where = std::string(what) + " '" + path.string() + "'";
  std::error_code ec;
  FIBER_CHECK(std::filesystem::exists(path, ec), where, ": no such file");
  FIBER_CHECK(!std::filesystem::is_directory(path, ec), where, ": is a directory");
  std::ifstream in(path, std::ios::binary);
  FIBER_CHECK(in.good(), where, ": cannot open for reading");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  FIBER_CHECK(size >= 0, where, ": cannot determine the file size");
  in.seekg(0, std::ios::beg);
  Bytes bytes(static_cast<std::size_t>(size), typename Bytes::value_type{});
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
  FIBER_CHECK(in.gcount() == size, where, ": read error after ", in.gcount(), " of ", size, " bytes");
  return bytes;
}

}  // namespace fiber::detail
