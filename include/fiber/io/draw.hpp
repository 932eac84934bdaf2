#pragma once
// Drawing on an io::Image, for pictures of results (`fiber ground --draw`): rectangle outlines and
// short labels in a 3 x 5 pixel font of digits, '.', '-' and ' ' (a label is a phrase number and a
// score; the phrases themselves go in the text output). Everything is clipped to the image.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "fiber/core/error.hpp"
#include "fiber/io/image.hpp"

namespace fiber::io {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

// Distinct colours for labels 1, 2, ... (cycling after 10).
inline Rgb label_colour(std::int64_t label) {
  static constexpr std::array<Rgb, 10> palette{{{230, 25, 75}, {60, 180, 75}, {0, 130, 200}, {245, 130, 48}, {145, 30, 180},
                                                {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 190}, {0, 128, 128}}};
  const std::int64_t i = label < 1 ? 0 : (label - 1) % std::int64_t(palette.size());
  return palette[std::size_t(i)];
}

// Pixels [x1, x2] x [y1, y2] (inclusive, clipped) set to c.
inline void fill_rectangle(Image& im, int x1, int y1, int x2, int y2, Rgb c) {
  x1 = std::max(x1, 0), y1 = std::max(y1, 0);
  x2 = std::min(x2, im.width - 1), y2 = std::min(y2, im.height - 1);
  for (int y = y1; y <= y2; ++y)
    for (int x = x1; x <= x2; ++x) {
      std::uint8_t* p = im.pixels.data() + (std::size_t(y) * std::size_t(im.width) + std::size_t(x)) * 3;
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
}

// The outline of box (x1, y1, x2, y2) in pixel coordinates, `thickness` pixels inwards.
inline void draw_rectangle(Image& im, double x1, double y1, double x2, double y2, Rgb c, int thickness = 2) {
  FIBER_CHECK(std::isfinite(x1) && std::isfinite(y1) && std::isfinite(x2) && std::isfinite(y2) && thickness >= 1,
              "draw_rectangle: box (", x1, ", ", y1, ", ", x2, ", ", y2, ") and thickness ", thickness);
  // Far outside the image is the same as at its border (and keeps the int conversions in range).
  auto px = [&](double v, int size) { return int(std::lround(std::clamp(v, -1.0, double(size)))); };
  const int l = px(std::min(x1, x2), im.width), r = px(std::max(x1, x2), im.width);
  const int t = px(std::min(y1, y2), im.height), b = px(std::max(y1, y2), im.height);
  const int k = thickness - 1;
  fill_rectangle(im, l, t, r, t + k, c);
  fill_rectangle(im, l, b - k, r, b, c);
  fill_rectangle(im, l, t, l + k, b, c);
  fill_rectangle(im, r - k, t, r, b, c);
}

namespace detail {
// Rows of a 3 x 5 glyph, 3 bits each (bit 2 = left column).
inline const std::array<std::uint8_t, 5>* glyph(char ch) {
  static constexpr std::array<std::array<std::uint8_t, 5>, 10> digits{{{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7},
                                                                      {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7},
                                                                      {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7},
                                                                      {7, 5, 7, 1, 7}}};
  static constexpr std::array<std::uint8_t, 5> dot{0, 0, 0, 0, 2}, minus{0, 0, 7, 0, 0}, space{0, 0, 0, 0, 0};
  if (ch >= '0' && ch <= '9') return &digits[std::size_t(ch - '0')];
  if (ch == '.') return &dot;
  if (ch == '-') return &minus;
  if (ch == ' ') return &space;
  return nullptr;
}
}  // namespace detail

// `text` (digits, '.', '-', ' ') on a `bg` plate whose top-left corner is (x, y); each font pixel
// is scale x scale. Returns the plate's width in pixels.
inline int draw_label(Image& im, int x, int y, std::string_view text, Rgb fg, Rgb bg, int scale = 2) {
  FIBER_CHECK(scale >= 1 && scale <= 64, "draw_label: scale ", scale, " must be in [1, 64]");
  for (char ch : text) FIBER_CHECK(detail::glyph(ch), "draw_label: no glyph for '", ch, "' (digits, '.', '-', ' ' only)");
  const int advance = 4 * scale, width = int(text.size()) * advance + scale, height = 7 * scale;
  fill_rectangle(im, x, y, x + width - 1, y + height - 1, bg);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto& rows = *detail::glyph(text[i]);
    const int gx = x + scale + int(i) * advance, gy = y + scale;
    for (int r = 0; r < 5; ++r)
      for (int c = 0; c < 3; ++c)
        if (rows[std::size_t(r)] & (4 >> c))
          fill_rectangle(im, gx + c * scale, gy + r * scale, gx + (c + 1) * scale - 1, gy + (r + 1) * scale - 1, fg);
  }
  return width;
}

}  // namespace fiber::io
