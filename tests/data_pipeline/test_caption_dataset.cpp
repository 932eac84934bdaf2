// Caption data sets: COCO captions JSON (the shapes world's and the standard layout) and JSONL,
// grouped by image; malformed files are errors naming the file and the entry or line.
#include <doctest/doctest.h>

#include <string>

#include "data_fixtures.hpp"
#include "fiber/train/caption_dataset.hpp"
#include "fiber/train/shapes_world.hpp"

using namespace fiber;

namespace {
std::string load_error(const std::filesystem::path& path, const train::CaptionLimits& limits = {}) {
  try {
    train::load_caption_dataset(path, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("the shapes world loads the same from train.json and train.jsonl") {
  const auto dir = test::fresh_dir("captions_world");
  train::ShapesWorldOptions o;
  o.train = 6;
  o.val = 2;
  train::write_shapes_world(dir, o);
  const train::CaptionDataset coco = train::load_caption_dataset(dir / "train.json");
  const train::CaptionDataset lines = train::load_caption_dataset(dir / "train.jsonl");
  REQUIRE(coco.size() == 6);
  REQUIRE(lines.size() == 6);
  CHECK(coco.images.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(coco.samples[i].image == lines.samples[i].image);
    CHECK(coco.samples[i].caption == lines.samples[i].caption);
    CHECK(coco.samples[i].image_index == i);
    CHECK(std::filesystem::exists(coco.samples[i].image));
  }
  CHECK(coco.samples[2].image == dir / "images/train_000002.png");
  std::filesystem::remove_all(dir);
}

TEST_CASE("COCO captions: several captions per image, images/ subdirectory, boxes skipped") {
  const auto dir = test::fresh_dir("captions_coco");
  std::filesystem::create_directories(dir / "images");
  test::write_text(dir / "images/1.jpg", "");  // existence decides the directory; not decoded here
  test::write_text(dir / "captions.json", R"({"images": [{"id": 7, "file_name": "1.jpg"},
      {"id": 9, "file_name": "2.jpg"}, {"id": 11, "file_name": "3.jpg"}],
    "annotations": [{"image_id": 9, "caption": "a dog"}, {"image_id": 7, "caption": "a cat"},
      {"image_id": 9, "caption": "a brown dog"}, {"image_id": 7, "bbox": [0, 0, 1, 1]}]})");
  const train::CaptionDataset d = train::load_coco_captions(dir / "captions.json");
  REQUIRE(d.size() == 3);
  REQUIRE(d.images.size() == 2);  // image 11 has no caption
  CHECK(d.images[0] == dir / "images/1.jpg");
  CHECK(d.samples[0].caption == "a cat");
  CHECK(d.samples[1].caption == "a dog");
  CHECK(d.samples[2].caption == "a brown dog");
  CHECK(d.samples[2].image == dir / "images/2.jpg");
  CHECK(d.captions[1] == std::vector<std::size_t>{1, 2});
  CHECK(d.samples[2].image_index == 1);
  // An explicit image root wins.
  CHECK(train::load_coco_captions(dir / "captions.json", {}, "/data/coco").images[0] == "/data/coco/1.jpg");
  std::filesystem::remove_all(dir);
}

TEST_CASE("JSONL: paths relative to the file, lines of one image grouped") {
  const auto dir = test::fresh_dir("captions_jsonl");
  test::write_text(dir / "c.jsonl", "{\"image\": \"a.png\", \"caption\": \"one\"}\n\n"
                                    "{\"image\": \"b.png\", \"caption\": \"two\"}\r\n"
                                    "{\"image\": \"a.png\", \"caption\": \"three\"}");
  const train::CaptionDataset d = train::load_caption_jsonl(dir / "c.jsonl");
  REQUIRE(d.size() == 3);
  CHECK(d.images.size() == 2);
  CHECK(d.samples[1].caption == "three");
  CHECK(d.samples[1].image == dir / "a.png");
  CHECK(d.samples[2].image_index == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("malformed caption files name the file and the entry") {
  const auto dir = test::fresh_dir("captions_bad");
  auto error_of = [&](const std::string& name, const std::string& text, const train::CaptionLimits& limits = {}) {
    test::write_text(dir / name, text);
    return load_error(dir / name, limits);
  };
  CHECK(error_of("a.json", "{\"images\": [\n{\"id\": 1,, }]}").find("a.json: not valid JSON: parse error at line 2") !=
        std::string::npos);
  CHECK(error_of("b.json", "[]").find("b.json: the top level is array") != std::string::npos);
  CHECK(error_of("c.json", R"({"images": [{"id": 1}]})").find("c.json: images[0]: missing \"file_name\"") !=
        std::string::npos);
  CHECK(error_of("d.json", R"({"images": [{"id": "1", "file_name": "x"}]})")
            .find("images[0]: \"id\" is string, expected an integer") != std::string::npos);
  CHECK(error_of("e.json", R"({"images": [{"id": 1, "file_name": "x"}], "annotations": [{"image_id": 1, "caption": 5}]})")
            .find("e.json: annotations[0]: \"caption\" is number, expected a string") != std::string::npos);
  CHECK(error_of("f.json", R"({"images": [{"id": 1, "file_name": "x"}], "annotations": [{"image_id": 2, "caption": "c"}]})")
            .find("annotations[0]: image_id 2 is not in \"images\"") != std::string::npos);
  CHECK(error_of("g.json", R"({"images": [{"id": 1, "file_name": "x"}, {"id": 1, "file_name": "y"}]})")
            .find("images[1]: image id 1 appears twice") != std::string::npos);
  CHECK(error_of("h.json", R"({"images": [{"id": 1, "file_name": "x"}], "annotations": [{"image_id": 1}]})")
            .find("neither \"caption\" nor \"bbox\"") != std::string::npos);
  CHECK(error_of("i.json", R"({"images": [{"id": 1, "file_name": "x"}]})").find("no captions") != std::string::npos);
  CHECK(error_of("j.jsonl", "{\"image\": \"a\", \"caption\": \"b\"}\n\n{\"image\": \"a\"}\n")
            .find("j.jsonl:3: missing \"caption\"") != std::string::npos);
  CHECK(error_of("k.jsonl", "{\"image\": \"a\", \"caption\": \"b\"}\nnot json\n").find("k.jsonl:2: not valid JSON") !=
        std::string::npos);
  CHECK(error_of("l.jsonl", "[1]\n").find("l.jsonl:1: the line is array") != std::string::npos);
  CHECK(load_error(dir / "missing.json").find("missing.json': no such file") != std::string::npos);
  // Hostile sizes: depth, caption length, file size, sample count.
  CHECK(error_of("m.json", std::string(100000, '[') + std::string(100000, ']')).find("nested deeper than 16") !=
        std::string::npos);
  CHECK(error_of("n.jsonl", "{\"image\": \"a\", \"caption\": \"" + std::string(5000, 'x') + "\"}")
            .find("\"caption\" is 5000 bytes, over the limit of 4096") != std::string::npos);
  train::CaptionLimits small;
  small.max_file_bytes = 10;
  CHECK(error_of("o.jsonl", "{\"image\": \"a\", \"caption\": \"b\"}", small).find("over the limit of 10") !=
        std::string::npos);
  small = {};
  small.max_samples = 1;
  CHECK(error_of("p.jsonl", "{\"image\": \"a\", \"caption\": \"b\"}\n{\"image\": \"a\", \"caption\": \"c\"}", small)
            .find("p.jsonl:2: more than 1 captions") != std::string::npos);
  std::filesystem::remove_all(dir);
}
