#pragma once
// MappedFile: a whole file mapped read-only (RAII). Tensors read from it are spans into the
// mapping, so nothing is copied until a caller asks for a copy, and only the pages a caller
// touches are read from disk. A file truncated by another process while mapped makes the
// kernel raise SIGBUS on access: do not rewrite checkpoints in place (our writer never does).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "fiber/core/error.hpp"
#include "fiber/core/read_file.hpp"
#include "fiber/io/byte_source.hpp"

namespace fiber::io {

class MappedFile {
 public:
  // Maps `path` read-only; fiber::Error naming the path and the OS error on failure.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path) {
    return std::shared_ptr<const MappedFile>(new MappedFile(path));
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  bool contains(std::span<const std::byte> range) const {
    return data_ && range.data() >= data_ && range.size() <= size_ && range.data() - data_ <= std::ptrdiff_t(size_ - range.size());
  }

  // Copies `range` (inside the mapping) to `out` with pread(): the kernel copies from the page
  // cache without mapping the pages into this process, which is cheaper than faulting them in
  // for data read once. Returns false (nothing to rely on in `out`) when it cannot.
  bool read(std::span<const std::byte> range, std::byte* out) const {
    if (!contains(range) || fd_ < 0) return false;
    auto offset = ::off_t(range.data() - data_);
    std::size_t left = range.size();
    while (left > 0) {
      const ::ssize_t n = ::pread(fd_, out, left, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      out += n;
      offset += n;
      left -= std::size_t(n);
    }
    return true;
  }

  // Releases the pages around `range`, rounded outwards to 2 MiB: where the page cache holds
  // large folios, touching a few bytes maps the whole folio, and this unmaps it again. Always
  // safe for a read-only file mapping: released pages are read again if touched.
  void release_around(std::span<const std::byte> range) const {
    if (!data_ || range.empty()) return;
    constexpr std::uintptr_t window = std::uintptr_t(2) << 20;
    const auto base = reinterpret_cast<std::uintptr_t>(data_), limit = base + size_;
    const auto at = reinterpret_cast<std::uintptr_t>(range.data());
    const std::uintptr_t begin = std::max(base, at / window * window);
    const std::uintptr_t end = std::min(limit, (at + range.size() + window - 1) / window * window);
    if (end > begin) release({reinterpret_cast<const std::byte*>(begin), end - begin});
  }

  // The whole mapping, e.g. after reading a file's index: header pages (and, where the page
  // cache uses large folios, megabytes around each) leave the resident set again.
  void release_all() const { release(bytes()); }

  // Tells the kernel we are done with the pages holding `range` (whole pages): they leave this
  // process's resident set and are read again from the page cache if touched. Only ranges
  // inside this mapping are released; anything else is ignored. Never use this on memory that
  // is not a read-only file mapping (on anonymous memory MADV_DONTNEED discards data).
  void release(std::span<const std::byte> range) const {
    if (range.empty() || !contains(range)) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    auto begin = reinterpret_cast<std::uintptr_t>(range.data());
    auto end = begin + range.size();
    begin = begin / page * page;  // outwards: the pages' contents come back from the file if needed
    end = std::min((end + page - 1) / page * page, reinterpret_cast<std::uintptr_t>(data_) + (size_ + page - 1) / page * page);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }

 private:
  explicit MappedFile(const std::filesystem::path& path) : path_(path) {
    // Non-blocking open and a type check first: a FIFO given as a checkpoint must not hang us.
    fiber::detail::RegularFile file = fiber::detail::open_regular_file(path, path.string());
    const int fd = file.fd;
    size_ = file.size;
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        fail(path.string(), ": cannot map ", size_, " bytes: ", std::strerror(errno));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    fd_ = file.release();  // kept for read()
  }

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;
};

// The whole file as a ByteSource named by its path.
inline ByteSource map_file(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  return ByteSource{file->bytes(), file, path.string(), file};
}

}  // namespace fiber::io
