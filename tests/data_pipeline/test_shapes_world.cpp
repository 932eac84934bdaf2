// The shapes world: scenes are deterministic, boxes match the drawn pixels, captions say what
// the scene shows and their spans index the phrases, and the files on disk follow the layout.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "data_fixtures.hpp"
#include "fiber/io/png.hpp"
#include "fiber/text/tokenizer.hpp"
#include "fiber/train/shapes_world.hpp"

using namespace fiber;
using train::ShapesSplit;

namespace {
bool is_colour(const io::Image& im, int x, int y, const std::array<std::uint8_t, 3>& rgb) {
  return im.at(x, y, 0) == rgb[0] && im.at(x, y, 1) == rgb[1] && im.at(x, y, 2) == rgb[2];
}
}  // namespace

TEST_CASE("boxes lie in the image and match the pixels drawn") {
  train::ShapesWorldOptions o;
  o.min_shapes = 1;
  o.max_shapes = 3;
  for (int size : {32, 64, 97}) {
    o.size = size;
    for (int i = 0; i < 60; ++i) {
      const train::Scene scene = train::shapes_world_scene(o, ShapesSplit::train, i);
      const io::Image im = train::render_scene(scene);
      std::vector<bool> covered(std::size_t(size * size), false);
      for (const train::SceneShape& s : scene.shapes) {
        const auto& b = s.box;
        REQUIRE(b.x >= 0);
        REQUIRE(b.y >= 0);
        REQUIRE(b.x + b.w <= size);
        REQUIRE(b.y + b.h <= size);
        // The shape's colour fills its box's tight extent (to within the triangle's apex row).
        int x0 = size, y0 = size, x1 = -1, y1 = -1, count = 0;
        for (int y = b.y; y < b.y + b.h; ++y)
          for (int x = b.x; x < b.x + b.w; ++x) {
            covered[std::size_t(y * size + x)] = true;
            if (!is_colour(im, x, y, train::shape_colours[s.colour].rgb)) continue;
            ++count, x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
          }
        INFO("scene ", i, " size ", size, ": ", scene.caption);
        CHECK(count >= b.w * b.h / 3);
        CHECK(x0 == b.x);
        CHECK(x1 == b.x + b.w - 1);
        CHECK(y0 <= b.y + 1);
        CHECK(y1 == b.y + b.h - 1);
      }
      // Outside every box: background only.
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x)
          if (!covered[std::size_t(y * size + x)]) REQUIRE(is_colour(im, x, y, train::shapes_background));
    }
  }
}

TEST_CASE("captions name each shape and a relation that holds") {
  train::ShapesWorldOptions o;
  o.min_shapes = 1;
  o.max_shapes = 3;
  const auto t = [] {
    const auto v = train::build_shapes_vocab();
    return text::Tokenizer::from_strings(v.vocab_json(), v.merges_txt());
  }();
  std::size_t longest = 0;
  for (int i = 0; i < 400; ++i) {
    const train::Scene scene = train::shapes_world_scene(o, ShapesSplit::train, i);
    INFO(scene.caption);
    REQUIRE(scene.phrases.size() == scene.shapes.size());
    for (std::size_t a = 0; a < scene.shapes.size(); ++a)
      for (std::size_t b = a + 1; b < scene.shapes.size(); ++b) {
        CHECK((scene.shapes[a].colour != scene.shapes[b].colour || scene.shapes[a].kind != scene.shapes[b].kind));
        CHECK(train::relation_between(scene.shapes[a].box, scene.shapes[b].box).gap >= 2);
      }
    for (const train::ScenePhrase& p : scene.phrases) {
      const train::SceneShape& s = scene.shapes[p.shape];
      CHECK(scene.caption.substr(p.begin, p.end - p.begin) ==
            "a " + std::string(train::shape_size_names[s.size]) + " " + std::string(train::shape_colours[s.colour].name) +
                " " + std::string(train::shape_kind_names[s.kind]));
    }
    // "NP1 REL NP2 ...": the words between the first two phrases are the relation of 1 to 2, and
    // it holds strictly with the gap.
    if (scene.phrases.size() >= 2) {
      const auto& p0 = scene.phrases[0];
      const auto& p1 = scene.phrases[1];
      const std::string rel = scene.caption.substr(p0.end + 1, p1.begin - p0.end - 2);
      const auto& a = scene.shapes[p0.shape].box;
      const auto& b = scene.shapes[p1.shape].box;
      if (rel == "left of") CHECK(a.x + a.w + 2 <= b.x);
      else if (rel == "right of") CHECK(b.x + b.w + 2 <= a.x);
      else if (rel == "above") CHECK(a.y + a.h + 2 <= b.y);
      else if (rel == "below") CHECK(b.y + b.h + 2 <= a.y);
      else FAIL("unknown relation '", rel, "'");
    }
    longest = std::max(longest, t.encode(scene.caption).size());
  }
  CHECK(longest <= std::size_t(train::shapes_world_max_caption_tokens));
  CHECK(longest >= 18);  // three-shape captions were drawn
}

TEST_CASE("same seed, same files; another seed, other scenes; vocabulary the same for all") {
  const auto root = test::fresh_dir("determinism");
  train::ShapesWorldOptions o;
  o.train = 12;
  o.val = 4;
  o.seed = 7;
  train::write_shapes_world(root / "a", o);
  train::write_shapes_world(root / "b", o);
  o.seed = 8;
  train::write_shapes_world(root / "c", o);
  for (const char* name : {"train.json", "val.json", "train.jsonl", "val.jsonl", "vocab.json", "merges.txt",
                           "images/train_000000.png", "images/train_000011.png", "images/val_000003.png"}) {
    INFO(name);
    CHECK(test::file_text(root / "a" / name) == test::file_text(root / "b" / name));
  }
  CHECK(test::file_text(root / "a/train.json") != test::file_text(root / "c/train.json"));
  CHECK(test::file_text(root / "a/vocab.json") == test::file_text(root / "c/vocab.json"));
  CHECK(test::file_text(root / "a/merges.txt") == test::file_text(root / "c/merges.txt"));
  // The files as written load into our tokenizer: one token a word, <s> ... </s> framing.
  const auto t = text::Tokenizer::from_files(root / "a/vocab.json", root / "a/merges.txt");
  CHECK(t.vocab_size() == std::size_t(train::shapes_world_vocab_size));
  for (std::string_view w : train::shapes_world_words) {
    text::EncodeOptions plain;
    plain.add_special_tokens = false;
    CHECK(t.encode(w, plain).size() == 1);
    CHECK(t.encode(std::string(" ").append(w), plain).size() == 1);
    const auto framed = t.encode(w);
    CHECK(framed.ids == std::vector<std::int32_t>{t.bos_id(), t.encode(w, plain).ids[0], t.eos_id()});
  }
  int differing = 0;
  for (int i = 0; i < 12; ++i) {
    differing += test::file_text(root / "a" / train::detail::shapes_image_name(ShapesSplit::train, i)) !=
                 test::file_text(root / "c" / train::detail::shapes_image_name(ShapesSplit::train, i));
  }
  CHECK(differing >= 10);
  // Scene i does not depend on how many are written.
  CHECK(train::shapes_world_scene(o, ShapesSplit::train, 5).caption ==
        train::shapes_world_scene(o, ShapesSplit::train, 5).caption);
  std::filesystem::remove_all(root);
}

TEST_CASE("train.json: COCO images, grounded annotations with spans, categories") {
  const auto dir = test::fresh_dir("layout");
  train::ShapesWorldOptions o;
  o.train = 200;
  o.val = 60;
  const train::ShapesWorldSummary summary = train::write_shapes_world(dir, o);
  CHECK(summary.val_captions_seen_in_train == 0);
  const auto coco = nlohmann::json::parse(test::file_text(dir / "train.json"));
  REQUIRE(coco["images"].size() == 200);
  REQUIRE(coco["annotations"].size() == 400);  // two shapes a scene by default
  CHECK(coco["categories"].size() == 4);
  CHECK(coco["info"]["vocab_size"] == train::shapes_world_vocab_size);
  const auto& image = coco["images"][3];
  CHECK(image["id"] == 3);
  CHECK(image["file_name"] == "images/train_000003.png");
  const io::Image png = io::read_png(dir / image["file_name"].get<std::string>());
  CHECK(png.width == 64);
  for (const auto& a : coco["annotations"]) {
    const std::string caption = coco["images"][a["image_id"].get<std::size_t>()]["caption"];
    const auto span = a["tokens_positive"][0];
    CHECK(caption.substr(span[0].get<std::size_t>(), span[1].get<std::size_t>() - span[0].get<std::size_t>()) ==
          a["phrase"].get<std::string>());
    CHECK(a["phrase"].get<std::string>().find(a["colour"].get<std::string>()) != std::string::npos);
    const auto kind = coco["categories"][a["category_id"].get<int>() - 1]["name"].get<std::string>();
    CHECK(a["phrase"].get<std::string>().ends_with(" " + kind));
  }
  // Val captions unseen in train.
  std::set<std::string> train_captions;
  for (const auto& im : coco["images"]) train_captions.insert(im["caption"]);
  const auto val = nlohmann::json::parse(test::file_text(dir / "val.json"));
  std::set<std::string> val_captions;
  for (const auto& im : val["images"]) {
    CHECK(train_captions.count(im["caption"]) == 0);
    CHECK(val_captions.insert(im["caption"]).second);  // each val caption names one val image
  }
  CHECK(summary.val_captions_repeated == 0);
  // JSONL mirrors the JSON.
  const std::string jsonl = test::file_text(dir / "train.jsonl");
  const auto first = nlohmann::json::parse(jsonl.substr(0, jsonl.find('\n')));
  CHECK(first["image"] == "images/train_000000.png");
  CHECK(first["caption"] == coco["images"][0]["caption"]);
  std::filesystem::remove_all(dir);
}

TEST_CASE("bad options and a non-empty directory are errors") {
  const auto dir = test::fresh_dir("options");
  train::ShapesWorldOptions o;
  o.train = 2;
  o.val = 1;
  auto message = [&](train::ShapesWorldOptions bad, const std::filesystem::path& where) {
    try {
      train::write_shapes_world(where, bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto with = [&](auto change) {
    train::ShapesWorldOptions b = o;
    change(b);
    return message(b, dir / "new");
  };
  CHECK(with([](auto& b) { b.size = 31; }).find("image size 31 is outside [32, 1024]") != std::string::npos);
  CHECK(with([](auto& b) { b.size = 4096; }).find("outside [32, 1024]") != std::string::npos);
  CHECK(with([](auto& b) { b.train = -1; }).find("train count -1") != std::string::npos);
  CHECK(with([](auto& b) { b.val = 20'000'000; }).find("val count 20000000") != std::string::npos);
  CHECK(with([](auto& b) { b.train = b.val = 0; }).find("nothing to write") != std::string::npos);
  CHECK(with([](auto& b) { b.max_shapes = 4; }).find("within [1, 3]") != std::string::npos);
  CHECK(!std::filesystem::exists(dir / "new"));
  test::write_text(dir / "keep.txt", "x");
  CHECK(message(o, dir).find("is not empty") != std::string::npos);
  o.overwrite = true;
  CHECK(message(o, dir) == "no error");
  CHECK(std::filesystem::exists(dir / "keep.txt"));
  test::write_text(dir / "file", "x");
  CHECK(message(o, dir / "file").find("not a directory") != std::string::npos);
  std::filesystem::remove_all(dir);
}
