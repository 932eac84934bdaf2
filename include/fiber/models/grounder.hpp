#pragma once
// Grounder: phrase grounding with fine-grained FIBER for a host program (a robot's perception
// loop, a labelling tool): load once, set a prompt, ground every frame.
//
//   auto g = fiber::Grounder<fiber::models::FiberBaseFine>::load("fiber_coco.pth", "vocab.json", "merges.txt");
//   g.set_prompt("a red mug next to a laptop", {"red mug", "laptop"});  // or set_prompt("mug. laptop. chair")
//   for (;;) {
//     const fiber::Grounding r = g.ground(camera.frame());              // any frame size
//     for (const auto& d : r.detections) use(d.box, d.score, d.phrase);   // boxes in frame pixels
//   }
//
// set_prompt tokenizes (padded to max_query_len, 256), maps each phrase to its tokens (the
// official char_to_token fallbacks) and runs the text layers below the fusion point once; ground
// runs the rest: preprocessing as the official test transform (shorter side 800, longer at most
// 1333, BGR 0-255 normalisation, zero padding to a multiple of 32), the fused backbone, FPN and
// DyHead, the official ATSS post-processing, and boxes scaled back to the frame. No gradients are
// recorded; the thread count is fiber::set_num_threads (core/thread_pool.hpp). Tensor memory is
// recycled between frames (core/storage_pool.hpp) and the shift masks are built once per frame
// size: from the second frame of a size on, a frame takes no tensor memory from the system.
#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/autograd/grad_mode.hpp"
#include "fiber/core/storage_pool.hpp"
#include "fiber/detection/postprocess.hpp"
#include "fiber/detection/prompt.hpp"
#include "fiber/io/image_decode.hpp"
#include "fiber/io/image_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/preprocess.hpp"
#include "fiber/models/fiber_fine.hpp"
#include "fiber/models/fine_head_io.hpp"
#include "fiber/text/tokenizer.hpp"

namespace fiber {

struct GroundOptions {
  int min_size = 800;   // the resized frame's shorter side (INPUT.MIN_SIZE_TEST)
  int max_size = 1333;  // its longer side at most (INPUT.MAX_SIZE_TEST)
  detection::PostprocessOptions postprocess{};  // threshold 0.05, pre-NMS 1000, NMS 0.6, top 100
  // A frame whose padded size differs from the previous frame's first frees the buffers kept for
  // the old size (a camera that changes resolution does not keep both); true keeps the buffers of
  // every size seen (frames that alternate between sizes).
  bool keep_buffers_of_every_size = false;
};

struct GroundedBox {
  std::array<float, 4> box{};  // x1, y1, x2, y2 in the frame's pixels
  float score = 0;
  std::int64_t label = 0;      // 1-based phrase index
  std::string phrase;
};

struct Grounding {
  int image_width = 0, image_height = 0;
  std::vector<GroundedBox> detections;  // by descending score
};

template <models::FiberFineConfig C>
class Grounder {
 public:
  using Model = models::FiberFine<float, C>;

  Grounder(std::shared_ptr<Model> model, text::Tokenizer tokenizer, GroundOptions options = {})
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options) {}

  // Loads weights strictly (the official .pth, {"model": ...}, or safetensors; open.state_dict_key
  // = "model_ema" for the EMA weights) and the tokenizer files.
  static Grounder load(const std::filesystem::path& weights, const std::filesystem::path& vocab,
                       const std::filesystem::path& merges, const io::OpenOptions& open = {}, GroundOptions options = {}) {
    auto model = std::make_shared<Model>();
    nn::load_state_dict<float>(*model, io::open_checkpoint(weights, open), Model::load_options());
    return Grounder(std::move(model), text::Tokenizer::from_files(vocab, merges), options);
  }

  Model& model() { return *model_; }
  const Model& model() const { return *model_; }
  GroundOptions& options() { return options_; }
  const detection::Prompt& prompt() const { return prompt_; }
  const detection::PhraseTokens& phrase_tokens() const { return phrase_tokens_; }

  // `text` with the phrases to ground in it (each must occur in it; every occurrence counts).
  // Without phrases, `text` is a detection prompt ("cat. dog. traffic light"), one phrase per
  // category, rebuilt as GLIP builds it.
  void set_prompt(std::string_view text, std::span<const std::string> phrases = {}) {
    detection::Prompt p = phrases.empty() ? detection::detection_prompt(detection::split_detection_prompt(text))
                                          : detection::caption_prompt(text, phrases);
    // Phrases from the whole text, so one past the model's max_query_len tokens is an error that
    // says so (the official truncates and leaves it unscored); the model reads the truncated text.
    detection::PhraseTokens tokens = detection::phrase_tokens(tokenizer_.encode(p.text), p, std::size_t(C.max_query_len));
    text::EncodeOptions opt;
    opt.max_length = std::size_t(C.max_query_len);
    opt.truncate = true;
    opt.pad_to_max = true;
    const text::Encoding enc = tokenizer_.encode(p.text, opt);
    const std::int64_t L = std::int64_t(enc.size());
    Tensor<std::int64_t> ids = Tensor<std::int64_t>::empty({1, L}), valid = Tensor<std::int64_t>::empty({1, L});
    for (std::int64_t t = 0; t < L; ++t) {
      FIBER_CHECK(enc.ids[std::size_t(t)] < C.text.vocab_size, "set_prompt: token id ", enc.ids[std::size_t(t)],
                  " is outside this model's vocabulary of ", C.text.vocab_size, " (vocab.json does not match the weights)");
      ids.data()[t] = enc.ids[std::size_t(t)];
      valid.data()[t] = enc.attention_mask[std::size_t(t)];
    }
    NoGrad guard;
    text_ = model_->text_prefix(ids, valid);
    prompt_ = std::move(p);
    phrase_tokens_ = std::move(tokens);
  }
  void set_prompt(std::string_view text, std::initializer_list<std::string> phrases) {
    set_prompt(text, std::span<const std::string>(phrases.begin(), phrases.size()));
  }

  // One frame of any size.
  Grounding ground(const io::Image& frame) const {
    FIBER_CHECK(text_.tokens.defined(), "ground: no prompt (call set_prompt first)");
    PoolScope reuse(*pool_);  // this frame's tensors: the blocks the previous frame freed
    const io::FineGrainedInput in = io::preprocess_fine_grained(frame, options_.min_size, options_.max_size, C.size_divisibility);
    // The padded size as one word: height above, width below.
    const std::uint64_t size = std::uint64_t(std::uint32_t(in.image.height)) << 32 | std::uint32_t(in.image.width);
    const std::uint64_t previous = last_frame_size_->exchange(size);
    if (previous != size && previous != 0 && !options_.keep_buffers_of_every_size) pool_->trim();
    const Tensor<float> pixels = io::to_tensor(in.image);
    NoGrad guard;
    const models::FineOutputs<float> out =
        (*model_)(Var<float>(pixels.reshape({1, pixels.size(0), pixels.size(1), pixels.size(2)})), text_);
    const auto anchors = models::level_anchors(out.head);
    const detection::Detections<float> d = detection::postprocess<float>(
        models::image_predictions(out.head, 0, anchors), phrase_tokens_, in.resized_width, in.resized_height,
        options_.postprocess);
    Grounding g;
    g.image_width = in.original_width;
    g.image_height = in.original_height;
    // Back to the frame: BoxList.resize's per-axis ratios.
    const float rx = float(in.original_width) / float(in.resized_width);
    const float ry = float(in.original_height) / float(in.resized_height);
    for (std::int64_t k = 0; k < d.size(); ++k) {
      const float* b = d.boxes.data() + 4 * k;
      GroundedBox box{{b[0] * rx, b[1] * ry, b[2] * rx, b[3] * ry}, d.scores.data()[k], d.labels[std::size_t(k)],
                      prompt_.phrases[std::size_t(d.labels[std::size_t(k)] - 1)].name};
      g.detections.push_back(std::move(box));
    }
    return g;
  }
  Grounding ground(const std::filesystem::path& image) const { return ground(io::read_image(image)); }

  // The frame buffers kept between frames: after the first frame of a size, ground() takes all its
  // tensor memory from them (stats().misses stops growing). release_buffers() frees them.
  StoragePoolStats buffer_stats() const { return pool_->stats(); }
  void release_buffers() { pool_->trim(); }

 private:
  std::shared_ptr<Model> model_;
  text::Tokenizer tokenizer_;
  GroundOptions options_;
  detection::Prompt prompt_;
  detection::PhraseTokens phrase_tokens_;
  models::FineTextPrefix<float> text_;
  std::shared_ptr<StoragePool> pool_ = std::make_shared<StoragePool>();
  std::shared_ptr<std::atomic<std::uint64_t>> last_frame_size_ = std::make_shared<std::atomic<std::uint64_t>>(0);
};

}  // namespace fiber
