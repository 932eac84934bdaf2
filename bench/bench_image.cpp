// Resizing and model preprocessing against Pillow / torchvision on the same images.
//
//   /root/.cache/fiber-ref-venv/bin/python bench/bench_image_pillow.py > pillow.json
//   build/bench/bench_image pillow.json
//
// Without the JSON file only fiber's times are printed. The images are synthetic, computed
// from the same formula here and in bench_image_pillow.py (source_image). Pillow resizes on
// one thread and the Python script pins torch to one thread too, so the ratios compare fiber
// on one thread (which runs on the calling thread); the last time column is fiber on the
// pool's default thread count. Each one-thread figure is given twice: the calling thread's CPU
// time, which a busy shared machine barely changes, and wall time, which includes waiting for
// a core; "ref/fiber" is Pillow's or torchvision's time divided by fiber's (higher: fiber faster).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"

namespace io = fiber::io;

namespace {

// Must match source_image() in bench_image_pillow.py: gradients with a moire pattern, so that
// neighbouring pixels differ and every value range is used.
io::Image source_image(int width, int height) {
  io::Image image(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        image.at(x, y, c) = std::uint8_t((3 * x + 5 * y + 85 * c + ((x * y) >> 5)) & 255);
  return image;
}

template <class T>
std::uint32_t crc32_of(const std::vector<T>& values) {
  return std::uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(values.data()), uInt(values.size() * sizeof(T))));
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

struct Timing {
  double cpu, wall;  // medians, seconds
};

// As fiber::bench::median_seconds (7 runs after 2 warm-ups), for CPU and wall time at once.
template <class F>
Timing median_times(F&& f, int repeats = 7, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> cpu, wall;
  for (int i = 0; i < repeats; ++i) {
    const double c = thread_cpu_seconds();
    const auto w = std::chrono::steady_clock::now();
    f();
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - w).count());
    cpu.push_back(thread_cpu_seconds() - c);
  }
  std::sort(cpu.begin(), cpu.end());
  std::sort(wall.begin(), wall.end());
  return {cpu[cpu.size() / 2], wall[wall.size() / 2]};
}

struct Case {
  std::string name;  // the key in bench_image_pillow.py's JSON
  std::function<void()> run;
  std::function<std::uint32_t()> output_crc;  // of the last run's output, to compare with the reference's
};

}  // namespace

int main(int argc, char** argv) {
  nlohmann::json reference;
  if (argc > 1) {
    std::ifstream in(argv[1]);
    if (!in) {
      std::fprintf(stderr, "bench_image: cannot open %s\n", argv[1]);
      return 1;
    }
    reference = nlohmann::json::parse(in);
  }
  const int default_threads = fiber::num_threads();
  std::printf("CPU: %s, fiber threads: 1 and %d\n", fiber::bench::cpu_name().c_str(), default_threads);
  if (!reference.is_null())
    std::printf("reference: Pillow %s, torch %s, torchvision %s (one thread)\n",
                reference["versions"]["pillow"].get<std::string>().c_str(),
                reference["versions"]["torch"].get<std::string>().c_str(),
                reference["versions"]["torchvision"].get<std::string>().c_str());
  std::printf("medians of 7 runs after 2 warm-ups\n\n");

  const io::Image hd = source_image(1920, 1080);
  const io::Image vga = source_image(640, 480);
  io::Image resized;
  io::FloatImage input;
  auto resized_crc = [&] { return crc32_of(resized.pixels); };
  auto input_crc = [&] { return crc32_of(input.data); };
  const std::vector<Case> cases = {
      {"resize 1920x1080 -> 384x384 bicubic", [&] { resized = io::resize(hd, 384, 384, io::ResizeFilter::bicubic); },
       resized_crc},
      {"resize 640x480 -> 1066x800 bilinear", [&] { resized = io::resize(vga, 1066, 800, io::ResizeFilter::bilinear); },
       resized_crc},
      {"resize 1920x1080 -> 1422x800 bilinear", [&] { resized = io::resize(hd, 1422, 800, io::ResizeFilter::bilinear); },
       resized_crc},
      {"coarse 1920x1080 -> [3, 384, 384]", [&] { input = io::preprocess_coarse(hd, 384); }, input_crc},
      {"fine-grained 640x480 -> [3, 800, 1088]", [&] { input = io::preprocess_fine_grained(vga, 800, 1333).image; },
       input_crc},
      {"fine-grained 1920x1080 -> [3, 800, 1440]", [&] { input = io::preprocess_fine_grained(hd, 800, 1333).image; },
       input_crc},
  };
  if (!reference.is_null()) {
    const bool same = reference["source_crc32"]["1920x1080"] == crc32_of(hd.pixels) &&
                      reference["source_crc32"]["640x480"] == crc32_of(vga.pixels);
    std::printf("source images identical to the reference's: %s\n\n", same ? "yes" : "NO");
  }

  std::printf("%-40s %17s %17s %15s %9s %s\n", "", "fiber 1 thread", "reference", "ref/fiber",
              ("fiber " + std::to_string(default_threads) + "t").c_str(), "output");
  std::printf("%-40s %8s %8s %8s %8s %7s %7s %9s\n", "case", "cpu ms", "wall ms", "cpu ms", "wall ms", "cpu",
              "wall", "wall ms");
  for (const Case& c : cases) {
    fiber::set_num_threads(1);
    const Timing one = median_times(c.run);
    fiber::set_num_threads(default_threads);
    const double many = fiber::bench::median_seconds(c.run);
    std::printf("%-40s %8.2f %8.2f", c.name.c_str(), one.cpu * 1e3, one.wall * 1e3);
    const nlohmann::json* ref = nullptr;
    if (reference.contains("cases") && reference["cases"].contains(c.name)) ref = &reference["cases"][c.name];
    if (ref) {
      const double cpu = (*ref)["cpu_seconds"].get<double>(), wall = (*ref)["wall_seconds"].get<double>();
      std::printf(" %8.2f %8.2f %6.1fx %6.1fx", cpu * 1e3, wall * 1e3, cpu / one.cpu, wall / one.wall);
    } else {
      std::printf(" %8s %8s %7s %7s", "-", "-", "-", "-");
    }
    // "same": fiber's output bytes have the reference's CRC-32 (Pillow-exact, bit for bit).
    const char* output = !ref ? "-" : (*ref)["crc32"] == c.output_crc() ? "same" : "DIFFERENT";
    std::printf(" %9.2f %s\n", many * 1e3, output);
  }
}
