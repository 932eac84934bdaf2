#pragma once
// AtomicFile: writes a file so that readers see either the old file or the complete new one, and
// so that an interrupted write leaves nothing behind.
//
// On Linux the data goes to an unnamed file (open(dir, O_TMPFILE)) in the target's directory:
// it has no name until commit(), so a process killed in the middle (SIGKILL, a crash, a power
// cut) leaves no partial file at all; the kernel frees it. commit() flushes it (fsync), gives it
// its name with linkat() (or, when the target exists, links it under a temporary name and
// renames that over the target, atomically) and syncs the directory.
//
// Where the filesystem has no O_TMPFILE (or /proc is not mounted, which linkat needs), the data
// goes to a named temporary ".NAME.tmp.XXXXXX" beside the target, renamed into place at the end.
// That name is removed when the AtomicFile is destroyed uncommitted (an exception) and, for
// SIGINT, SIGTERM and SIGHUP, by a signal handler installed on first use for each of those
// signals whose disposition is the default (a host program's own handlers are left
// alone: it then cleans up itself). SIGKILL cannot be caught: only the unnamed file survives it.
//
// check_output_path() makes the checks of an output path that can be made before any work.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/core/read_file.hpp"

namespace fiber::io {

// Refuses an output path that cannot be written before anything is read or computed: empty,
// naming a directory or a non-regular file (FIFO, device), or in a directory that does not exist
// or is not writable. `what` names the path in messages ("output").
inline void check_output_path(const std::filesystem::path& target, std::string_view what = "output") {
  FIBER_CHECK(!target.empty(), what, ": the path is empty");
  const std::string shown = excerpt(target.string(), 200);
  const std::string name = target.filename().string();
  FIBER_CHECK(!name.empty() && name != "." && name != "..", what, " '", shown, "': names a directory, not a file");
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    FIBER_CHECK(!S_ISDIR(st.st_mode), what, " '", shown, "': is a directory");
    FIBER_CHECK(S_ISREG(st.st_mode), what, " '", shown, "': is ", fiber::detail::file_type_name(st.st_mode),
                "; fiber writes regular files only");
  }
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  FIBER_CHECK(::stat(dir.c_str(), &st) == 0, what, " '", shown, "': directory '", excerpt(dir.string(), 200),
              "' does not exist");
  FIBER_CHECK(S_ISDIR(st.st_mode), what, " '", shown, "': '", excerpt(dir.string(), 200), "' is not a directory");
  FIBER_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, what, " '", shown, "': cannot write into directory '",
              excerpt(dir.string(), 200), "': ", std::strerror(errno));
}

namespace atomic_detail {

// Named temporaries to remove when SIGINT, SIGTERM or SIGHUP arrives. Slots are claimed and
// released by writers; the handler only reads them (async-signal-safe: atomics and unlink()).
struct TempRegistry {
  static constexpr std::size_t slots = 64;
  std::atomic<bool> used[slots] = {};
  char paths[slots][PATH_MAX] = {};
  struct sigaction previous[3] = {};
  bool installed[3] = {};
  std::mutex claim;
};
inline TempRegistry& registry() {
  static TempRegistry r;
  return r;
}
inline constexpr int cleaned_signals[3] = {SIGINT, SIGTERM, SIGHUP};

extern "C" inline void remove_temporaries_and_reraise(int sig) {
  TempRegistry& r = registry();
  for (std::size_t i = 0; i < TempRegistry::slots; ++i)
    if (r.used[i].load(std::memory_order_acquire)) ::unlink(r.paths[i]);
  for (int k = 0; k < 3; ++k)  // we only replaced default dispositions: restore and die by the signal
    if (cleaned_signals[k] == sig) ::sigaction(sig, &r.previous[k], nullptr);
  ::raise(sig);
}

// Installs our handler for each signal whose disposition is (still, or again) the default.
// Called with `claim` held, before each registration: cheap, and it follows a host that resets
// a disposition later.
inline void install_handlers() {
  TempRegistry& r = registry();
  for (int k = 0; k < 3; ++k) {
    struct sigaction current {};
    if (::sigaction(cleaned_signals[k], nullptr, &current) != 0) continue;
    if (current.sa_handler == remove_temporaries_and_reraise) continue;
    if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO)) continue;  // the host handles it
    struct sigaction ours {};
    ours.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&ours.sa_mask);
    if (::sigaction(cleaned_signals[k], &ours, &r.previous[k]) == 0) r.installed[k] = true;
  }
}

// Registers `path` for removal on a signal; returns the slot, or -1 when all are taken.
inline int register_temporary(const std::string& path) {
  TempRegistry& r = registry();
  std::lock_guard lock(r.claim);
  install_handlers();
  if (path.size() >= PATH_MAX) return -1;
  for (std::size_t i = 0; i < TempRegistry::slots; ++i)
    if (!r.used[i].load(std::memory_order_relaxed)) {
      std::memcpy(r.paths[i], path.c_str(), path.size() + 1);
      r.used[i].store(true, std::memory_order_release);
      return int(i);
    }
  return -1;
}
inline void unregister_temporary(int& slot) {
  if (slot < 0) return;
  registry().used[slot].store(false, std::memory_order_release);
  slot = -1;
}

// ".NAME.tmp.<suffix>" beside `target`.
inline std::string hidden_name(const std::filesystem::path& target, const std::string& suffix) {
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::string name(1, '.');  // (appended, not "." + string: GCC 12 warns falsely about that)
  name += target.filename().string();
  name += ".tmp.";
  name += suffix;
  return (dir / name).string();
}

// ".NAME.tmp.XXXXXX" beside `target`, with a suffix unlikely to be in use.
inline std::string temporary_name(const std::filesystem::path& target, unsigned attempt) {
  static std::atomic<unsigned> counter{0};
  const auto now = std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  std::uint64_t x = now ^ (std::uint64_t(::getpid()) << 32) ^ (std::uint64_t(counter++) << 16) ^ attempt;
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string suffix;
  for (int i = 0; i < 6; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    suffix += alphabet[(x >> 33) % 62];
  }
  return hidden_name(target, suffix);
}

}  // namespace atomic_detail

class AtomicFile {
 public:
  // automatic: an unnamed O_TMPFILE file where the filesystem has it, else a named temporary.
  // named: always the named temporary (tests of the fallback).
  enum class Mode { automatic, named };

  explicit AtomicFile(std::filesystem::path target, Mode mode = Mode::automatic) : target_(std::move(target)) {
    check_output_path(target_);
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
#ifdef O_TMPFILE
    if (mode == Mode::automatic && ::access("/proc/self/fd", X_OK) == 0) {
      fd_ = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
      if (fd_ < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
        fail(where(), ": cannot create a temporary file in ", dir.string(), ": ", std::strerror(errno));
      if (fd_ >= 0) return;
    }
#endif
    (void)mode;
    const std::string pattern = atomic_detail::hidden_name(target_, "XXXXXX");
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) fail(where(), ": cannot create a temporary file in ", dir.string(), ": ", std::strerror(errno));
    temp_ = name.data();
    slot_ = atomic_detail::register_temporary(temp_);
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
    atomic_detail::unregister_temporary(slot_);
  }

  const std::filesystem::path& target() const { return target_; }
  // The named temporary, or empty while the data is in an unnamed file.
  const std::string& temporary() const { return temp_; }

  void write(std::span<const std::byte> bytes) {
    FIBER_CHECK(fd_ >= 0, where(), ": write after commit");
    const auto* p = reinterpret_cast<const char*>(bytes.data());
    std::size_t left = bytes.size();
    while (left > 0) {
      const ::ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(where(), ": write failed: ", n < 0 ? std::strerror(errno) : "no progress");
      p += n;
      left -= std::size_t(n);
    }
  }

  // Makes the new file durable and puts it in place.
  void commit() {
    FIBER_CHECK(fd_ >= 0, where(), ": committed twice");
    ::fchmod(fd_, 0644);  // temporaries are created 0600; a weight file is for everyone to read
    if (::fsync(fd_) != 0) fail(where(), ": fsync failed: ", std::strerror(errno));
    const bool in_place = temp_.empty() && link_unnamed();
    const int fd = fd_;
    fd_ = -1;
    if (in_place) {
      committed_ = true;  // the data is complete and synced; the name exists now
      ::close(fd);
    } else {
      if (::close(fd) != 0) fail(where(), ": close failed: ", std::strerror(errno));
      if (::rename(temp_.c_str(), target_.c_str()) != 0)
        fail(where(), ": cannot rename the temporary file into place: ", std::strerror(errno));
      committed_ = true;
      atomic_detail::unregister_temporary(slot_);
    }
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {  // persist the rename itself
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }

 private:
  std::string where() const { return excerpt(target_.string(), 200); }

  // Gives the unnamed file a name: the target itself when it does not exist yet (returns true),
  // otherwise a fresh temporary name (temp_) for commit() to rename over the target.
  bool link_unnamed() {
    const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, target_.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
    if (errno != EEXIST) fail(where(), ": cannot link the new file into place: ", std::strerror(errno));
    for (unsigned attempt = 0; attempt < 100; ++attempt) {
      std::string name = atomic_detail::temporary_name(target_, attempt);
      slot_ = atomic_detail::register_temporary(name);
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        temp_ = std::move(name);
        return false;
      }
      const int e = errno;
      atomic_detail::unregister_temporary(slot_);
      if (e != EEXIST) fail(where(), ": cannot link the new file beside its target: ", std::strerror(e));
    }
    fail(where(), ": cannot find a free temporary name beside the target");
  }

  std::filesystem::path target_;
  std::string temp_;  // named temporary (fallback, or the unnamed file's link before the rename)
  int fd_ = -1;
  int slot_ = -1;     // signal-cleanup registration of temp_
  bool committed_ = false;
};

}  // namespace fiber::io
