#pragma once
// PrefetchLoader: training batches of a caption data set, made ahead of time by background
// threads. Each batch is
//   images          [B, 3, S, S] float: decoded (io::read_image) and io::preprocess_coarse(S)
//   ids, attention_mask  [B, L] int64: <s> caption </s> padded with <pad> to the batch's longest
//                   (L <= max_text_len); longer captions are cut to max_text_len tokens keeping
//                   the final </s>, as HF's truncation=True
//   samples, image_indices  which samples, and their images (captions of one image share it)
//
// Order and position: epoch e visits the samples in a permutation drawn by Philox from
// (seed, e) alone, in batches of batch_size (the last one shorter unless drop_last). The position
// of the next batch, LoaderState{epoch, batch}, is all a checkpoint needs: restore(state) on a
// loader over the same data and options gives the same batches from there on.
//
// Determinism: batch k is a pure function of (data, options, k); threads only decide when it is
// made, so batches are identical for any number of prefetch threads.
//
// Bad images (missing, unreadable, corrupt): on_bad_image = fail makes next() throw the
// fiber::Error that names the path, at that batch (again on every later call); skip leaves the
// sample out of its batch (which is then one shorter; a batch left empty is passed over), counts
// it and hands its message to on_skip, on the consumer's thread, in batch order. An epoch's worth
// of empty batches in a row is an error (no image is readable), not an endless search.
//
// Threads: `threads` workers claim batches in order and stop claiming `queue_batches` ahead of
// the consumer (a bounded queue). Workers run fiber kernels serially (they mark themselves as
// inside a parallel region), so decoding never takes the shared thread pool from the training
// step. The destructor stops and joins them, finished or not.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/io/image_decode.hpp"
#include "fiber/io/preprocess.hpp"
#include "fiber/text/tokenizer.hpp"
#include "fiber/train/caption_dataset.hpp"

namespace fiber::train {

enum class BadImagePolicy { fail, skip };

struct PrefetchOptions {
  int batch_size = 32;
  int image_size = 384;           // S: the model's image size
  std::size_t max_text_len = 40;  // tokens, <s> and </s> included
  int threads = 2;                // prefetch threads, >= 1
  int queue_batches = 4;          // batches made ahead of the consumer, >= 1
  std::uint64_t seed = 0;
  bool shuffle = true;            // false: every epoch in data set order
  bool drop_last = false;
  BadImagePolicy on_bad_image = BadImagePolicy::fail;
  std::function<void(const std::string& message)> on_skip;  // skip mode: one call per skipped image
  io::ImageLimits image_limits;
};

// The position of a batch: epoch and batch number within it.
struct LoaderState {
  std::uint64_t epoch = 0;
  std::uint64_t batch = 0;
  bool operator==(const LoaderState&) const = default;
};

struct DataBatch {
  Tensor<float> images;                   // [B, 3, S, S]
  Tensor<std::int64_t> ids;               // [B, L]
  Tensor<std::int64_t> attention_mask;    // [B, L]: 1 tokens, 0 padding
  std::vector<std::size_t> samples;       // [B]: indices into the data set's samples
  std::vector<std::size_t> image_indices; // [B]: their images (CaptionDataset::images)
  LoaderState position;                   // where this batch is in the data
  std::vector<std::string> skipped;       // skip mode: messages of the images left out
  std::int64_t size() const { return std::int64_t(samples.size()); }
};

// Sample indices of `epoch` in visiting order: a Fisher-Yates shuffle whose draws are Philox
// counters of (seed, epoch), so any epoch is computed without the ones before it.
inline std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::uint64_t epoch, bool shuffle = true) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  if (!shuffle || n < 2) return order;
  FIBER_CHECK(n < (std::size_t(1) << 40) && epoch < (std::uint64_t(1) << 23), "epoch_order: ", n,
              " samples or epoch ", epoch, " out of range");
  Generator gen(seed);
  gen.advance(epoch << 40);  // 2^40 blocks per epoch: two draws a block
  for (std::size_t i = n - 1; i > 0; --i) {
    const std::uint64_t k = n - 1 - i;
    const auto w = gen.block(k / 2);
    const std::uint64_t r = (std::uint64_t(w[2 * (k % 2)]) << 32) | w[2 * (k % 2) + 1];
    const std::size_t j = std::size_t((static_cast<unsigned __int128>(r) * (i + 1)) >> 64);  // [0, i]
    std::swap(order[i], order[j]);
  }
  return order;
}

class PrefetchLoader {
 public:
  PrefetchLoader(CaptionDataset data, text::Tokenizer tokenizer, PrefetchOptions options)
      : shared_(std::make_shared<Shared>(std::move(data), std::move(tokenizer), std::move(options))) {
    const PrefetchOptions& o = shared_->options;
    const std::size_t n = shared_->data.size();
    FIBER_CHECK(n > 0, "PrefetchLoader: the data set is empty");
    FIBER_CHECK(o.batch_size >= 1 && o.batch_size <= 1 << 20, "PrefetchLoader: batch_size ", o.batch_size,
                " is outside [1, 2^20]");
    FIBER_CHECK(o.image_size >= 1 && o.image_size <= 8192, "PrefetchLoader: image_size ", o.image_size,
                " is outside [1, 8192]");
    FIBER_CHECK(o.max_text_len >= 2, "PrefetchLoader: max_text_len ", o.max_text_len, " leaves no room for <s> </s>");
    FIBER_CHECK(o.threads >= 1 && o.threads <= 256, "PrefetchLoader: threads ", o.threads, " is outside [1, 256]");
    FIBER_CHECK(o.queue_batches >= 1 && o.queue_batches <= 1024, "PrefetchLoader: queue_batches ", o.queue_batches,
                " is outside [1, 1024]");
    const std::size_t B = std::size_t(o.batch_size);
    shared_->batches_per_epoch = o.drop_last ? n / B : (n + B - 1) / B;
    FIBER_CHECK(shared_->batches_per_epoch > 0, "PrefetchLoader: drop_last with ", n,
                " samples and batch_size ", B, " leaves no batch");
    start(0);
  }
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;
  ~PrefetchLoader() { stop(); }

  std::uint64_t batches_per_epoch() const { return shared_->batches_per_epoch; }
  // Images skipped so far in the batches next() returned.
  std::uint64_t skipped_images() const { return skipped_; }

  // The position of the batch next() returns.
  LoaderState state() const { return shared_->position(base_ + consumed_); }

  // Continues from `s` (a state() from a loader over the same data and options).
  void restore(const LoaderState& s) {
    FIBER_CHECK(s.batch < shared_->batches_per_epoch, "PrefetchLoader::restore: batch ", s.batch,
                " is past the epoch's ", shared_->batches_per_epoch, " batches");
    FIBER_CHECK(s.epoch < (std::uint64_t(1) << 23), "PrefetchLoader::restore: epoch ", s.epoch, " is out of range");
    stop();
    start(s.epoch * shared_->batches_per_epoch + s.batch);
  }

  // The next batch; throws the bad image's fiber::Error in fail mode.
  DataBatch next() {
    // Skip mode passes over empty batches; a whole epoch of them means no image is readable,
    // and looking further would never end.
    for (std::uint64_t empty = 0;; ++empty) {
      FIBER_CHECK(empty < shared_->batches_per_epoch, "PrefetchLoader: every image of ", empty,
                  " batches in a row was skipped (a whole epoch): no readable image in the data set");
      Result r;
      {
        std::unique_lock lock(shared_->mutex);
        shared_->ready_cv.wait(lock, [&] { return shared_->ready.count(consumed_) > 0; });
        auto it = shared_->ready.find(consumed_);
        if (it->second.error) std::rethrow_exception(it->second.error);  // kept: every call fails here
        r = std::move(it->second);
        shared_->ready.erase(it);
        ++consumed_;
        shared_->consumed = consumed_;
      }
      shared_->claim_cv.notify_all();
      skipped_ += r.batch.skipped.size();
      if (shared_->options.on_skip)
        for (const std::string& m : r.batch.skipped) shared_->options.on_skip(m);
      if (r.batch.size() > 0) return std::move(r.batch);
    }
  }

 private:
  struct Result {
    DataBatch batch;
    std::exception_ptr error;
  };

  // What the workers and the consumer share; workers hold it by shared_ptr.
  struct Shared {
    Shared(CaptionDataset d, text::Tokenizer t, PrefetchOptions o)
        : data(std::move(d)), tokenizer(std::move(t)), options(std::move(o)) {}
    const CaptionDataset data;
    const text::Tokenizer tokenizer;
    const PrefetchOptions options;
    std::uint64_t batches_per_epoch = 0;

    std::mutex mutex;
    std::condition_variable claim_cv, ready_cv;
    std::uint64_t base = 0;       // linear batch number of sequence 0
    std::uint64_t next_claim = 0; // sequence numbers, relative to base
    std::uint64_t consumed = 0;
    std::map<std::uint64_t, Result> ready;
    std::atomic<bool> stopping{false};
    std::map<std::uint64_t, std::shared_ptr<const std::vector<std::size_t>>> orders;  // by epoch, a few kept

    LoaderState position(std::uint64_t linear) const { return {linear / batches_per_epoch, linear % batches_per_epoch}; }

    // The epoch's order, computed once (outside the lock) and kept for the last few epochs.
    std::shared_ptr<const std::vector<std::size_t>> order(std::uint64_t epoch) {
      {
        std::lock_guard lock(mutex);
        if (const auto it = orders.find(epoch); it != orders.end()) return it->second;
      }
      auto made = std::make_shared<const std::vector<std::size_t>>(
          epoch_order(data.size(), options.seed, epoch, options.shuffle));
      std::lock_guard lock(mutex);
      const auto kept = orders.emplace(epoch, made).first->second;
      while (orders.size() > 3) orders.erase(orders.begin());
      return kept;
    }
  };

  static void work(std::shared_ptr<Shared> s) {
    fiber::detail::in_parallel_region = true;  // kernels here run serially: the pool is the trainer's
    for (;;) {
      std::uint64_t seq = 0, base = 0;
      {
        std::unique_lock lock(s->mutex);
        const auto ahead = std::uint64_t(s->options.queue_batches);
        s->claim_cv.wait(lock, [&] { return s->stopping || s->next_claim < s->consumed + ahead; });
        if (s->stopping) return;
        seq = s->next_claim++;
        base = s->base;
      }
      Result r;
      try {
        r.batch = make_batch(*s, s->position(base + seq));
      } catch (...) {
        r.error = std::current_exception();
      }
      if (s->stopping) return;
      {
        std::lock_guard lock(s->mutex);
        s->ready.emplace(seq, std::move(r));
      }
      s->ready_cv.notify_all();
    }
  }

  static DataBatch make_batch(Shared& s, LoaderState position) {
    const PrefetchOptions& o = s.options;
    const auto order = s.order(position.epoch);
    const std::size_t first = std::size_t(position.batch) * std::size_t(o.batch_size);
    const std::size_t last = std::min(order->size(), first + std::size_t(o.batch_size));
    DataBatch b;
    b.position = position;
    std::vector<io::FloatImage> pixels;
    for (std::size_t k = first; k < last && !s.stopping; ++k) {
      const std::size_t index = (*order)[k];
      const CaptionSample& sample = s.data.samples[index];
      try {
        pixels.push_back(io::preprocess_coarse(io::read_image(sample.image, o.image_limits), o.image_size));
      } catch (const Error& e) {
        if (o.on_bad_image == BadImagePolicy::fail) throw;
        b.skipped.push_back(e.what());
        continue;
      }
      b.samples.push_back(index);
      b.image_indices.push_back(sample.image_index);
    }
    const auto B = std::int64_t(b.samples.size()), S = std::int64_t(o.image_size);
    b.images = Tensor<float>::empty({B, 3, S, S});
    for (std::int64_t i = 0; i < B; ++i)
      std::memcpy(b.images.data() + i * 3 * S * S, pixels[std::size_t(i)].data.data(), std::size_t(3 * S * S) * sizeof(float));

    text::EncodeOptions enc;
    enc.max_length = o.max_text_len;
    enc.truncate = true;  // keeps </s>: the tokenizer cuts the content, then frames it
    std::vector<text::Encoding> texts;
    std::size_t L = 0;
    for (std::size_t index : b.samples) {
      texts.push_back(s.tokenizer.encode(s.data.samples[index].caption, enc));
      L = std::max(L, texts.back().size());
    }
    b.ids = Tensor<std::int64_t>::full({B, std::int64_t(L)}, s.tokenizer.pad_id());
    b.attention_mask = Tensor<std::int64_t>::zeros({B, std::int64_t(L)});
    for (std::int64_t i = 0; i < B; ++i)
      for (std::size_t t = 0; t < texts[std::size_t(i)].size(); ++t) {
        b.ids.data()[i * std::int64_t(L) + std::int64_t(t)] = texts[std::size_t(i)].ids[t];
        b.attention_mask.data()[i * std::int64_t(L) + std::int64_t(t)] = 1;
      }
    return b;
  }

  void start(std::uint64_t base) {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->stopping = false;
      shared_->base = base;
      shared_->next_claim = 0;
      shared_->consumed = 0;
      shared_->ready.clear();
    }
    base_ = base;
    consumed_ = 0;
    for (int i = 0; i < shared_->options.threads; ++i) workers_.emplace_back(work, shared_);
  }

  void stop() {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->stopping = true;
    }
    shared_->claim_cv.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> workers_;
  std::uint64_t base_ = 0, consumed_ = 0, skipped_ = 0;
};

}  // namespace fiber::train
