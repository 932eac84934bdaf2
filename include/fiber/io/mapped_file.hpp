#pragma once
// MappedFile: a whole file mapped read-only (RAII). Tensors read from it are spans into the
// mapping, so nothing is copied until a caller asks for a copy, and only the pages a caller
// touches are read from disk. A file truncated by another process while mapped makes the
// kernel raise SIGBUS on access: do not rewrite checkpoints in place (our writer never does).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "fiber/core/error.hpp"
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
  }

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Tells the kernel we are done with the pages inside `range` (rounded inwards to whole
  // pages): they leave this process's resident set and are read again from the page cache if
  // touched. Only ranges inside this mapping are released; anything else is ignored.
  void release(std::span<const std::byte> range) const {
    if (!data_ || range.empty() || range.data() < data_ || range.data() + range.size() > data_ + size_) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    auto begin = reinterpret_cast<std::uintptr_t>(range.data());
    auto end = begin + range.size();
    begin = (begin + page - 1) / page * page;
    end = end / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }

 private:
  explicit MappedFile(const std::filesystem::path& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path.string(), ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      fail(path.string(), ": cannot stat: ", std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(path.string(), ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        fail(path.string(), ": cannot map ", size_, " bytes: ", std::strerror(e));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
  }

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// The whole file as a ByteSource named by its path.
inline ByteSource map_file(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  return ByteSource{file->bytes(), file, path.string(), file};
}

}  // namespace fiber::io
