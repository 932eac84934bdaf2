// FIBER-B fine-grained grounding on the CPU: frames per second of Grounder::ground at two frame
// sizes, where the time of one frame goes, and how many tensor allocations a repeated frame takes
// from the system (the Grounder's pool should serve them all). The official model under PyTorch
// is bench_ground_torch.py, run on the same threads.
//
//   frame 640 x 480   -> resized to 1066 x 800, padded to 1088 x 800
//   frame 1333 x 800  -> unchanged, padded to 1344 x 800
// Each frame: preprocessing, the fused backbone (image part; the text below the fusion point runs
// once per prompt, timed apart), FPN, DyHead (6 DyConv blocks of 3 modulated deformable convs),
// grounding logits, post-processing. Random weights (FPN and head by the official init, the
// backbone N(0, 0.02)); a 12-token prompt padded to 256.
//
//   build-bench/bench/bench_ground --threads 2 --repeats 3
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"

using namespace fiber;

namespace {
using Model = models::FiberFine<float, models::FiberBaseFine>;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

io::Image frame(int w, int h) {
  io::Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) im.pixels[std::size_t((y * w + x) * 3 + c)] = std::uint8_t((x * 3 + y * 5 + c * 70) % 256);
  return im;
}
}  // namespace

int main(int argc, char** argv) {
  int threads = 0, repeats = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--repeats") repeats = std::max(1, std::atoi(argv[i + 1]));
    else {
      std::printf("usage: bench_ground [--threads N] [--repeats N]\n");
      return 2;
    }
  }
  if (threads > 0) set_num_threads(threads);
  std::printf("CPU: %s, %d threads; FMA peak %.0f GFLOP/s\n", bench::cpu_name().c_str(), num_threads(),
              bench::measured_fma_peak_gflops());

  auto model = std::make_shared<Model>();
  Generator gen(1);
  for (auto& [key, p] : nn::named_parameters<float>(*model)) p->value().copy_(Tensor<float>(randn<float>(p->shape(), gen) * 0.02f));
  models::init_fine_head(*model, 1);
  const std::string dir = std::string(FIBER_BENCH_DIR) + "/../tests/data/text/";
  Grounder<models::FiberBaseFine> g(model, text::Tokenizer::from_files(dir + "vocab.json", dir + "merges.txt"));

  auto t0 = std::chrono::steady_clock::now();
  g.set_prompt("a red square left of a blue circle", {"red square", "blue circle"});
  std::printf("set_prompt (256 tokens, text layers 0-5): %.3f s\n", seconds_since(t0));

  for (auto [w, h] : {std::pair{640, 480}, std::pair{1333, 800}}) {
    const io::Image im = frame(w, h);
    const double whole = bench::median_seconds([&] { g.ground(im); }, repeats, 1);
    const std::int64_t tensors0 = allocation_stats().allocations, system0 = allocation_stats().system_allocations;
    g.ground(im);
    const std::int64_t tensors = allocation_stats().allocations - tensors0,
                       system = allocation_stats().system_allocations - system0;
    // One frame in pieces (the same calls as ground()).
    NoGrad guard;
    t0 = std::chrono::steady_clock::now();
    const io::FineGrainedInput in = io::preprocess_fine_grained(im, 800, 1333, 32);
    const Tensor<float> pixels = io::to_tensor(in.image);
    const double pre = seconds_since(t0);
    const auto ids = Tensor<std::int64_t>::zeros({1, 256});
    auto valid = Tensor<std::int64_t>::zeros({1, 256});
    for (int t = 0; t < 14; ++t) valid.data()[t] = 1;
    const auto prefix = model->text_prefix(ids, valid);
    t0 = std::chrono::steady_clock::now();
    const auto back = model->fusion_backbone(Var<float>(pixels.reshape({1, 3, pixels.size(1), pixels.size(2)})), prefix);
    const double backbone = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const auto pyramid = model->fusion_backbone.fpn(back.c);
    const double fpn = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const auto head = model->head(pyramid, back.text_embedded);
    const double dyhead = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const auto anchors = models::level_anchors(head);
    const auto det = detection::postprocess<float>(models::image_predictions(head, 0, anchors), g.phrase_tokens(),
                                                   in.resized_width, in.resized_height);
    const double post = seconds_since(t0);
    std::printf("frame %dx%d (model input %lldx%lld): %.3f s/frame, %.3f frames/s\n", w, h,
                (long long)pixels.size(2), (long long)pixels.size(1), whole, 1.0 / whole);
    std::printf("  preprocess %.3f s, backbone %.3f s, FPN %.3f s, DyHead + grounding %.3f s, post-processing %.3f s"
                " (%lld detections)\n",
                pre, backbone, fpn, dyhead, post, (long long)det.size());
    std::printf("  a repeated frame: %lld tensor allocations, %lld of them from the system (the pool holds %.0f MiB)\n",
                (long long)tensors, (long long)system, double(g.buffer_stats().cached_bytes + g.buffer_stats().live_bytes) / (1 << 20));
  }
  return 0;
}
