#pragma once
// Which compiled coarse configuration a weight file holds, for programs (like the `fiber` command)
// that take any FIBER coarse checkpoint: the width from the patch embedding, the resolution from
// the relative-position table (window = image size / 32).
#include <cstdint>
#include <string>

#include "fiber/core/error.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/models/coarse_config.hpp"

namespace fiber::models {

// The Swin width (patch embedding channels) and window (from the (2w - 1)^2 rows of the first
// relative-position table) of `checkpoint`; `what` names the model in the error when the keys are
// absent ("a FIBER coarse checkpoint").
struct SwinGeometry {
  std::int64_t width = 0, window = 0;
};
inline SwinGeometry swin_geometry(const io::Checkpoint& checkpoint, const std::string& embed_key,
                                  const std::string& table_key, const std::string& what) {
  FIBER_CHECK(checkpoint.contains(embed_key) && checkpoint.contains(table_key), checkpoint.file(), ": not ", what,
              " (no '", embed_key, "' or '", table_key, "'; `fiber inspect` lists its tensors)");
  const auto& embed = checkpoint.info(embed_key).shape;
  const auto& table = checkpoint.info(table_key).shape;
  FIBER_CHECK(embed.size() == 4 && table.size() == 2, checkpoint.file(), ": '", embed_key, "' or '", table_key,
              "' has an unexpected rank");
  const std::int64_t rows = table[0];
  std::int64_t window = 1;
  while ((2 * window - 1) * (2 * window - 1) < rows) ++window;
  FIBER_CHECK((2 * window - 1) * (2 * window - 1) == rows, checkpoint.file(), ": relative-position table of ", rows,
              " rows is not (2w - 1)^2 for any window w");
  return {embed[0], window};
}

// Calls f.template operator()<C>() for the configuration matching `checkpoint`'s shapes:
// FiberBaseCoarse384, FiberBaseCoarse576 or FiberTinyCoarse. Anything else is an error naming
// what was found.
template <class F>
decltype(auto) with_coarse_config(const io::Checkpoint& checkpoint, F&& f) {
  const SwinGeometry g = swin_geometry(checkpoint, "vit_model.patch_embed.proj.weight",
                                             "vit_model.layers.0.blocks.0.attn.relative_position_bias_table",
                                             "a FIBER coarse checkpoint");
  auto matches = [&](const FiberCoarseConfig& c) { return c.swin.embed_dim == g.width && c.swin.window() == g.window; };
  if (matches(FiberBaseCoarse384)) return f.template operator()<FiberBaseCoarse384>();
  if (matches(FiberBaseCoarse576)) return f.template operator()<FiberBaseCoarse576>();
  if (matches(FiberTinyCoarse)) return f.template operator()<FiberTinyCoarse>();
  fail(checkpoint.file(), ": a coarse model of width ", g.width, " and window ", g.window, " (image ", g.window * 32,
       "); this build knows FIBER-B at 384 (128, 12) and 576 (128, 18), and the tiny test model (8, 4)");
}

}  // namespace fiber::models
