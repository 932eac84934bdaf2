#pragma once
// AtomicFile: writes a file so that readers see either the old file or the complete new one.
// Data goes to a temporary file in the same directory (same filesystem, so rename is atomic);
// commit() flushes it to disk (fsync), renames it over the target and syncs the directory.
// Destroyed without commit() (an exception, a crash in the middle), it removes the temporary.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "fiber/core/error.hpp"

namespace fiber::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
    std::string pattern = (dir / ("." + target_.filename().string() + ".tmp.XXXXXX")).string();
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) fail(target_.string(), ": cannot create a temporary file in ", dir.string(), ": ", std::strerror(errno));
    temp_ = name.data();
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
  }

  const std::filesystem::path& target() const { return target_; }

  void write(std::span<const std::byte> bytes) {
    FIBER_CHECK(fd_ >= 0, target_.string(), ": write after commit");
    const auto* p = reinterpret_cast<const char*>(bytes.data());
    std::size_t left = bytes.size();
    while (left > 0) {
      const ::ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(target_.string(), ": write failed: ", n < 0 ? std::strerror(errno) : "no progress");
      p += n;
      left -= std::size_t(n);
    }
  }

  // Makes the new file durable and puts it in place.
  void commit() {
    FIBER_CHECK(fd_ >= 0, target_.string(), ": committed twice");
    ::fchmod(fd_, 0644);  // mkstemp creates 0600; a weight file is for everyone to read
    if (::fsync(fd_) != 0) fail(target_.string(), ": fsync failed: ", std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(target_.string(), ": close failed: ", std::strerror(errno));
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      fail(target_.string(), ": cannot rename the temporary file into place: ", std::strerror(errno));
    committed_ = true;
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {  // persist the rename itself
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }

 private:
  std::filesystem::path target_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace fiber::io
