#pragma once
// RUN/metrics.jsonl: one JSON object per logged step, one line each, appended as training runs:
//   {"step": 100, "loss": 2.31, "itc": 0.9, "itm": 0.6, "mlm": 0.8, "lr": 9.5e-5,
//    "images_per_s": 41.2, "grad_norm": 3.1, "peak_rss_mb": 812.4}
// plus "eval.<name>" on evaluation steps.
//
// Appending is the one write of the trainer that is not an io::AtomicFile: rewriting the whole
// log for each line would cost O(lines^2). Each line goes out in one write() on an O_APPEND
// descriptor, so a crash can at worst leave the last line incomplete; readers skip an
// unparsable last line. On resume the log is rewritten atomically (AtomicFile) keeping only the
// lines with step <= the resumed step, and a torn last line is dropped: lines after the resumed
// step are not duplicated.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/atomic_file.hpp"

namespace fiber::train {

// The lines of a metrics log that parse as JSON objects (an incomplete or damaged line is
// skipped). No file: no lines.
inline std::vector<nlohmann::json> read_metrics(const std::filesystem::path& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

// Rewrites `path` atomically with only the lines whose "step" is <= `step` (resume).
inline void truncate_metrics(const std::filesystem::path& path, std::int64_t step) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  std::string text;
  for (const nlohmann::json& j : read_metrics(path)) {
    const auto it = j.find("step");
    if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() > step) continue;
    text += j.dump();
    text += '\n';
  }
  io::AtomicFile file(path);
  file.write(std::as_bytes(std::span(text.data(), text.size())));
  file.commit();
}

class MetricsLog {
 public:
  explicit MetricsLog(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    FIBER_CHECK(fd_ >= 0, path_.string(), ": cannot open the metrics log: ", std::strerror(errno));
  }
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::filesystem::path& path() const { return path_; }

  // Appends `line` (an object) as one line, in one write().
  void append(const nlohmann::json& line) {
    FIBER_CHECK(line.is_object(), path_.string(), ": a metrics line must be a JSON object");
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
      const ::ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      FIBER_CHECK(n > 0, path_.string(), ": cannot append to the metrics log: ", n < 0 ? std::strerror(errno) : "no progress");
      p += n;
      left -= std::size_t(n);
    }
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace fiber::train
