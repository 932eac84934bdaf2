#pragma once
// One scene of the shapes world: 1 to 3 coloured shapes on a plain background, a caption that
// names each shape's size, colour and kind and how they lie to each other, and for each shape's
// noun phrase its box and its character span in the caption (MDETR-style grounding).
//
// A scene is a pure function of (seed, stream): the stream numbers the scene (split and index),
// so scene i is the same whatever the number of scenes asked for. Randomness is Philox
// (core/rng.hpp), drawn from a counter range of its own per stream.
//
// Captions (closed vocabulary, shapes_vocab.hpp):
//   1 shape   "a small red circle"
//   2 shapes  "NP1 REL NP2"                  "a small red circle left of a large blue square"
//   3 shapes  "NP1 REL NP2 and NP3 REL it"   (it = NP2)
// with REL one of "left of", "right of", "above", "below", and the shapes' order in the caption
// random. A relation is only said where it holds strictly: "A left of B" means A's box ends at
// least min_gap pixels before B's begins; of the relations that hold, the one with the widest gap
// is said. No two shapes of a scene share colour and kind, so each noun phrase names one shape.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/io/image.hpp"

namespace fiber::train {

inline constexpr std::array<std::string_view, 4> shape_kind_names = {"circle", "square", "triangle", "cross"};
inline constexpr std::array<std::string_view, 2> shape_size_names = {"small", "large"};

struct ShapeColour {
  std::string_view name;
  std::array<std::uint8_t, 3> rgb;
};
// Saturated and far apart in hue, so a few pixels name the colour.
inline constexpr std::array<ShapeColour, 6> shape_colours = {{{"red", {220, 30, 30}},
                                                              {"green", {30, 160, 50}},
                                                              {"blue", {30, 70, 220}},
                                                              {"yellow", {235, 200, 20}},
                                                              {"purple", {140, 50, 180}},
                                                              {"orange", {245, 120, 10}}}};
inline constexpr std::array<std::uint8_t, 3> shapes_background = {235, 235, 235};

// Longest caption in tokens, <s> and </s> included: three noun phrases of 4 tokens, two
// two-token relations ("left of"), "and", "it".
inline constexpr int shapes_world_max_caption_tokens = 20;

// [x, y, w, h] in pixels, COCO order; the shape covers part of it and touches all four sides
// (the triangle's apex may leave its top row without a full pixel).
struct ShapeBox {
  int x = 0, y = 0, w = 0, h = 0;
};

struct SceneShape {
  int kind = 0;    // index into shape_kind_names
  int colour = 0;  // index into shape_colours
  int size = 0;    // index into shape_size_names
  ShapeBox box;
};

// A noun phrase of the caption: [begin, end) in characters (ASCII: bytes), and its shape.
struct ScenePhrase {
  std::size_t shape = 0;
  std::size_t begin = 0, end = 0;
};

struct Scene {
  int image_size = 0;
  std::vector<SceneShape> shapes;
  std::string caption;
  std::vector<ScenePhrase> phrases;  // in caption order, one per shape
};

struct SceneOptions {
  int image_size = 64;
  int min_shapes = 2;  // the count is uniform in [min_shapes, max_shapes], 1..3
  int max_shapes = 2;
  int min_gap = 2;     // pixels between any two boxes
};

enum class Relation { left_of, right_of, above, below };
inline constexpr std::array<std::string_view, 4> relation_names = {"left of", "right of", "above", "below"};

// How `a` lies relative to `b`: the relation with the widest strict gap; gap is that width in
// pixels (< min_gap when the boxes are too close for any relation to hold clearly).
struct RelationGap {
  Relation relation = Relation::left_of;
  int gap = 0;
};
inline RelationGap relation_between(const ShapeBox& a, const ShapeBox& b) {
  const std::array<int, 4> gaps = {b.x - (a.x + a.w), a.x - (b.x + b.w), b.y - (a.y + a.h), a.y - (b.y + b.h)};
  const auto best = std::max_element(gaps.begin(), gaps.end());  // first on ties: left, right, above, below
  return {Relation(best - gaps.begin()), *best};
}

namespace detail {

// Uniform draws from one Philox stream: counters [base, base + 2^12) of the generator's key.
class SceneRandom {
 public:
  SceneRandom(std::uint64_t seed, std::uint64_t stream) : gen_(seed) { gen_.advance(stream << 12); }
  std::uint32_t next() {
    if (used_ == 4) {
      FIBER_CHECK(++blocks_ <= (1u << 12), "shapes world: a scene used more random numbers than its stream holds");
      words_ = gen_.block(0);
      gen_.advance(1);
      used_ = 0;
    }
    return words_[used_++];
  }
  // Uniform integer in [lo, hi].
  int between(int lo, int hi) { return lo + int((std::uint64_t(next()) * std::uint64_t(hi - lo + 1)) >> 32); }
  double unit() { return double(next()) * 0x1.0p-32; }

 private:
  Generator gen_;
  std::array<std::uint32_t, 4> words_{};
  int used_ = 4;
  std::uint32_t blocks_ = 0;
};

// Is the point (u, v), in units of the box (0..1 each), inside the shape of this kind?
inline bool inside_shape(int kind, double u, double v) {
  switch (kind) {
    case 0: return (u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5) <= 0.25;    // circle
    case 1: return true;                                                   // square: the box
    case 2: return std::abs(u - 0.5) <= 0.5 * v;                           // triangle, apex up
    default: return std::abs(u - 0.5) <= 1.0 / 6 || std::abs(v - 0.5) <= 1.0 / 6;  // cross
  }
}

inline std::string noun_phrase(const SceneShape& s) {
  return "a " + std::string(shape_size_names[s.size]) + " " + std::string(shape_colours[s.colour].name) + " " +
         std::string(shape_kind_names[s.kind]);
}

}  // namespace detail

inline void check_scene_options(const SceneOptions& o) {
  FIBER_CHECK(o.image_size >= 32 && o.image_size <= 1024, "shapes world: image size ", o.image_size,
              " is outside [32, 1024]");
  FIBER_CHECK(o.min_shapes >= 1 && o.max_shapes <= 3 && o.min_shapes <= o.max_shapes, "shapes world: shape count [",
              o.min_shapes, ", ", o.max_shapes, "] is not a range within [1, 3]");
  FIBER_CHECK(o.min_gap >= 1 && o.min_gap <= o.image_size / 16, "shapes world: min_gap ", o.min_gap,
              " is outside [1, image_size / 16]");
}

// The scene of (seed, stream). Sides: small 16-19 %, large 28-34 % of the image, so three large
// shapes always fit and small and large never meet.
inline Scene generate_scene(const SceneOptions& o, std::uint64_t seed, std::uint64_t stream) {
  check_scene_options(o);
  detail::SceneRandom rng(seed, stream);
  Scene scene;
  scene.image_size = o.image_size;
  const int S = o.image_size;
  for (int restart = 0; restart < 50 && scene.shapes.empty(); ++restart) {
    const int count = rng.between(o.min_shapes, o.max_shapes);
    std::vector<SceneShape> shapes;
    for (int i = 0; i < count; ++i) {
      SceneShape s;
      do {  // distinct colour + kind within the scene
        s.kind = rng.between(0, int(shape_kind_names.size()) - 1);
        s.colour = rng.between(0, int(shape_colours.size()) - 1);
      } while (std::any_of(shapes.begin(), shapes.end(),
                           [&](const SceneShape& t) { return t.kind == s.kind && t.colour == s.colour; }));
      s.size = rng.between(0, 1);
      const double fraction = s.size == 0 ? 0.16 + 0.03 * rng.unit() : 0.28 + 0.06 * rng.unit();
      const int side = std::max(4, int(std::lround(fraction * S)));
      bool placed = false;
      for (int attempt = 0; attempt < 100 && !placed; ++attempt) {
        s.box = {rng.between(1, S - 1 - side), rng.between(1, S - 1 - side), side, side};
        placed = std::all_of(shapes.begin(), shapes.end(),
                             [&](const SceneShape& t) { return relation_between(s.box, t.box).gap >= o.min_gap; });
      }
      if (!placed) break;
      shapes.push_back(s);
    }
    if (int(shapes.size()) == count) scene.shapes = std::move(shapes);
  }
  FIBER_CHECK(!scene.shapes.empty(), "shapes world: could not place the shapes of scene ", stream);

  // Caption: the shapes in a random order (Fisher-Yates).
  std::vector<std::size_t> order(scene.shapes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[std::size_t(rng.between(0, int(i) - 1))]);
  auto phrase = [&](std::size_t shape) {
    const std::size_t begin = scene.caption.size();
    scene.caption += detail::noun_phrase(scene.shapes[shape]);
    scene.phrases.push_back({shape, begin, scene.caption.size()});
  };
  auto relation = [&](std::size_t a, std::size_t b) {
    scene.caption += " ";
    scene.caption += relation_names[int(relation_between(scene.shapes[a].box, scene.shapes[b].box).relation)];
    scene.caption += " ";
  };
  phrase(order[0]);
  if (order.size() >= 2) {
    relation(order[0], order[1]);
    phrase(order[1]);
  }
  if (order.size() == 3) {
    scene.caption += " and ";
    phrase(order[2]);
    relation(order[2], order[1]);
    scene.caption += "it";
  }
  return scene;
}

// Draws the scene: background, then each shape in its colour. Plain rasterisation samples each
// pixel at its centre (every pixel is the background or exactly a shape's colour);
// antialias averages 4 x 4 samples per pixel.
inline io::Image render_scene(const Scene& scene, bool antialias = false) {
  const int S = scene.image_size;
  io::Image image(S, S);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x)
      for (int c = 0; c < 3; ++c) image.at(x, y, c) = shapes_background[c];
  const int n = antialias ? 4 : 1;
  for (const SceneShape& s : scene.shapes) {
    const auto& rgb = shape_colours[s.colour].rgb;
    for (int y = s.box.y; y < s.box.y + s.box.h; ++y)
      for (int x = s.box.x; x < s.box.x + s.box.w; ++x) {
        int hits = 0;
        for (int sy = 0; sy < n; ++sy)
          for (int sx = 0; sx < n; ++sx) {
            const double u = (x - s.box.x + (sx + 0.5) / n) / s.box.w, v = (y - s.box.y + (sy + 0.5) / n) / s.box.h;
            hits += detail::inside_shape(s.kind, u, v);
          }
        if (hits == 0) continue;
        for (int c = 0; c < 3; ++c)  // integer blend: exact colours at full coverage
          image.at(x, y, c) = std::uint8_t((rgb[c] * hits + image.at(x, y, c) * (n * n - hits) + n * n / 2) / (n * n));
      }
  }
  return image;
}

}  // namespace fiber::train
