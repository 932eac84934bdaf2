#pragma once
// fiber resize IN OUT.png --width W --height H [--filter bicubic|bilinear]
// Decodes a PNG or JPEG as Pillow's Image.open(p).convert("RGB") does, resizes it as Pillow's
// Image.resize does (bit for bit) and writes an 8-bit RGB PNG.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "fiber/core/printable.hpp"
#include "fiber/io/atomic_file.hpp"
#include "fiber/io/image_decode.hpp"
#include "fiber/io/png.hpp"
#include "fiber/io/resize.hpp"

namespace fiber::cli {

void add_resize_command(CLI::App& app, CommandList& commands) {
  struct Options {
    std::string input, output, filter = "bicubic";
    int width = 0, height = 0;
  };
  auto options = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "resize", "Resize a PNG or JPEG exactly as Pillow's Image.resize does and write it as a PNG");
  sub->add_option("input", options->input, "Input image (PNG or JPEG, any mode; converted to RGB)")->required();
  sub->add_option("output", options->output, "Output file (.png, 8-bit RGB)")->required();
  sub->add_option("--width", options->width, "Output width in pixels")->required()->check(CLI::Range(1, 1 << 30));
  sub->add_option("--height", options->height, "Output height in pixels")->required()->check(CLI::Range(1, 1 << 30));
  sub->add_option("--filter", options->filter, "Resampling filter (Pillow's, antialiased when downscaling)")
      ->check(CLI::IsMember({"bicubic", "bilinear"}))
      ->capture_default_str();
  commands.add(sub, [options] {
    std::string extension = std::filesystem::path(options->output).extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
    FIBER_CHECK(extension == ".png", "resize: output '", excerpt(options->output, 200),
                "' must be a .png file (the output is always written as PNG)");
    io::check_output_path(options->output, "resize: output");  // before the decoding and resizing
    const io::Image image = io::read_image(options->input);
    const io::ResizeFilter filter = io::parse_resize_filter(options->filter);
    const io::Image resized = io::resize(image, options->width, options->height, filter);
    io::write_png(resized, options->output);
    std::printf("%s: %dx%d -> %s: %dx%d (%s)\n", options->input.c_str(), image.width, image.height,
                options->output.c_str(), resized.width, resized.height, options->filter.c_str());
    return 0;
  });
}

}  // namespace fiber::cli
