#pragma once
// Swin relative-position bias tables resized for another window (another resolution: window =
// image size / 32), as the official swin_adapt_position_encoding does when fine-tuning at 576 from
// a 384 checkpoint: the table [(2a-1)^2, heads] is read as `heads` maps of (2a-1) x (2a-1),
// resized bicubically (align_corners false, A = -0.75, borders clamped: F.interpolate's bicubic)
// to (2b-1) x (2b-1), and flattened back to [(2b-1)^2, heads].
//
//   auto options = model.load_options();  // FiberCoarse's already includes the adapter
//   options.adapt = models::relative_position_table_adapter<float>();
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "fiber/core/error.hpp"
#include "fiber/nn/state_dict.hpp"
#include "fiber/ops/interpolate.hpp"

namespace fiber::models {

// The side 2w - 1 of a table of `rows` = (2w - 1)^2 rows, or 0 when rows is not such a square
// of an odd number.
inline std::int64_t relative_table_side(std::int64_t rows) {
  if (rows <= 0) return 0;
  std::int64_t s = std::int64_t(std::llround(std::sqrt(double(rows))));
  while (s * s > rows) --s;
  while ((s + 1) * (s + 1) <= rows) ++s;
  return s * s == rows && s % 2 == 1 ? s : 0;
}

// table: [(2a-1)^2, heads] -> [(2b-1)^2, heads] with rows = (2b-1)^2.
template <class T>
Tensor<T> resize_relative_position_table(const Tensor<T>& table, std::int64_t rows) {
  FIBER_CHECK(table.dim() == 2, "resize_relative_position_table: expects a [(2w-1)^2, heads] table, got ", table.shape());
  const std::int64_t before = relative_table_side(table.size(0)), after = relative_table_side(rows);
  FIBER_CHECK(before > 0 && after > 0, "resize_relative_position_table: ", table.size(0), " -> ", rows,
              " rows; both must be (2w - 1)^2 for a window w");
  const std::int64_t heads = table.size(1);
  // [rows, heads] -> [1, heads, before, before]
  const Tensor<T> maps = table.transpose(0, 1).contiguous().reshape({1, heads, before, before});
  const Tensor<T> resized = interpolate(maps, {.size = {after, after}, .mode = InterpolateMode::bicubic});
  // [1, heads, after, after] -> [after, after, heads] -> [after^2, heads]
  return resized.reshape({heads, after * after}).transpose(0, 1).contiguous();
}

// A ShapeAdapter for nn::load_state_dict: resizes `*relative_position_bias_table` entries whose
// row count differs (same number of heads); anything else stays a reported mismatch.
template <class T>
nn::ShapeAdapter<T> relative_position_table_adapter() {
  return [](const std::string& key, const Tensor<T>& stored, const Shape& expected) -> std::optional<Tensor<T>> {
    if (!key.ends_with("relative_position_bias_table")) return std::nullopt;
    if (stored.dim() != 2 || expected.size() != 2 || stored.size(1) != expected[1]) return std::nullopt;
    if (relative_table_side(stored.size(0)) == 0 || relative_table_side(expected[0]) == 0) return std::nullopt;
    return resize_relative_position_table(stored, expected[0]);
  };
}

}  // namespace fiber::models
