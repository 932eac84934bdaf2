#pragma once
// The shapes world on disk: a captioned, box-annotated data set written from a seed, for
// end-to-end learning tests and tiny pre-training runs. write_shapes_world(dir, options) writes
//   DIR/images/train_000000.png ...  DIR/images/val_000000.png ...   (RGB PNG, size x size)
//   DIR/train.json  DIR/val.json     COCO layout with captions and MDETR-style grounding:
//     {"info": {...},
//      "images": [{"id": 0, "file_name": "images/train_000000.png", "width": 64, "height": 64,
//                  "caption": "a small red circle left of a large blue square"}, ...],
//      "annotations": [{"id": 1, "image_id": 0, "bbox": [x, y, w, h], "area": w*h, "iscrowd": 0,
//                       "category_id": 1, "tokens_positive": [[0, 18]], "phrase": "a small red circle",
//                       "colour": "red", "size": "small"}, ...],
//      "categories": [{"id": 1, "name": "circle"}, ...]}
//     file_name is relative to the JSON's directory; tokens_positive are [begin, end) character
//     spans of the phrase in the image's caption. caption_dataset.hpp reads images[].caption.
//   DIR/train.jsonl  DIR/val.jsonl   one {"image": "images/train_000000.png", "caption": "..."} a line
//   DIR/vocab.json  DIR/merges.txt   the world's tokenizer (shapes_vocab.hpp), the same for every seed
// Same options, same bytes. Scene i of a split does not depend on how many scenes are written.
// A val scene whose caption a train scene or an earlier val scene already has is drawn again (up
// to 63 times), so val captions are unseen in training and each names one val image (retrieval
// on val has one right answer) while the caption space allows it; the summary counts those left.
// The space: about 9,000 two-shape captions (10,000 train scenes hold about 6,000 distinct ones),
// far more with three shapes.
//
// The tokenizer files and the JSON files are written atomically (io::AtomicFile), the JSON files
// last: a directory with val.json in it is complete. Images are written without fsync (thousands
// of small files).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/atomic_file.hpp"
#include "fiber/io/png.hpp"
#include "fiber/train/shapes_scene.hpp"
#include "fiber/train/shapes_vocab.hpp"

namespace fiber::train {

struct ShapesWorldOptions {
  static constexpr std::int64_t max_images = 10'000'000;  // per split; image names have 6+ digits
  std::int64_t train = 1000;
  std::int64_t val = 100;
  std::uint64_t seed = 0;
  int size = 64;          // image side in pixels, [32, 1024]
  int min_shapes = 2;     // shapes per scene, uniform in [min_shapes, max_shapes] within [1, 3]
  int max_shapes = 2;
  bool antialias = false;
  bool overwrite = false;  // write into a directory that is not empty (files of the same names are replaced)
};

struct ShapesWorldSummary {
  std::int64_t train = 0, val = 0;
  std::int64_t val_captions_seen_in_train = 0;  // val scenes whose caption is also a train caption
  std::int64_t val_captions_repeated = 0;       // val scenes whose caption an earlier val scene has
};

enum class ShapesSplit { train = 0, val = 1 };

inline void check_shapes_world_options(const ShapesWorldOptions& o) {
  FIBER_CHECK(o.train >= 0 && o.train <= ShapesWorldOptions::max_images, "shapes world: train count ", o.train,
              " is outside [0, ", ShapesWorldOptions::max_images, "]");
  FIBER_CHECK(o.val >= 0 && o.val <= ShapesWorldOptions::max_images, "shapes world: val count ", o.val,
              " is outside [0, ", ShapesWorldOptions::max_images, "]");
  FIBER_CHECK(o.train + o.val >= 1, "shapes world: nothing to write (train and val are both 0)");
  check_scene_options({o.size, o.min_shapes, o.max_shapes});
}

// Scene `index` of a split; `attempt` > 0 draws a different scene for the same place.
inline Scene shapes_world_scene(const ShapesWorldOptions& o, ShapesSplit split, std::int64_t index, int attempt = 0) {
  FIBER_CHECK(index >= 0 && index < (std::int64_t(1) << 34) && attempt >= 0 && attempt < 64,
              "shapes_world_scene: index ", index, " or attempt ", attempt, " out of range");
  const std::uint64_t stream = (std::uint64_t(split) << 40) | (std::uint64_t(index) << 6) | std::uint64_t(attempt);
  return generate_scene({o.size, o.min_shapes, o.max_shapes}, o.seed, stream);
}

namespace detail {

inline std::string shapes_image_name(ShapesSplit split, std::int64_t index) {
  char name[48];
  std::snprintf(name, sizeof name, "images/%s_%06lld.png", split == ShapesSplit::train ? "train" : "val",
                static_cast<long long>(index));
  return name;
}

// A plain write (no fsync) of a new or replaced file; O_NOFOLLOW so a planted link is refused.
inline void write_plain_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) fail(excerpt(path.string(), 200), ": cannot create: ", std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ::ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      fail(excerpt(path.string(), 200), ": write failed: ", n < 0 ? std::strerror(e) : "no progress");
    }
    done += std::size_t(n);
  }
  if (::close(fd) != 0) fail(excerpt(path.string(), 200), ": close failed: ", std::strerror(errno));
}

inline void write_atomic_text(const std::filesystem::path& path, const std::string& text) {
  io::AtomicFile file(path);
  file.write(std::as_bytes(std::span(text.data(), text.size())));
  file.commit();
}

// COCO JSON (see the top of this file) and JSONL of one split's scenes.
inline void write_shapes_split(const std::filesystem::path& dir, const ShapesWorldOptions& o, ShapesSplit split,
                               const std::vector<Scene>& scenes) {
  const std::string name = split == ShapesSplit::train ? "train" : "val";
  nlohmann::ordered_json coco = nlohmann::ordered_json::object();
  coco["info"] = {{"description", "fiber shapes world"}, {"version", 1},         {"split", name},
                  {"seed", o.seed},                      {"image_size", o.size}, {"vocab_size", shapes_world_vocab_size}};
  nlohmann::ordered_json images = nlohmann::ordered_json::array(), annotations = nlohmann::ordered_json::array();
  std::string jsonl;
  std::int64_t annotation_id = 1;
  for (std::size_t i = 0; i < scenes.size(); ++i) {
    const Scene& scene = scenes[i];
    const std::string file = shapes_image_name(split, std::int64_t(i));
    images.push_back({{"id", i}, {"file_name", file}, {"width", scene.image_size}, {"height", scene.image_size},
                      {"caption", scene.caption}});
    for (const ScenePhrase& p : scene.phrases) {
      const SceneShape& s = scene.shapes[p.shape];
      annotations.push_back({{"id", annotation_id++},
                             {"image_id", i},
                             {"bbox", {s.box.x, s.box.y, s.box.w, s.box.h}},
                             {"area", s.box.w * s.box.h},
                             {"iscrowd", 0},
                             {"category_id", s.kind + 1},
                             {"tokens_positive", {{p.begin, p.end}}},
                             {"phrase", scene.caption.substr(p.begin, p.end - p.begin)},
                             {"colour", shape_colours[s.colour].name},
                             {"size", shape_size_names[s.size]}});
    }
    jsonl += nlohmann::ordered_json({{"image", file}, {"caption", scene.caption}}).dump() + "\n";
  }
  nlohmann::ordered_json categories = nlohmann::ordered_json::array();
  for (std::size_t k = 0; k < shape_kind_names.size(); ++k)
    categories.push_back({{"id", k + 1}, {"name", shape_kind_names[k]}});
  coco["images"] = std::move(images);
  coco["annotations"] = std::move(annotations);
  coco["categories"] = std::move(categories);
  write_atomic_text(dir / (name + ".jsonl"), jsonl);
  write_atomic_text(dir / (name + ".json"), coco.dump() + "\n");
}

}  // namespace detail

// Writes the data set (layout at the top of this file) into `dir`, made if missing. A directory
// that holds anything already is refused unless options.overwrite.
inline ShapesWorldSummary write_shapes_world(const std::filesystem::path& dir, const ShapesWorldOptions& o) {
  check_shapes_world_options(o);
  const std::string shown = excerpt(dir.string(), 200);
  FIBER_CHECK(!dir.empty(), "shapes world: the output directory is empty");
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    FIBER_CHECK(std::filesystem::is_directory(dir, ec), "shapes world: '", shown, "' exists and is not a directory");
    FIBER_CHECK(o.overwrite || std::filesystem::is_empty(dir, ec), "shapes world: '", shown,
                "' is not empty; choose a new directory or overwrite (fiber data shapes --force)");
  }
  std::filesystem::create_directories(dir / "images", ec);
  FIBER_CHECK(!ec, "shapes world: cannot create '", excerpt((dir / "images").string(), 200), "': ", ec.message());

  const ShapesVocab vocab = build_shapes_vocab();
  detail::write_atomic_text(dir / "vocab.json", vocab.vocab_json());
  detail::write_atomic_text(dir / "merges.txt", vocab.merges_txt());

  ShapesWorldSummary summary;
  std::unordered_set<std::string> train_captions, val_captions;
  for (ShapesSplit split : {ShapesSplit::train, ShapesSplit::val}) {
    const std::int64_t count = split == ShapesSplit::train ? o.train : o.val;
    std::vector<Scene> scenes;
    scenes.reserve(std::size_t(count));
    for (std::int64_t i = 0; i < count; ++i) {
      Scene scene = shapes_world_scene(o, split, i);
      if (split == ShapesSplit::val) {
        auto taken = [&](const std::string& c) { return train_captions.count(c) || val_captions.count(c); };
        for (int attempt = 1; attempt < 64 && taken(scene.caption); ++attempt)
          scene = shapes_world_scene(o, split, i, attempt);
        summary.val_captions_seen_in_train += std::int64_t(train_captions.count(scene.caption));
        summary.val_captions_repeated += std::int64_t(val_captions.count(scene.caption));
        val_captions.insert(scene.caption);
      } else {
        train_captions.insert(scene.caption);
      }
      const std::vector<std::uint8_t> png = io::encode_png(render_scene(scene, o.antialias));
      detail::write_plain_file(dir / detail::shapes_image_name(split, i), png);
      scenes.push_back(std::move(scene));
    }
    detail::write_shapes_split(dir, o, split, scenes);
  }
  summary.train = o.train;
  summary.val = o.val;
  return summary;
}

}  // namespace fiber::train
