#pragma once
// Training progress on stderr. On a terminal (isatty), one live line redrawn in place with '\r':
//   [#########...........]  1200/10000  loss 2.3114  41.2 img/s  ETA 1h02m
// Elsewhere (a log file, CI) plain lines, one per logged step:
//   step 1200/10000 loss 2.3114 41.2 img/s ETA 1h02m
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace fiber::train {

// "45s", "12m05s", "3h07m" (or "?" for an unknown or absurd duration).
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e8) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  return buf;
}

class ProgressBar {
 public:
  explicit ProgressBar(std::int64_t total, std::FILE* out = stderr)
      : total_(total), out_(out), live_(out != nullptr && ::isatty(::fileno(out))) {}

  bool live() const { return live_; }
  void set_live(bool on) { live_ = on; }

  // The text for `step` of the run (no '\r', no newline).
  std::string render(std::int64_t step, double loss, double images_per_s, double eta_seconds) const {
    char tail[160];
    std::snprintf(tail, sizeof tail, "%lld/%lld  loss %.4f  %.1f img/s  ETA %s", static_cast<long long>(step),
                  static_cast<long long>(total_), loss, images_per_s, format_duration(eta_seconds).c_str());
    if (!live_) return std::string("step ") + tail;
    constexpr int width = 24;
    const int filled = total_ > 0 ? int(double(width) * double(step) / double(total_)) : width;
    std::string bar = "[";
    for (int i = 0; i < width; ++i) bar += i < filled ? '#' : '.';
    return bar + "]  " + tail;
  }

  // Live: redraws the line. Plain: prints a line only when `log_step` is true.
  void update(std::int64_t step, double loss, double images_per_s, double eta_seconds, bool log_step) {
    if (!out_) return;
    if (live_) {
      std::fprintf(out_, "\r%s\033[K", render(step, loss, images_per_s, eta_seconds).c_str());
      drawn_ = true;
    } else if (log_step) {
      std::fprintf(out_, "%s\n", render(step, loss, images_per_s, eta_seconds).c_str());
    }
    std::fflush(out_);
  }

  // A message on a line of its own (the live line is ended first and redrawn by the next update).
  void message(const std::string& text) {
    if (!out_) return;
    if (drawn_) std::fputc('\n', out_);
    drawn_ = false;
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
  }

  // Ends the live line.
  void finish() {
    if (out_ && drawn_) std::fputc('\n', out_);
    drawn_ = false;
  }

 private:
  std::int64_t total_;
  std::FILE* out_;
  bool live_;
  bool drawn_ = false;
};

}  // namespace fiber::train
