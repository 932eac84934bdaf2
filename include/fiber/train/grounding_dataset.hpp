#pragma once
// Grounding data for fine-grained training: images, each with a text prompt and boxes, each box
// with the character spans of the prompt it grounds. Read from COCO-layout JSON in either of the
// official fine-grained forms:
//
//  grounding (MDETR / GLIP "modulated" data; what `fiber data shapes` writes):
//    "images": [{"id", "file_name", "caption", ...}], "annotations": [{"image_id", "bbox": [x, y, w, h],
//    "tokens_positive": [[begin, end], ...], "iscrowd" (optional)}]: the prompt is the caption, a
//    box's spans are its tokens_positive ([begin, end) in code points, Python's str indices).
//  detection (COCO instances): images without "caption": the prompt is the detection prompt of
//    every category, in "categories" order ("cat. dog. traffic light", detection/prompt.hpp) and a
//    box's span is its category's name in it. The official COCO fine-tuning lists the categories
//    in a new random order each time it reads an image (convert_od_to_grounding_simple with
//    DISABLE_SHUFFLE false): the training task does that from `categories` and each box's
//    `category` (fine_grounding_task.hpp).
//
// Crowd boxes (iscrowd 1) are left out, as the official loaders do. Images are kept or left out
// as the official data sets decide it (has_valid_annotation in CocoGrounding and ModulatedDataset):
// an image is left out when it has no annotation with a box, or when every box, crowd boxes
// included, is at most 1 pixel wide or high; an image whose only boxes are crowds stays, without
// boxes (a negative). `images_left_out` counts them. Paths resolve as in caption_dataset.hpp.
// Every problem is a fiber::Error naming the file and the entry; sizes are bounded by CaptionLimits.
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fiber/detection/prompt.hpp"
#include "fiber/train/caption_dataset.hpp"

namespace fiber::train {

struct GroundingBox {
  std::array<double, 4> xywh{};          // as in the file: left, top, width, height in pixels
  std::vector<text::CharSpan> spans;     // the prompt's characters it grounds
  std::int64_t category_id = 0;          // the file's, when it has one (0 otherwise)
  std::int64_t category = -1;            // detection images: its index in GroundingDataset::categories
};

struct GroundingImage {
  std::filesystem::path file;
  std::string prompt;                    // caption, or the detection prompt
  std::vector<GroundingBox> boxes;
  bool detection = false;                // no caption: the prompt lists every category
};

struct GroundingDataset {
  std::vector<GroundingImage> images;
  std::vector<std::string> categories;   // the file's category names, in "categories" order
  std::size_t images_left_out = 0;       // without a box over 1 pixel wide and high (see above)
  std::size_t size() const { return images.size(); }
};

namespace detail {

inline std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// bbox: four finite numbers, width and height not negative.
inline std::array<double, 4> json_bbox(const nlohmann::json& a, const std::string& where) {
  const auto it = a.find("bbox");
  FIBER_CHECK(it != a.end(), where, ": missing \"bbox\"");
  FIBER_CHECK(it->is_array() && it->size() == 4, where, ": \"bbox\" must be [x, y, w, h]");
  std::array<double, 4> b{};
  for (std::size_t k = 0; k < 4; ++k) {
    FIBER_CHECK((*it)[k].is_number(), where, ": \"bbox\"[", k, "] is ", (*it)[k].type_name(), ", expected a number");
    b[k] = (*it)[k].get<double>();
    FIBER_CHECK(std::isfinite(b[k]) && std::abs(b[k]) <= 1e7, where, ": \"bbox\"[", k, "] = ", b[k], " is not a pixel coordinate");
  }
  FIBER_CHECK(b[2] >= 0 && b[3] >= 0, where, ": \"bbox\" has a negative width or height");
  return b;
}

// tokens_positive: [[begin, end], ...] inside a prompt of `length` code points.
inline std::vector<text::CharSpan> json_spans(const nlohmann::json& a, const std::string& where, std::size_t length) {
  const auto it = a.find("tokens_positive");
  FIBER_CHECK(it != a.end(), where, ": missing \"tokens_positive\" (grounding data needs each box's spans)");
  FIBER_CHECK(it->is_array() && !it->empty() && it->size() <= 64, where,
              ": \"tokens_positive\" must be a list of 1 to 64 [begin, end] pairs");
  std::vector<text::CharSpan> out;
  for (std::size_t k = 0; k < it->size(); ++k) {
    const nlohmann::json& s = (*it)[k];
    FIBER_CHECK(s.is_array() && s.size() == 2 && s[0].is_number_integer() && s[1].is_number_integer(), where,
                ": \"tokens_positive\"[", k, "] must be [begin, end] integers");
    const auto b = s[0].get<std::int64_t>(), e = s[1].get<std::int64_t>();
    FIBER_CHECK(b >= 0 && b < e && std::uint64_t(e) <= length, where, ": \"tokens_positive\"[", k, "] = [", b, ", ", e,
                "] is not a span of the ", length, "-character caption");
    out.push_back({std::size_t(b), std::size_t(e)});
  }
  return out;
}

}  // namespace detail

inline GroundingDataset load_grounding_dataset(const std::filesystem::path& json_path, const CaptionLimits& limits = {},
                                               const std::filesystem::path& image_root = {}) {
  const std::string file = excerpt(json_path.string(), 200);
  const nlohmann::json root = detail::read_coco_root(json_path, limits, file);
  const auto images_it = root.find("images");
  FIBER_CHECK(images_it->size() <= limits.max_samples, file, ": more than ", limits.max_samples, " images");
  const std::filesystem::path dir = json_path.parent_path();
  std::filesystem::path base = image_root.empty() ? dir : image_root;

  // Categories, for images without a caption: their detection prompt, built once.
  std::vector<std::string> names;
  std::unordered_map<std::int64_t, std::size_t> category_index;
  if (const auto it = root.find("categories"); it != root.end()) {
    FIBER_CHECK(it->is_array(), file, ": \"categories\" is ", it->type_name(), ", expected an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const std::string where = file + ": categories[" + std::to_string(i) + "]";
      FIBER_CHECK((*it)[i].is_object(), where, " is ", (*it)[i].type_name(), ", expected an object");
      const std::int64_t id = detail::json_integer_field((*it)[i], "id", where);
      FIBER_CHECK(category_index.emplace(id, names.size()).second, where, ": category id ", id, " appears twice");
      names.push_back(detail::json_string_field((*it)[i], "name", where, limits.max_caption_bytes));
    }
  }
  std::optional<detection::Prompt> categories_prompt;

  GroundingDataset d;
  std::unordered_map<std::int64_t, std::size_t> by_id;
  std::vector<bool> captioned;
  for (std::size_t i = 0; i < images_it->size(); ++i) {
    const std::string where = file + ": images[" + std::to_string(i) + "]";
    const nlohmann::json& im = (*images_it)[i];
    FIBER_CHECK(im.is_object(), where, " is ", im.type_name(), ", expected an object");
    const std::int64_t id = detail::json_integer_field(im, "id", where);
    const std::string& name = detail::json_string_field(im, "file_name", where, limits.max_path_bytes);
    if (i == 0 && image_root.empty() && !std::filesystem::exists(dir / name) &&
        std::filesystem::exists(dir / "images" / name))
      base = dir / "images";
    FIBER_CHECK(by_id.emplace(id, d.images.size()).second, where, ": image id ", id, " appears twice");
    GroundingImage g;
    g.file = base / name;
    if (im.contains("caption")) {
      g.prompt = detail::json_string_field(im, "caption", where, limits.max_caption_bytes);
      detection::detail::check_utf8(g.prompt, where + ": \"caption\"");
      captioned.push_back(true);
    } else {
      FIBER_CHECK(!names.empty(), where, ": has no \"caption\" and the file has no \"categories\" to build a detection prompt from");
      if (!categories_prompt) categories_prompt = detection::detection_prompt(names);
      g.prompt = categories_prompt->text;
      g.detection = true;
      captioned.push_back(false);
    }
    d.images.push_back(std::move(g));
  }
  std::vector<bool> has_usable_box(d.images.size(), false);  // a box over 1 pixel wide and high, crowds too
  if (const auto it = root.find("annotations"); it != root.end()) {
    FIBER_CHECK(it->is_array(), file, ": \"annotations\" is ", it->type_name(), ", expected an array");
    FIBER_CHECK(it->size() <= limits.max_samples, file, ": more than ", limits.max_samples, " annotations");
    for (std::size_t k = 0; k < it->size(); ++k) {
      const std::string where = file + ": annotations[" + std::to_string(k) + "]";
      const nlohmann::json& a = (*it)[k];
      FIBER_CHECK(a.is_object(), where, " is ", a.type_name(), ", expected an object");
      if (!a.contains("bbox")) continue;  // a caption annotation (COCO captions), not a box
      const std::int64_t image_id = detail::json_integer_field(a, "image_id", where);
      const auto img = by_id.find(image_id);
      FIBER_CHECK(img != by_id.end(), where, ": image_id ", image_id, " is not in \"images\"");
      GroundingImage& g = d.images[img->second];
      GroundingBox box;
      box.xywh = detail::json_bbox(a, where);
      if (box.xywh[2] > 1 && box.xywh[3] > 1) has_usable_box[img->second] = true;
      if (const auto c = a.find("iscrowd"); c != a.end() && c->is_number_integer() && c->get<std::int64_t>() != 0) continue;
      if (captioned[img->second]) {
        box.spans = detail::json_spans(a, where, detail::code_points(g.prompt));
        if (a.contains("category_id")) box.category_id = detail::json_integer_field(a, "category_id", where);
      } else {
        box.category_id = detail::json_integer_field(a, "category_id", where);
        const auto c = category_index.find(box.category_id);
        FIBER_CHECK(c != category_index.end(), where, ": category_id ", box.category_id, " is not in \"categories\"");
        box.spans = categories_prompt->phrases[c->second].spans;
        box.category = std::int64_t(c->second);
      }
      g.boxes.push_back(std::move(box));
    }
  }
  std::vector<GroundingImage> kept;
  for (std::size_t i = 0; i < d.images.size(); ++i)
    if (has_usable_box[i]) kept.push_back(std::move(d.images[i]));
  d.images_left_out = d.images.size() - kept.size();
  d.images = std::move(kept);
  FIBER_CHECK(!d.images.empty(), file, ": no images", d.images_left_out ? " with a box over 1 pixel wide and high" : "");
  d.categories = std::move(names);
  return d;
}

}  // namespace fiber::train
