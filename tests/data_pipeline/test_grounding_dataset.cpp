// load_grounding_dataset: the shapes world's grounding JSON, COCO detection JSON (category prompts),
// crowd boxes, and errors that name the file and the entry.
#include <doctest/doctest.h>

#include "data_fixtures.hpp"
#include "fiber/train/grounding_dataset.hpp"
#include "fiber/train/shapes_world.hpp"

using namespace fiber;

namespace {
std::string span_text(const std::string& s, text::CharSpan c) { return s.substr(c.begin, c.end - c.begin); }  // ASCII
}  // namespace

TEST_CASE("grounding data: the shapes world's boxes and phrase spans") {
  const auto dir = test::fresh_dir("grounding_shapes");
  train::ShapesWorldOptions o;
  o.train = 5;
  o.val = 1;
  o.seed = 3;
  train::write_shapes_world(dir, o);
  const train::GroundingDataset d = train::load_grounding_dataset(dir / "train.json");
  REQUIRE(d.size() == 5);
  for (const train::GroundingImage& im : d.images) {
    CAPTURE(im.prompt);
    CHECK(std::filesystem::exists(im.file));
    CHECK(!im.detection);  // a caption: its prompt stays as written
    REQUIRE(im.boxes.size() == 2);  // two shapes per scene by default
    for (const train::GroundingBox& b : im.boxes) {
      REQUIRE(b.spans.size() == 1);
      CHECK(b.category == -1);
      const std::string phrase = span_text(im.prompt, b.spans[0]);
      CHECK((phrase.starts_with("a ") || phrase.starts_with("the ")));
      CHECK(b.xywh[2] > 0);
      CHECK(b.xywh[0] + b.xywh[2] <= 64);
    }
  }
}

TEST_CASE("grounding data: COCO detection JSON gets its categories' prompt; crowd boxes are left out") {
  const auto dir = test::fresh_dir("grounding_coco");
  test::write_text(dir / "instances.json", R"({
    "images": [{"id": 7, "file_name": "a.png"}, {"id": 8, "file_name": "b.png"}],
    "annotations": [
      {"id": 1, "image_id": 7, "bbox": [1, 2, 10, 20], "category_id": 3, "iscrowd": 0},
      {"id": 2, "image_id": 7, "bbox": [0, 0, 5, 5], "category_id": 1},
      {"id": 3, "image_id": 8, "bbox": [0, 0, 50, 50], "category_id": 1, "iscrowd": 1}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "traffic_light"}, {"id": 4, "name": "dog"}]})");
  const train::GroundingDataset d = train::load_grounding_dataset(dir / "instances.json");
  REQUIRE(d.size() == 2);
  CHECK(d.images[0].prompt == "cat. traffic light. dog");  // GLIP's clean_name: '_' -> ' '
  CHECK(d.images[0].file == dir / "a.png");
  REQUIRE(d.images[0].boxes.size() == 2);
  CHECK(span_text(d.images[0].prompt, d.images[0].boxes[0].spans[0]) == "traffic light");
  CHECK(d.images[0].boxes[0].category_id == 3);
  CHECK(d.images[0].boxes[0].xywh == std::array<double, 4>{1, 2, 10, 20});
  CHECK(span_text(d.images[0].prompt, d.images[0].boxes[1].spans[0]) == "cat");
  CHECK(d.images[1].boxes.empty());  // its only box is a crowd: a negative image
  // What the training task needs to list the categories in another order: the names as in the
  // file, each box's index among them.
  CHECK(d.categories == std::vector<std::string>{"cat", "traffic_light", "dog"});
  CHECK(d.images[0].detection);
  CHECK(d.images[0].boxes[0].category == 1);
  CHECK(d.images[0].boxes[1].category == 0);
}

TEST_CASE("grounding data: images without a box over 1 pixel are left out, as the official data sets") {
  // has_valid_annotation (CocoGrounding, ModulatedDataset): no annotation, or every box (crowds
  // too) at most 1 pixel wide or high, leaves the image out; a crowd box alone keeps it.
  const auto dir = test::fresh_dir("grounding_left_out");
  test::write_text(dir / "g.json", R"({
    "images": [{"id": 1, "file_name": "a.png", "caption": "a dot"}, {"id": 2, "file_name": "b.png", "caption": "a line"},
               {"id": 3, "file_name": "c.png", "caption": "a box"}, {"id": 4, "file_name": "d.png", "caption": "a crowd"},
               {"id": 5, "file_name": "e.png", "caption": "nothing"}],
    "annotations": [
      {"image_id": 1, "bbox": [3, 3, 1, 1], "tokens_positive": [[2, 5]]},
      {"image_id": 2, "bbox": [3, 3, 40, 1], "tokens_positive": [[2, 6]]},
      {"image_id": 2, "bbox": [9, 9, 0.5, 30], "tokens_positive": [[2, 6]]},
      {"image_id": 3, "bbox": [3, 3, 0.5, 30], "tokens_positive": [[2, 5]]},
      {"image_id": 3, "bbox": [3, 3, 1.5, 1.5], "tokens_positive": [[2, 5]]},
      {"image_id": 4, "bbox": [0, 0, 9, 9], "iscrowd": 1}]})");
  const train::GroundingDataset d = train::load_grounding_dataset(dir / "g.json");
  CHECK(d.images_left_out == 3);
  REQUIRE(d.size() == 2);
  CHECK(d.images[0].file == dir / "c.png");
  CHECK(d.images[0].boxes.size() == 2);  // the thin box stays: the batch drops it after the clamp
  CHECK(d.images[1].file == dir / "d.png");
  CHECK(d.images[1].boxes.empty());
  test::write_text(dir / "none.json", R"({"images": [{"id": 1, "file_name": "a.png", "caption": "a dot"}],
    "annotations": [{"image_id": 1, "bbox": [3, 3, 1, 9], "tokens_positive": [[2, 5]]}]})");
  CHECK_THROWS_WITH_AS(train::load_grounding_dataset(dir / "none.json"),
                       doctest::Contains("none.json: no images with a box over 1 pixel wide and high"), Error);
}

TEST_CASE("grounding data: errors name the file and the entry") {
  const auto dir = test::fresh_dir("grounding_errors");
  auto load = [&](const std::string& json) {
    test::write_text(dir / "g.json", json);
    return train::load_grounding_dataset(dir / "g.json");
  };
  const std::string image = R"({"id": 1, "file_name": "x.png", "caption": "a red cube"})";
  CHECK_THROWS_WITH_AS(load(R"({"images": [)" + image + R"(], "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1]}]})"),
                       doctest::Contains("annotations[0]: missing \"tokens_positive\""), Error);
  CHECK_THROWS_WITH_AS(
      load(R"({"images": [)" + image + R"(], "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "tokens_positive": [[4, 11]]}]})"),
      doctest::Contains("[4, 11] is not a span of the 10-character caption"), Error);
  CHECK_THROWS_WITH_AS(
      load(R"({"images": [)" + image + R"(], "annotations": [{"image_id": 1, "bbox": [0, 0, -1, 1], "tokens_positive": [[0, 1]]}]})"),
      doctest::Contains("negative width or height"), Error);
  CHECK_THROWS_WITH_AS(
      load(R"({"images": [)" + image + R"(], "annotations": [{"image_id": 2, "bbox": [0, 0, 1, 1], "tokens_positive": [[0, 1]]}]})"),
      doctest::Contains("image_id 2 is not in \"images\""), Error);
  CHECK_THROWS_WITH_AS(load(R"({"images": [{"id": 1, "file_name": "x.png"}]})"),
                       doctest::Contains("no \"caption\" and the file has no \"categories\""), Error);
  CHECK_THROWS_WITH_AS(load(R"({"images": [{"id": 1, "file_name": "x.png"}], "categories": [{"id": 1, "name": "cat"}],
                              "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "category_id": 9}]})"),
                       doctest::Contains("category_id 9 is not in \"categories\""), Error);
  CHECK_THROWS_WITH_AS(load(R"({"images": []})"), doctest::Contains("no images"), Error);
  CHECK_THROWS_WITH_AS(load("{\"images\": [{\"id\": 1, \"file_name\": \"x.png\", \"caption\": \"\\u00ff\xff\"}]}"),
                       doctest::Contains("not valid JSON"), Error);
}
