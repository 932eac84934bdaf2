#pragma once
// Opening input files safely, and whole files read into memory (images, vocab.json, merges.txt:
// files parsed at once). Checkpoints are mapped instead (io/mapped_file.hpp) but open the same way.
//
// Only regular files are read. The file is opened with O_NONBLOCK and its type checked on the
// open descriptor before any read: a plain open() of a FIFO blocks until some writer appears (a
// hang), and a device such as /dev/urandom has no size and no end. Errors say what the file was
// for and its path: "image '/data/x.png': no such file".
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "fiber/core/error.hpp"

namespace fiber::detail {

// What a non-regular file is, for messages ("a FIFO (named pipe)").
inline std::string_view file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// An open regular file (RAII on the descriptor unless released).
struct RegularFile {
  int fd = -1;
  std::size_t size = 0;
  RegularFile() = default;
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  RegularFile(RegularFile&& o) noexcept : fd(o.fd), size(o.size) { o.fd = -1; }
  ~RegularFile() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

// Opens `path` read-only, refusing anything but a regular file without blocking on it. `where`
// opens every message ("model.pt" or "image 'x.png'").
inline RegularFile open_regular_file(const std::filesystem::path& path, std::string_view where) {
  RegularFile f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (f.fd < 0) {
    const int e = errno;
    if (e == ENOENT) fail(where, ": no such file");
    if (e == ENXIO) fail(where, ": cannot open: not a regular file (a socket or a device without a driver)");
    fail(where, ": cannot open: ", std::strerror(e));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail(where, ": cannot stat: ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(where, ": is a directory");
  if (!S_ISREG(st.st_mode)) fail(where, ": is ", file_type_name(st.st_mode), ", not a regular file");
  const int flags = ::fcntl(f.fd, F_GETFL);  // reads of a regular file never block anyway
  if (flags >= 0) ::fcntl(f.fd, F_SETFL, flags & ~O_NONBLOCK);
  f.size = static_cast<std::size_t>(st.st_size);
  return f;
}

// Bytes: std::string or std::vector of a byte type.
template <class Bytes>
Bytes read_whole_file(const std::filesystem::path& path, std::string_view what) {
  const std::string where = std::string(what) + " '" + path.string() + "'";
  RegularFile f = open_regular_file(path, where);
  Bytes bytes(f.size, typename Bytes::value_type{});
  std::size_t done = 0;
  while (done < f.size) {
    const ::ssize_t n = ::read(f.fd, reinterpret_cast<char*>(bytes.data()) + done, f.size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(where, ": read error after ", done, " of ", f.size, " bytes: ", std::strerror(errno));
    if (n == 0) fail(where, ": the file shrank while being read (", done, " of ", f.size, " bytes)");
    done += std::size_t(n);
  }
  return bytes;
}

}  // namespace fiber::detail
