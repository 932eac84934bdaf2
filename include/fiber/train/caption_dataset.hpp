#pragma once
// Image-caption data sets: (image path, caption) samples grouped by image (COCO has five
// captions per image; contrastive training must not treat them as negatives of each other).
//
// Two formats:
//  COCO captions JSON (load_coco_captions): {"images": [{"id": int, "file_name": str,
//    "caption": str (optional)}, ...], "annotations": [{"image_id": int, "caption": str}, ...]}.
//    An image's captions are its own "caption" (the shapes world's layout) and then every
//    annotation with a "caption", in file order. Annotations with a "bbox" and no "caption"
//    (grounding boxes) are skipped; other fields are ignored. Images without a caption are left
//    out. Paths: file_name is resolved against image_root when one is given, else against the
//    JSON's directory; but when the first image is not found there and is found in DIR/images/,
//    every file_name is resolved against DIR/images/ (COCO keeps images beside the JSON or in a
//    subdirectory).
//  JSONL (load_caption_jsonl): one {"image": str, "caption": str} per line, paths relative to the
//    file's directory; blank lines are skipped. Lines naming the same image form one group.
// load_caption_dataset picks the format by extension (.jsonl: JSONL, else COCO).
//
// Untrusted input: every problem is a fiber::Error naming the file and the line or the entry
// (`train.json: annotations[12]: "caption" is a number, expected a string`); sizes are bounded
// by CaptionLimits (file bytes, samples, caption and path lengths, JSON nesting depth).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/core/read_file.hpp"

namespace fiber::train {

struct CaptionLimits {
  std::size_t max_file_bytes = std::size_t(1) << 30;  // 1 GiB of JSON (COCO train: 90 MB)
  std::size_t max_samples = 20'000'000;
  std::size_t max_caption_bytes = 4096;
  std::size_t max_path_bytes = 4096;
  int max_depth = 16;  // JSON nesting (COCO needs 4)
};

struct CaptionSample {
  std::filesystem::path image;
  std::string caption;
  std::size_t image_index = 0;  // into CaptionDataset::images
};

struct CaptionDataset {
  std::vector<CaptionSample> samples;               // grouped: one image's captions are adjacent
  std::vector<std::filesystem::path> images;        // distinct images, in first-seen order
  std::vector<std::vector<std::size_t>> captions;   // per image: its samples' indices
  std::size_t size() const { return samples.size(); }
};

namespace detail {

// The whole file as text, refused when over the limit before it is read.
inline std::string read_caption_file(const std::filesystem::path& path, const CaptionLimits& limits) {
  const std::string where = "caption file '" + excerpt(path.string(), 200) + "'";
  {
    fiber::detail::RegularFile f = fiber::detail::open_regular_file(path, where);
    FIBER_CHECK(f.size <= limits.max_file_bytes, where, ": ", f.size, " bytes is over the limit of ",
                limits.max_file_bytes, " (CaptionLimits::max_file_bytes)");
  }
  return fiber::detail::read_whole_file<std::string>(path, "caption file");
}

// Parses JSON; errors carry nlohmann's line and column, and nesting deeper than the limit is
// refused while parsing (a deep document would recurse when destroyed).
inline nlohmann::json parse_caption_json(std::string_view text, const std::string& where, int max_depth) {
  try {
    return nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      FIBER_CHECK(depth <= max_depth, where, ": JSON nested deeper than ", max_depth, " levels");
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    std::string message = e.what();
    if (const auto p = message.find("] "); p != std::string::npos) message = message.substr(p + 2);
    fail(where, ": not valid JSON: ", message);
  }
}

// A COCO file's top level, read within the limits: an object with an "images" array (errors name
// `file`, the path as it is shown).
inline nlohmann::json read_coco_root(const std::filesystem::path& json_path, const CaptionLimits& limits,
                                     const std::string& file) {
  const std::string text = read_caption_file(json_path, limits);
  nlohmann::json root = parse_caption_json(text, file, limits.max_depth);
  FIBER_CHECK(root.is_object(), file, ": the top level is ", root.type_name(), ", expected a COCO object");
  const auto images_it = root.find("images");
  FIBER_CHECK(images_it != root.end() && images_it->is_array(), file, ": expected an \"images\" array");
  return root;
}

inline const char* json_type_name(const nlohmann::json& v) { return v.type_name(); }

// The string field `key` of object `v`; `where` names the entry.
inline const std::string& json_string_field(const nlohmann::json& v, const char* key, const std::string& where,
                                            std::size_t max_bytes) {
  const auto it = v.find(key);
  FIBER_CHECK(it != v.end(), where, ": missing \"", key, "\"");
  FIBER_CHECK(it->is_string(), where, ": \"", key, "\" is ", json_type_name(*it), ", expected a string");
  const std::string& s = it->get_ref<const std::string&>();
  FIBER_CHECK(!s.empty(), where, ": \"", key, "\" is empty");
  FIBER_CHECK(s.size() <= max_bytes, where, ": \"", key, "\" is ", s.size(), " bytes, over the limit of ", max_bytes);
  FIBER_CHECK(s.find('\0') == std::string::npos, where, ": \"", key, "\" contains a NUL character");
  return s;
}

inline std::int64_t json_integer_field(const nlohmann::json& v, const char* key, const std::string& where) {
  const auto it = v.find(key);
  FIBER_CHECK(it != v.end(), where, ": missing \"", key, "\"");
  FIBER_CHECK(it->is_number_integer(), where, ": \"", key, "\" is ", json_type_name(*it), ", expected an integer");
  FIBER_CHECK(!it->is_number_unsigned() || it->get<std::uint64_t>() <= std::uint64_t(INT64_MAX), where, ": \"", key,
              "\" is over 2^63 - 1");
  return it->get<std::int64_t>();
}

// Builds the grouped data set from per-image caption lists.
inline CaptionDataset group_captions(std::vector<std::pair<std::filesystem::path, std::vector<std::string>>> images) {
  CaptionDataset d;
  for (auto& [path, captions] : images) {
    if (captions.empty()) continue;
    const std::size_t index = d.images.size();
    d.images.push_back(path);
    d.captions.emplace_back();
    for (auto& c : captions) {
      d.captions.back().push_back(d.samples.size());
      d.samples.push_back({path, std::move(c), index});
    }
  }
  return d;
}

}  // namespace detail

inline CaptionDataset load_coco_captions(const std::filesystem::path& json_path, const CaptionLimits& limits = {},
                                         const std::filesystem::path& image_root = {}) {
  const std::string file = excerpt(json_path.string(), 200);
  const nlohmann::json root = detail::read_coco_root(json_path, limits, file);
  const nlohmann::json& images = root.at("images");

  const std::filesystem::path dir = json_path.parent_path();
  std::filesystem::path base = image_root.empty() ? dir : image_root;
  std::vector<std::pair<std::filesystem::path, std::vector<std::string>>> entries;
  std::unordered_map<std::int64_t, std::size_t> by_id;
  std::size_t samples = 0;
  auto count_sample = [&](const std::string& where) {
    FIBER_CHECK(++samples <= limits.max_samples, where, ": more than ", limits.max_samples,
                " captions (CaptionLimits::max_samples)");
  };
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::string where = file + ": images[" + std::to_string(i) + "]";
    const nlohmann::json& im = images[i];
    FIBER_CHECK(im.is_object(), where, " is ", im.type_name(), ", expected an object");
    const std::int64_t id = detail::json_integer_field(im, "id", where);
    const std::string& name = detail::json_string_field(im, "file_name", where, limits.max_path_bytes);
    if (i == 0 && image_root.empty() && !std::filesystem::exists(dir / name) &&
        std::filesystem::exists(dir / "images" / name))
      base = dir / "images";
    FIBER_CHECK(by_id.emplace(id, entries.size()).second, where, ": image id ", id, " appears twice");
    entries.push_back({base / name, {}});
    if (im.contains("caption")) {
      count_sample(where);
      entries.back().second.push_back(detail::json_string_field(im, "caption", where, limits.max_caption_bytes));
    }
  }
  if (const auto it = root.find("annotations"); it != root.end()) {
    FIBER_CHECK(it->is_array(), file, ": \"annotations\" is ", it->type_name(), ", expected an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const std::string where = file + ": annotations[" + std::to_string(i) + "]";
      const nlohmann::json& a = (*it)[i];
      FIBER_CHECK(a.is_object(), where, " is ", a.type_name(), ", expected an object");
      const std::int64_t image_id = detail::json_integer_field(a, "image_id", where);
      if (!a.contains("caption")) {
        FIBER_CHECK(a.contains("bbox"), where, ": has neither \"caption\" nor \"bbox\"");
        continue;  // a grounding box: not a caption
      }
      const auto image = by_id.find(image_id);
      FIBER_CHECK(image != by_id.end(), where, ": image_id ", image_id, " is not in \"images\"");
      count_sample(where);
      entries[image->second].second.push_back(
          detail::json_string_field(a, "caption", where, limits.max_caption_bytes));
    }
  }
  CaptionDataset d = detail::group_captions(std::move(entries));
  FIBER_CHECK(!d.samples.empty(), file, ": no captions (expected images[].caption or annotations[].caption)");
  return d;
}

inline CaptionDataset load_caption_jsonl(const std::filesystem::path& path, const CaptionLimits& limits = {}) {
  const std::string file = excerpt(path.string(), 200);
  const std::string text = detail::read_caption_file(path, limits);
  const std::filesystem::path dir = path.parent_path();
  std::vector<std::pair<std::filesystem::path, std::vector<std::string>>> entries;
  std::unordered_map<std::string, std::size_t> by_path;
  std::size_t samples = 0, line_no = 0;
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    const std::string where = file + ":" + std::to_string(++line_no);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const nlohmann::json v = detail::parse_caption_json(line, where, limits.max_depth);
    FIBER_CHECK(v.is_object(), where, ": the line is ", v.type_name(), ", expected an object {\"image\", \"caption\"}");
    const std::filesystem::path image = dir / detail::json_string_field(v, "image", where, limits.max_path_bytes);
    const std::string& caption = detail::json_string_field(v, "caption", where, limits.max_caption_bytes);
    FIBER_CHECK(++samples <= limits.max_samples, where, ": more than ", limits.max_samples,
                " captions (CaptionLimits::max_samples)");
    const auto [it, added] = by_path.emplace(image.string(), entries.size());
    if (added) entries.push_back({image, {}});
    entries[it->second].second.push_back(caption);
  }
  CaptionDataset d = detail::group_captions(std::move(entries));
  FIBER_CHECK(!d.samples.empty(), file, ": no captions (expected one {\"image\", \"caption\"} object a line)");
  return d;
}

inline CaptionDataset load_caption_dataset(const std::filesystem::path& path, const CaptionLimits& limits = {}) {
  return path.extension() == ".jsonl" ? load_caption_jsonl(path, limits) : load_coco_captions(path, limits);
}

}  // namespace fiber::train
