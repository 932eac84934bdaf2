// io/draw.hpp: rectangle outlines and digit labels, pixel by pixel, clipped to the image.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "fiber/io/draw.hpp"

using namespace fiber;

namespace {
io::Rgb at(const io::Image& im, int x, int y) {
  const std::uint8_t* p = im.pixels.data() + (std::size_t(y) * std::size_t(im.width) + std::size_t(x)) * 3;
  return {p[0], p[1], p[2]};
}
bool same(io::Rgb a, io::Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
}  // namespace

TEST_CASE("draw_rectangle: the outline, thickness inwards, the inside untouched") {
  io::Image im(20, 10);
  const io::Rgb red{255, 0, 0}, black{0, 0, 0};
  io::draw_rectangle(im, 2.4, 1.6, 12.5, 8.0, red, 2);  // rounds to x 2..13 (12.5 -> 13), y 2..8
  CHECK(same(at(im, 2, 2), red));
  CHECK(same(at(im, 13, 8), red));
  CHECK(same(at(im, 3, 5), red));    // left edge, second column
  CHECK(same(at(im, 4, 5), black));  // inside
  CHECK(same(at(im, 12, 4), red));   // right edge, second column from the right
  CHECK(same(at(im, 11, 4), black));
  CHECK(same(at(im, 1, 1), black));  // outside
  CHECK(same(at(im, 14, 9), black));
}

TEST_CASE("draw_rectangle: boxes partly or far outside are clipped; non-finite boxes are errors") {
  io::Image im(8, 8);
  const io::Rgb c{1, 2, 3};
  io::draw_rectangle(im, -5, -5, 3, 3, c, 1);
  CHECK(same(at(im, 3, 0), c));
  CHECK(same(at(im, 0, 3), c));
  CHECK(same(at(im, 1, 1), io::Rgb{}));
  io::draw_rectangle(im, -1e300, 2, 1e300, 5, c, 1);  // no overflow: the sides lie outside
  CHECK(same(at(im, 4, 2), c));
  CHECK(same(at(im, 4, 5), c));
  CHECK_THROWS_AS(io::draw_rectangle(im, std::nan(""), 0, 1, 1, c), Error);
  CHECK_THROWS_AS(io::draw_rectangle(im, 0, 0, 1, 1, c, 0), Error);
}

TEST_CASE("draw_label: glyphs on a plate; unknown characters are errors") {
  io::Image im(40, 20);
  const io::Rgb fg{255, 255, 255}, bg{0, 0, 200};
  const int w = io::draw_label(im, 1, 1, "1.", fg, bg, 2);
  CHECK(w == 2 * 8 + 2);
  CHECK(same(at(im, 1, 1), bg));  // the plate's corner
  // '1': rows 010 110 010 010 111 at (1 + 2, 1 + 2), 2 x 2 pixels each.
  CHECK(same(at(im, 3 + 2, 3), fg));   // row 0, middle column
  CHECK(same(at(im, 3, 3), bg));       // row 0, left column
  CHECK(same(at(im, 3, 3 + 2), fg));   // row 1, left column
  CHECK(same(at(im, 3, 3 + 8), fg));   // row 4: 111
  // '.': only row 4, middle column, of the second glyph (x = 1 + 2 + 8).
  CHECK(same(at(im, 11 + 2, 3 + 8), fg));
  CHECK(same(at(im, 11, 3 + 8), bg));
  io::draw_label(im, 35, 15, "88", fg, bg, 3);  // clipped at the corner
  CHECK_THROWS_WITH_AS(io::draw_label(im, 0, 0, "cat", fg, bg), doctest::Contains("no glyph for 'c'"), Error);
}

TEST_CASE("label colours differ for the first ten labels") {
  for (int a = 1; a <= 10; ++a)
    for (int b = a + 1; b <= 10; ++b) CHECK_FALSE(same(io::label_colour(a), io::label_colour(b)));
  CHECK(same(io::label_colour(11), io::label_colour(1)));
}
