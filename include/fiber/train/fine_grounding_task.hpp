#pragma once
// Fine-grained FIBER training as a Trainer task (task.hpp): grounding batches (grounding_dataset.hpp),
// the official training transform, ATSS targets and the grounding losses (token focal, GIoU,
// centerness: detection/grounding_loss.hpp), and the model EMA of the official recipe.
//
//   train::GroundingDataset data = train::load_grounding_dataset("shapes/train.json");
//   models::FiberFine<float, models::FiberDemoFine> model;       // from `fiber init fine`
//   train::FineGroundingTask<models::FiberDemoFine> task(model, data, tokenizer, {.batch_size = 4});
//   train::TrainerOptions o;  o.total_steps = 2000;  o.fine = train::FineSolverConfig{...};
//   train::Trainer trainer(task, o);
//   trainer.run();
//   task.ema();                                                    // the EMA weights, by name
//
// One micro-batch, as the official pipeline does it:
//   boxes: [x, y, w, h] -> [x, y, x + w − 1, y + h − 1] clamped to the image (TO_REMOVE = 1),
//     boxes left empty dropped (clip_to_image(remove_empty=True)) with their spans;
//   image: Resize (shorter side drawn from min_sizes, longer at most max_size; boxes scaled per
//     axis), RandomHorizontalFlip (x1' = w − x2 − 1), BGR 0-255 normalisation, zero padding to the
//     batch's largest image rounded up to a multiple of 32 (BatchCollator, SIZE_DIVISIBILITY 32);
//   text: the prompt tokenized and padded to max_query_len (a prompt longer than that is an error
//     naming the image; the official truncates); each box's positive map is 1 on the tokens its spans
//     cover (create_positive_map's char_to_token fallbacks, then made boolean by the collator);
//   the model in training mode (dropout and drop path from the generator), anchors of the head's
//     levels, atss_targets per image, grounding_losses; backward of their sum.
// The flip is off by default: the official default (0.5) mirrors images without swapping "left"
// and "right" in their captions, which teaches a data set of spatial relations (the shapes world)
// the opposite of what it says. Set flip_probability = 0.5 for the official behaviour.
//
// Detection images (COCO instances, no caption): each time one is read, its prompt lists every
// category in a new random order, as the official COCO fine-tuning does (DATASETS.DISABLE_SHUFFLE
// false; the official draws from Python's random, we from the generator), and each box grounds its
// category's name where it now stands. shuffle_categories = false keeps the file's order. A
// category list whose prompt overflows max_query_len in some order is an error when it is drawn.
//
// Randomness: the epoch order (epoch_order with the shuffle seed), and per image the min-size
// choice, the flip and the category order from the Trainer's generator; the position in the data
// and the EMA are saved in checkpoints, so a resumed run continues exactly.
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fiber/detection/atss.hpp"
#include "fiber/detection/grounding_loss.hpp"
#include "fiber/detection/prompt.hpp"
#include "fiber/io/image_decode.hpp"
#include "fiber/io/image_tensor.hpp"
#include "fiber/io/preprocess.hpp"
#include "fiber/io/resize.hpp"
#include "fiber/models/fiber_fine.hpp"
#include "fiber/models/fine_head_io.hpp"
#include "fiber/nn/module.hpp"
#include "fiber/text/tokenizer.hpp"
#include "fiber/train/fine_recipe.hpp"
#include "fiber/train/grounding_dataset.hpp"
#include "fiber/train/prefetch_loader.hpp"
#include "fiber/train/task.hpp"

namespace fiber::train {

struct FineGroundingOptions {
  int batch_size = 2;
  std::vector<int> min_sizes{800};  // INPUT.MIN_SIZE_TRAIN: one drawn per image
  int max_size = 1333;              // INPUT.MAX_SIZE_TRAIN
  double flip_probability = 0.0;    // AUGMENT.FLIP_PROB_TRAIN (official 0.5; see above)
  double ema_decay = 0.999;         // SOLVER.MODEL_EMA; 0: no EMA
  std::uint64_t shuffle_seed = 0;   // the epoch orders
  bool shuffle_categories = true;   // detection images: a new category order per read (see above)
  detection::GroundingLossOptions loss{};
  detection::AtssOptions atss{};
};

// One image of the data set, prepared once: its prompt's tokens and its boxes' positive maps.
struct PreparedGroundingImage {
  std::vector<std::int64_t> ids, valid;                // [max_query_len]
  std::vector<std::array<double, 4>> boxes;            // [x, y, w, h] as in the file
  std::vector<std::vector<std::int64_t>> box_tokens;   // per box: the token columns it grounds
};

// The official xywh -> xyxy (TO_REMOVE = 1) clamped to a w x h image; false when the box is left
// without area (clip_to_image(remove_empty=True) drops it).
inline bool official_xyxy(const std::array<double, 4>& xywh, double w, double h, std::array<double, 4>& out) {
  out = {xywh[0], xywh[1], xywh[0] + xywh[2] - 1, xywh[1] + xywh[3] - 1};
  out[0] = std::clamp(out[0], 0.0, w - 1);
  out[2] = std::clamp(out[2], 0.0, w - 1);
  out[1] = std::clamp(out[1], 0.0, h - 1);
  out[3] = std::clamp(out[3], 0.0, h - 1);
  return out[3] > out[1] && out[2] > out[0];
}

// One micro-batch as the model and the losses read it.
struct GroundingBatch {
  Tensor<float> images;                    // [B, 3, H, W]
  Tensor<std::int64_t> ids, valid;         // [B, max_query_len]
  std::vector<Tensor<float>> boxes;        // per image [K, 4] xyxy in the resized (and flipped) image
  std::vector<Tensor<float>> positive_maps;  // per image [K, max_query_len], 1 on a box's tokens
  std::vector<std::size_t> indices;        // into the data set
  std::vector<bool> flipped;
};

template <models::FiberFineConfig C>
class FineGroundingTask {
 public:
  using Model = models::FiberFine<float, C>;

  FineGroundingTask(Model& model, const GroundingDataset& data, const text::Tokenizer& tokenizer,
                    FineGroundingOptions options = {})
      : model_(model), data_(data), tokenizer_(tokenizer), options_(std::move(options)) {
    FIBER_CHECK(options_.batch_size >= 1, "FineGroundingTask: batch_size ", options_.batch_size, " must be at least 1");
    FIBER_CHECK(!options_.min_sizes.empty(), "FineGroundingTask: min_sizes is empty");
    for (int s : options_.min_sizes)
      FIBER_CHECK(s >= 1 && s <= 4096, "FineGroundingTask: min size ", s, " is not in [1, 4096]");
    FIBER_CHECK(options_.max_size >= 1 && options_.max_size <= 8192, "FineGroundingTask: max_size ", options_.max_size,
                " is not in [1, 8192]");
    FIBER_CHECK(options_.flip_probability >= 0 && options_.flip_probability <= 1, "FineGroundingTask: flip_probability ",
                options_.flip_probability, " is not in [0, 1]");
    FIBER_CHECK(data_.size() > 0, "FineGroundingTask: the data set is empty");
    for (const GroundingImage& im : data_.images) {
      // A data set built by hand, not by load_grounding_dataset, may name a category it lacks.
      if (im.detection)
        for (const GroundingBox& box : im.boxes)
          FIBER_CHECK(box.category >= 0 && std::size_t(box.category) < data_.categories.size(), "grounding data: ",
                      excerpt(im.file.string(), 200), ": a box's category ", box.category, " is not one of the data set's ",
                      data_.categories.size(), " categories");
      prepared_.push_back(prepare(im));
    }
    if (options_.ema_decay > 0) ema_ = ModelEma<float>(model_, options_.ema_decay);
    order_ = epoch_order(data_.size(), options_.shuffle_seed, epoch_);
  }

  std::vector<std::pair<std::string, Var<float>*>> parameters() { return nn::named_parameters<float>(model_); }

  // The next micro-batch, transformed as the official training pipeline (see the top of the file).
  GroundingBatch next_batch(Generator& gen) {
    const auto B = std::size_t(options_.batch_size);
    std::vector<io::FineGrainedInput> inputs;
    GroundingBatch batch;
    batch.ids = Tensor<std::int64_t>::empty({std::int64_t(B), C.max_query_len});
    batch.valid = Tensor<std::int64_t>::empty({std::int64_t(B), C.max_query_len});
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t index = next_index();
      batch.indices.push_back(index);
      const std::array<std::uint32_t, 4> draw = gen.block(0);
      gen.advance(1);
      std::optional<PreparedGroundingImage> shuffled;
      if (options_.shuffle_categories && data_.images[index].detection) {
        const std::array<std::uint32_t, 4> order = gen.block(0);
        gen.advance(1);
        shuffled = prepare(with_category_order(data_.images[index], (std::uint64_t(order[0]) << 32) | order[1]));
      }
      const PreparedGroundingImage& p = shuffled ? *shuffled : prepared_[index];
      const int min_size = options_.min_sizes[std::size_t(draw[0] % std::uint32_t(options_.min_sizes.size()))];
      const bool flip = fiber::detail::unit_double(draw[1], draw[2]) < options_.flip_probability;
      io::Image image = io::read_image(data_.images[index].file);
      if (flip) image = io::flip_horizontal(image);
      inputs.push_back(io::preprocess_fine_grained(image, min_size, options_.max_size, C.size_divisibility));
      const io::FineGrainedInput& in = inputs.back();
      const double rx = double(in.resized_width) / double(in.original_width);
      const double ry = double(in.resized_height) / double(in.original_height);
      // The boxes that keep an area in this image (official_xyxy), scaled per axis as BoxList.resize,
      // then transposed as FLIP_LEFT_RIGHT in the resized image.
      std::vector<std::array<double, 4>> kept;
      std::vector<std::size_t> kept_index;
      for (std::size_t k = 0; k < p.boxes.size(); ++k) {
        std::array<double, 4> q{};
        if (!official_xyxy(p.boxes[k], double(in.original_width), double(in.original_height), q)) continue;
        q = {q[0] * rx, q[1] * ry, q[2] * rx, q[3] * ry};
        if (flip) q = {double(in.resized_width) - q[2] - 1, q[1], double(in.resized_width) - q[0] - 1, q[3]};
        kept.push_back(q);
        kept_index.push_back(k);
      }
      const auto K = std::int64_t(kept.size());
      Tensor<float> boxes = Tensor<float>::empty({K, 4});
      Tensor<float> map = Tensor<float>::zeros({K, C.max_query_len});
      for (std::int64_t k = 0; k < K; ++k) {
        for (int c = 0; c < 4; ++c) boxes.data()[4 * k + c] = float(kept[std::size_t(k)][std::size_t(c)]);
        for (std::int64_t t : p.box_tokens[kept_index[std::size_t(k)]]) map.data()[k * C.max_query_len + t] = 1.0f;
      }
      batch.boxes.push_back(std::move(boxes));
      batch.positive_maps.push_back(std::move(map));
      batch.flipped.push_back(flip);
      std::copy(p.ids.begin(), p.ids.end(), batch.ids.data() + std::int64_t(b) * C.max_query_len);
      std::copy(p.valid.begin(), p.valid.end(), batch.valid.data() + std::int64_t(b) * C.max_query_len);
    }
    batch.images = batch_images(inputs);
    return batch;
  }

  StepOutput forward_backward(Generator& gen) {
    const GroundingBatch batch = next_batch(gen);
    const std::size_t B = batch.boxes.size();
    const Tensor<std::int64_t>& valid = batch.valid;

    nn::ForwardContext<float> ctx;
    ctx.training = true;
    ctx.rng = &gen;
    const models::FineOutputs<float> out = model_(Var<float>(batch.images), model_.text_prefix(batch.ids, valid, ctx), ctx);
    const models::FlatHeadOutputs<float> flat = models::flatten_head_outputs(out.head);
    const std::vector<Tensor<float>> levels = models::level_anchors(out.head);
    std::vector<std::int64_t> per_level;
    for (const Tensor<float>& a : levels) per_level.push_back(a.size(0));
    const Tensor<float> anchors = concat(levels, 0);
    std::vector<detection::AtssTargets<float>> targets;
    for (std::size_t b = 0; b < B; ++b)
      targets.push_back(detection::atss_targets(anchors, per_level, batch.boxes[b], batch.positive_maps[b],
                                                options_.loss.coder, options_.atss));
    Tensor<float> text_mask = Tensor<float>::empty({std::int64_t(B), C.max_query_len});
    for (std::int64_t i = 0; i < valid.numel(); ++i) text_mask.data()[i] = valid.data()[i] ? 1.0f : 0.0f;
    const detection::GroundingLosses<float> losses = detection::grounding_losses(
        flat.logits, flat.box_regression, flat.centerness, anchors, targets, text_mask, options_.loss);
    const Var<float> total = losses.total();
    total.backward();
    StepOutput s;
    s.losses["loss"] = double(total.value().item());
    s.losses["token"] = double(losses.token.value().item());
    s.losses["box"] = double(losses.box.value().item());
    s.losses["centerness"] = double(losses.centerness.value().item());
    s.losses["positives"] = double(losses.positives);
    s.samples = std::int64_t(B);
    return s;
  }

  void after_update() {
    if (ema_) ema_->update(model_);
  }

  void save_state(TaskState& out) const {
    out.json["epoch"] = epoch_;
    out.json["position"] = position_;
    out.json["shuffle_seed"] = options_.shuffle_seed;
    out.json["images"] = data_.size();
    if (ema_)
      for (std::size_t i = 0; i < ema_->names().size(); ++i) out.put("ema." + ema_->names()[i], ema_->values()[i]);
  }

  void load_state(const TaskState& in) {
    const auto field = [&](const char* key) {
      FIBER_CHECK(in.json.contains(key) && in.json[key].is_number_unsigned(), "FineGroundingTask: the checkpoint's task state has no \"",
                  key, "\" (written by another task?)");
      return in.json[key].get<std::uint64_t>();
    };
    FIBER_CHECK(field("images") == data_.size(), "FineGroundingTask: the checkpoint was written for ", field("images"),
                " training images, this data set has ", data_.size());
    FIBER_CHECK(field("shuffle_seed") == options_.shuffle_seed, "FineGroundingTask: the checkpoint's shuffle seed ",
                field("shuffle_seed"), " is not this run's ", options_.shuffle_seed);
    const std::uint64_t epoch = field("epoch"), position = field("position");
    FIBER_CHECK(position <= data_.size(), "FineGroundingTask: position ", position, " is past the data set");
    if (ema_) {
      std::vector<Tensor<float>> values;
      for (std::size_t i = 0; i < ema_->names().size(); ++i) {
        const Tensor<float>& t = in.get("ema." + ema_->names()[i]);
        FIBER_CHECK(t.shape() == ema_->values()[i].shape(), "FineGroundingTask: EMA of '", ema_->names()[i], "' has shape ",
                    t.shape(), ", the model ", ema_->values()[i].shape());
        values.push_back(t.clone());
      }
      ema_->set_values(std::move(values));
    }
    epoch_ = epoch;
    position_ = std::size_t(position);
    order_ = epoch_order(data_.size(), options_.shuffle_seed, epoch_);
  }

  // The EMA of every parameter (nullptr without one), by official name.
  const ModelEma<float>* ema() const { return ema_ ? &*ema_ : nullptr; }
  const std::vector<PreparedGroundingImage>& prepared() const { return prepared_; }

 private:
  // A detection image with its categories listed in the order drawn from `seed`: the prompt and
  // each box's span rebuilt (convert_od_to_grounding_simple).
  GroundingImage with_category_order(const GroundingImage& im, std::uint64_t seed) const {
    const std::vector<std::size_t> order = epoch_order(data_.categories.size(), seed, 0);
    std::vector<std::string> names;
    std::vector<std::size_t> position(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      names.push_back(data_.categories[order[i]]);
      position[order[i]] = i;
    }
    const detection::Prompt prompt = detection::detection_prompt(names);
    GroundingImage out = im;
    out.prompt = prompt.text;
    // Each box's category was checked against the list at construction.
    for (GroundingBox& box : out.boxes) box.spans = prompt.phrases[position[std::size_t(box.category)]].spans;
    return out;
  }

  PreparedGroundingImage prepare(const GroundingImage& im) const {
    const std::string where = "grounding data: " + excerpt(im.file.string(), 200);
    PreparedGroundingImage p;
    const text::Encoding full = tokenizer_.encode(im.prompt);
    FIBER_CHECK(full.size() <= std::size_t(C.max_query_len), where, ": its prompt is ", full.size(),
                " tokens, over the model's ", C.max_query_len, " (the official truncates it and loses the boxes past the cut)");
    for (std::size_t t = 0; t < std::size_t(C.max_query_len); ++t) {
      const bool in = t < full.size();
      FIBER_CHECK(!in || full.ids[t] < C.text.vocab_size, where, ": token id ", full.ids[t],
                  " is outside the model's vocabulary of ", C.text.vocab_size, " (the tokenizer does not match the model)");
      p.ids.push_back(in ? full.ids[t] : tokenizer_.pad_id());
      p.valid.push_back(in ? 1 : 0);
    }
    // Which boxes survive the clamp depends on the image's size: decided per batch.
    detection::Prompt prompt{im.prompt, {}};
    for (const GroundingBox& box : im.boxes) {
      p.boxes.push_back(box.xywh);
      prompt.phrases.push_back({"box " + std::to_string(p.boxes.size() - 1), box.spans});
    }
    try {
      p.box_tokens = detection::phrase_tokens(full, prompt, std::size_t(C.max_query_len));
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    return p;
  }

  std::size_t next_index() {
    if (position_ >= order_.size()) {
      ++epoch_;
      position_ = 0;
      order_ = epoch_order(data_.size(), options_.shuffle_seed, epoch_);
    }
    return order_[position_++];
  }

  // [B, 3, H, W]: each image top-left, zeros elsewhere. Each input is already zero-padded to a
  // multiple of C.size_divisibility (preprocess_fine_grained), so H and W, the largest of them, are
  // too: to_image_list with DATALOADER.SIZE_DIVISIBILITY, as the official collator.
  static Tensor<float> batch_images(const std::vector<io::FineGrainedInput>& inputs) {
    int H = 0, W = 0;
    for (const auto& in : inputs) H = std::max(H, in.image.height), W = std::max(W, in.image.width);
    Tensor<float> out = Tensor<float>::zeros({std::int64_t(inputs.size()), 3, H, W});
    for (std::size_t b = 0; b < inputs.size(); ++b) {
      const io::FloatImage& image = inputs[b].image;  // [3, h, w]
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < image.height; ++y)
          std::copy_n(image.data.data() + (std::size_t(c) * image.height + y) * image.width, image.width,
                      out.data() + ((std::int64_t(b) * 3 + c) * H + y) * W);
    }
    return out;
  }

  Model& model_;
  const GroundingDataset& data_;
  text::Tokenizer tokenizer_;
  FineGroundingOptions options_;
  std::vector<PreparedGroundingImage> prepared_;
  std::optional<ModelEma<float>> ema_;
  std::vector<std::size_t> order_;
  std::uint64_t epoch_ = 0;
  std::size_t position_ = 0;
};

}  // namespace fiber::train
