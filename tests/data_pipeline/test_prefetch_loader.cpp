// PrefetchLoader: batches independent of the thread count, exact restore, epoch shuffles, text
// framing and truncation, bad images in both modes, early shutdown.
#include <doctest/doctest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "data_fixtures.hpp"
#include "fiber/train/prefetch_loader.hpp"
#include "fiber/train/shapes_world.hpp"

using namespace fiber;

namespace {
// A small shapes world on disk, written once per test process and removed at its exit.
const std::filesystem::path& world_dir() {
  struct World {
    std::filesystem::path dir = test::fresh_dir("loader_world");
    World() {
      train::ShapesWorldOptions o;
      o.train = 23;
      o.val = 1;
      o.size = 32;
      train::write_shapes_world(dir, o);
    }
    ~World() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  };
  static const World world;
  return world.dir;
}
train::CaptionDataset world() { return train::load_caption_dataset(world_dir() / "train.jsonl"); }
text::Tokenizer loader_tokenizer() { return text::Tokenizer::from_files(world_dir() / "vocab.json", world_dir() / "merges.txt"); }

train::PrefetchOptions small_options(int threads) {
  train::PrefetchOptions o;
  o.batch_size = 5;
  o.image_size = 32;
  o.threads = threads;
  o.queue_batches = 2;
  o.seed = 3;
  return o;
}

template <class T>
bool same(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), std::size_t(a.numel()) * sizeof(T)) == 0;
}
bool same(const train::DataBatch& a, const train::DataBatch& b) {
  return a.samples == b.samples && a.position == b.position && same(a.images, b.images) && same(a.ids, b.ids) &&
         same(a.attention_mask, b.attention_mask);
}
std::string next_error(train::PrefetchLoader& loader) {
  try {
    loader.next();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("epoch orders are permutations, different per epoch, reproducible") {
  const auto a = train::epoch_order(100, 1, 0), b = train::epoch_order(100, 1, 1);
  CHECK(std::set<std::size_t>(a.begin(), a.end()).size() == 100);
  CHECK(a != b);
  CHECK(a == train::epoch_order(100, 1, 0));
  CHECK(a != train::epoch_order(100, 2, 0));
  CHECK(train::epoch_order(5, 1, 0, false) == std::vector<std::size_t>{0, 1, 2, 3, 4});
}

TEST_CASE("batches are the same for 1 and 3 prefetch threads, across epochs") {
  train::PrefetchLoader one(world(), loader_tokenizer(), small_options(1));
  train::PrefetchLoader three(world(), loader_tokenizer(), small_options(3));
  CHECK(one.batches_per_epoch() == 5);  // 23 samples: 4 of 5 and one of 3
  std::set<std::size_t> seen;
  for (int k = 0; k < 12; ++k) {
    const train::DataBatch a = one.next(), b = three.next();
    INFO("batch ", k);
    CHECK(same(a, b));
    CHECK(a.position == train::LoaderState{std::uint64_t(k / 5), std::uint64_t(k % 5)});
    CHECK(a.size() == (k % 5 == 4 ? 3 : 5));
    if (k < 5) seen.insert(a.samples.begin(), a.samples.end());
  }
  CHECK(seen.size() == 23);  // one epoch visits every sample once
}

TEST_CASE("restore continues exactly, mid-epoch and across the epoch's end") {
  train::PrefetchLoader first(world(), loader_tokenizer(), small_options(2));
  for (int k = 0; k < 3; ++k) first.next();
  const train::LoaderState saved = first.state();
  CHECK(saved == train::LoaderState{0, 3});
  std::vector<train::DataBatch> expected;
  for (int k = 0; k < 4; ++k) expected.push_back(first.next());
  CHECK(first.state() == train::LoaderState{1, 2});

  train::PrefetchLoader second(world(), loader_tokenizer(), small_options(3));
  second.next();
  second.restore(saved);
  CHECK(second.state() == saved);
  for (const auto& e : expected) CHECK(same(second.next(), e));
  CHECK_THROWS_WITH_AS(second.restore({0, 5}), doctest::Contains("batch 5 is past the epoch's 5 batches"), Error);
}

TEST_CASE("batch content: images preprocessed, captions framed, padded, truncated keeping </s>") {
  const train::CaptionDataset data = world();
  const text::Tokenizer tokenizer = loader_tokenizer();
  train::PrefetchOptions o = small_options(2);
  o.shuffle = false;
  o.max_text_len = 6;  // two-shape captions have 12 tokens: cut
  train::PrefetchLoader loader(data, tokenizer, o);
  const train::DataBatch b = loader.next();
  REQUIRE(b.images.shape() == Shape{5, 3, 32, 32});
  REQUIRE(b.ids.shape() == Shape{5, 6});
  CHECK(b.samples == std::vector<std::size_t>{0, 1, 2, 3, 4});
  const io::FloatImage expect = io::preprocess_coarse(io::read_image(data.samples[1].image), 32);
  CHECK(std::memcmp(b.images.data() + 3 * 32 * 32, expect.data.data(), expect.data.size() * sizeof(float)) == 0);
  const text::Encoding full = tokenizer.encode(data.samples[0].caption);
  for (int t = 0; t < 5; ++t) CHECK(b.ids.data()[t] == full.ids[std::size_t(t)]);
  CHECK(b.ids.data()[5] == tokenizer.eos_id());
  CHECK(b.attention_mask.data()[5] == 1);

  // Unshortened: padded to the longest in the batch, mask 0 on padding.
  train::CaptionDataset mixed;
  mixed.images = {data.samples[0].image};
  mixed.captions = {{0, 1}};
  mixed.samples = {{data.samples[0].image, "a red circle", 0}, {data.samples[0].image, "a", 0}};
  o.batch_size = 2;
  o.max_text_len = 40;
  train::PrefetchLoader padded(mixed, tokenizer, o);
  const train::DataBatch p = padded.next();
  REQUIRE(p.ids.shape() == Shape{2, 5});
  const std::vector<std::int64_t> ids(p.ids.data(), p.ids.data() + 10), mask(p.attention_mask.data(), p.attention_mask.data() + 10);
  CHECK(ids == std::vector<std::int64_t>{0, 101, 335, 326, 2, 0, 101, 2, 1, 1});
  CHECK(mask == std::vector<std::int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  CHECK(p.image_indices == std::vector<std::size_t>{0, 0});
}

TEST_CASE("a missing or corrupt image fails naming its path, or is skipped and counted") {
  const auto dir = test::fresh_dir("loader_bad");
  train::CaptionDataset data = world();
  // Sample 1's image is gone, sample 2's is a truncated PNG.
  const std::string png = test::file_text(data.samples[2].image);
  test::write_text(dir / "truncated.png", png.substr(0, png.size() / 2));
  data.samples[1].image = dir / "missing.png";
  data.samples[2].image = dir / "truncated.png";
  train::PrefetchOptions o = small_options(2);
  o.shuffle = false;

  {
    train::PrefetchLoader loader(data, loader_tokenizer(), o);
    const std::string message = next_error(loader);
    CHECK(message.find("missing.png': no such file") != std::string::npos);
    CHECK(next_error(loader) == message);  // the run stays failed at that batch
    CHECK(loader.state() == train::LoaderState{0, 0});
  }
  data.samples[1].image = data.samples[0].image;  // only the corrupt one left
  {
    train::PrefetchLoader loader(data, loader_tokenizer(), o);
    CHECK(next_error(loader).find("truncated.png") != std::string::npos);
  }
  data.samples[1].image = dir / "missing.png";
  o.on_bad_image = train::BadImagePolicy::skip;
  std::vector<std::string> warnings;
  o.on_skip = [&](const std::string& m) { warnings.push_back(m); };
  for (int threads : {1, 3}) {
    warnings.clear();
    o.threads = threads;
    train::PrefetchLoader loader(data, loader_tokenizer(), o);
    const train::DataBatch b = loader.next();
    CHECK(b.samples == std::vector<std::size_t>{0, 3, 4});
    CHECK(b.images.shape() == Shape{3, 3, 32, 32});
    CHECK(loader.skipped_images() == 2);
    REQUIRE(warnings.size() == 2);
    CHECK(warnings[0].find("missing.png") != std::string::npos);
    CHECK(warnings[1].find("truncated.png") != std::string::npos);
    CHECK(loader.next().samples == std::vector<std::size_t>{5, 6, 7, 8, 9});
  }
  // Nothing readable: an error after one epoch of empty batches, not a hang.
  for (auto& sample : data.samples) sample.image = dir / "missing.png";
  o.on_skip = nullptr;
  train::PrefetchLoader none(data, loader_tokenizer(), o);
  CHECK(next_error(none).find("no readable image in the data set") != std::string::npos);
  CHECK(none.skipped_images() == 23);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a loader stopped early shuts down without a hang; bad options are errors") {
  for (int threads : {1, 4}) {
    train::PrefetchOptions o = small_options(threads);
    o.queue_batches = 1;
    train::PrefetchLoader loader(world(), loader_tokenizer(), o);
    loader.next();
  }  // destructors join workers blocked on the full queue
  { train::PrefetchLoader never_used(world(), loader_tokenizer(), small_options(2)); }
  train::PrefetchOptions o = small_options(0);
  CHECK_THROWS_WITH_AS(train::PrefetchLoader(world(), loader_tokenizer(), o), doctest::Contains("threads 0"), Error);
  o = small_options(1);
  o.batch_size = 30;
  o.drop_last = true;
  CHECK_THROWS_WITH_AS(train::PrefetchLoader(world(), loader_tokenizer(), o), doctest::Contains("leaves no batch"), Error);
  CHECK_THROWS_WITH_AS(train::PrefetchLoader(train::CaptionDataset{}, loader_tokenizer(), small_options(1)),
                       doctest::Contains("the data set is empty"), Error);
}
