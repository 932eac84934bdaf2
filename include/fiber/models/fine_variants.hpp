#pragma once
// Which compiled fine-grained configuration a weight file holds, for programs (like the `fiber`
// command) that take any fine-grained FIBER checkpoint: the Swin width from the patch embedding,
// the window from the relative-position table, v2 or v3 from the presence of norm_i2t_i.
#include <cstdint>
#include <string>

#include "fiber/core/error.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/models/coarse_variants.hpp"
#include "fiber/models/fine_config.hpp"

namespace fiber::models {

// Calls f.template operator()<C>() for the configuration matching `checkpoint`: FiberBaseFine,
// FiberBaseFineV3, FiberTinyFine, FiberTinyFineV3 or FiberDemoFine (v2). Anything else is an error naming what was found.
template <class F>
decltype(auto) with_fine_config(const io::Checkpoint& checkpoint, F&& f) {
  const std::string body = "fusion_backbone.backbone.body.";
  const SwinGeometry g = swin_geometry(checkpoint, body + "patch_embed.proj.weight",
                                             body + "layers.0.blocks.0.attn.relative_position_bias_table",
                                             "a fine-grained FIBER checkpoint");
  auto matches = [&](const FiberFineConfig& c) {
    const std::string norm = body + "layers.2.blocks." + std::to_string(c.first_fused_block()) + ".attn.norm_i2t_i.weight";
    return c.swin.embed_dim == g.width && c.window == g.window && checkpoint.contains(norm) == c.i2t_query_norm;
  };
  if (matches(FiberBaseFine)) return f.template operator()<FiberBaseFine>();
  if (matches(FiberBaseFineV3)) return f.template operator()<FiberBaseFineV3>();
  if (matches(FiberTinyFine)) return f.template operator()<FiberTinyFine>();
  if (matches(FiberTinyFineV3)) return f.template operator()<FiberTinyFineV3>();
  if (matches(FiberDemoFine)) return f.template operator()<FiberDemoFine>();
  fail(checkpoint.file(), ": a fine-grained model of Swin width ", g.width, " and window ", g.window,
       "; this build knows FIBER-B (128, window 12) and the tiny test model (8, window 7), fusion v2 and v3, and the "
       "demo model (32, window 2, v2)");
}

}  // namespace fiber::models
