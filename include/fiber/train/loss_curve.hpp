#pragma once
// RUN/loss.png: the loss curves of a metrics log, rasterised with io::Image and written with
// io::write_png (atomically). White background, grey grid (5 x 5 cells), black axes; x = step
// from the first to the last logged step, y = loss from the smallest to the largest logged value
// (padded 5 %). The total "loss" is drawn in black, each named loss in the next colour of a
// fixed palette, in name order (itc blue, itm orange, mlm green, ... when those are the names).
// There is no text in the image (no font dependency): write_loss_curve returns the series in
// drawing order with their colours and ranges, and the trainer prints that legend.
// Series are the numeric keys of the log except step, lr, images_per_s, grad_norm, peak_rss_mb,
// seconds and eval.* (see is_loss_key).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/image.hpp"
#include "fiber/io/png.hpp"
#include "fiber/train/metrics_log.hpp"

namespace fiber::train {

inline bool is_loss_key(std::string_view key) {
  for (std::string_view other : {"step", "lr", "images_per_s", "grad_norm", "peak_rss_mb", "seconds"})
    if (key == other) return false;
  return !key.starts_with("eval.");
}

struct CurveSeries {
  std::string name;
  std::array<std::uint8_t, 3> rgb;
  std::size_t points = 0;
};

struct LossCurve {
  std::vector<CurveSeries> series;  // drawing order: "loss" first, then by name
  std::int64_t first_step = 0, last_step = 0;
  double y_min = 0, y_max = 0;      // the plotted range (padded)
};

namespace curve_detail {
inline void put(io::Image& im, int x, int y, const std::array<std::uint8_t, 3>& c) {
  if (x < 0 || y < 0 || x >= im.width || y >= im.height) return;
  for (int k = 0; k < 3; ++k) im.at(x, y, k) = c[std::size_t(k)];
}
// A 2-pixel-wide line (Bresenham).
inline void line(io::Image& im, int x0, int y0, int x1, int y1, const std::array<std::uint8_t, 3>& c) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    put(im, x0, y0, c);
    put(im, x0 + 1, y0, c);
    put(im, x0, y0 + 1, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) { err += dy; x0 += sx; }
    if (e2 <= dx) { err += dx; y0 += sy; }
  }
}
}  // namespace curve_detail

// Draws the curves of the metrics log `metrics` into `png` (width x height pixels).
inline LossCurve write_loss_curve(const std::filesystem::path& metrics, const std::filesystem::path& png,
                                  int width = 800, int height = 480) {
  FIBER_CHECK(width >= 64 && height >= 64 && width <= 8192 && height <= 8192, "write_loss_curve: image size ", width,
              "x", height, " is outside 64..8192");
  std::map<std::string, std::vector<std::pair<double, double>>> points;  // name -> (step, value)
  for (const nlohmann::json& j : read_metrics(metrics)) {
    const auto step = j.find("step");
    if (step == j.end() || !step->is_number()) continue;
    for (const auto& [k, v] : j.items())
      if (is_loss_key(k) && v.is_number() && std::isfinite(v.get<double>()))
        points[k].emplace_back(step->get<double>(), v.get<double>());
  }
  FIBER_CHECK(!points.empty(), metrics.string(), ": no loss values to plot (empty or missing metrics log)");
  LossCurve out;
  double x0 = std::numeric_limits<double>::max(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& [name, pts] : points)
    for (const auto& [x, y] : pts) {
      x0 = std::min(x0, x); x1 = std::max(x1, x);
      y0 = std::min(y0, y); y1 = std::max(y1, y);
    }
  if (x1 <= x0) x1 = x0 + 1;
  const double pad = y1 > y0 ? 0.05 * (y1 - y0) : std::max(1e-3, std::abs(y0) * 0.05);
  y0 -= pad;
  y1 += pad;
  out.first_step = std::int64_t(x0);
  out.last_step = std::int64_t(x1);
  out.y_min = y0;
  out.y_max = y1;

  io::Image im(width, height);
  std::fill(im.pixels.begin(), im.pixels.end(), std::uint8_t(255));
  const int left = 48, right = width - 16, top = 16, bottom = height - 40;
  const std::array<std::uint8_t, 3> grid{225, 225, 225}, axis{0, 0, 0};
  for (int i = 1; i <= 5; ++i) {
    const int gx = left + (right - left) * i / 5, gy = bottom - (bottom - top) * i / 5;
    curve_detail::line(im, gx, top, gx, bottom, grid);
    curve_detail::line(im, left, gy, right, gy, grid);
  }
  curve_detail::line(im, left, top, left, bottom, axis);
  curve_detail::line(im, left, bottom, right, bottom, axis);
  static constexpr std::array<std::array<std::uint8_t, 3>, 8> palette = {{{31, 119, 180}, {255, 127, 14},
                                                                          {44, 160, 44}, {214, 39, 40},
                                                                          {148, 103, 189}, {140, 86, 75},
                                                                          {227, 119, 194}, {127, 127, 127}}};
  std::vector<std::string> order;
  if (points.count("loss")) order.push_back("loss");
  for (const auto& [name, pts] : points)
    if (name != "loss") order.push_back(name);
  std::size_t colour = 0;
  for (const std::string& name : order) {
    const auto& pts = points[name];
    const std::array<std::uint8_t, 3> c = name == "loss" ? axis : palette[colour++ % palette.size()];
    auto px = [&](double x) { return left + int(std::lround((x - x0) / (x1 - x0) * (right - left))); };
    auto py = [&](double y) { return bottom - int(std::lround((y - y0) / (y1 - y0) * (bottom - top))); };
    for (std::size_t i = 0; i < pts.size(); ++i) {
      if (i == 0) curve_detail::line(im, px(pts[0].first), py(pts[0].second), px(pts[0].first), py(pts[0].second), c);
      else curve_detail::line(im, px(pts[i - 1].first), py(pts[i - 1].second), px(pts[i].first), py(pts[i].second), c);
    }
    out.series.push_back({name, c, pts.size()});
  }
  io::write_png(im, png);
  return out;
}

}  // namespace fiber::train
