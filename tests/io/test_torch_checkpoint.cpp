// Torch zip checkpoints written by torch.save (fixtures from tests/reference/make_checkpoints.py)
// against the contiguous tensors the safetensors package wrote from the same objects: names in
// state-dict order, dtype, shape and every byte; placeholders as recorded by the script.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <string>

#include "fiber/io/open_checkpoint.hpp"
#include "support/fixtures.hpp"
#include "support/pickle_builder.hpp"

using namespace fiber;
using namespace fiber::test;

namespace {

void check_parity(const std::string& fixture, const std::string& expected_name, io::CheckpointLayout layout,
                  const io::OpenOptions& options = {}) {
  CAPTURE(fixture);
  auto ck = io::open_checkpoint(checkpoint_fixture(fixture), options);
  auto want = expected_for(expected_name);
  CHECK(ck.format() == io::CheckpointFormat::torch_zip);
  CHECK(ck.layout() == layout);
  CHECK(ck.names() == want.names);
  for (const auto& name : want.names) {
    CAPTURE(name);
    REQUIRE(ck.contains(name));
    const auto got = ck.record(name);
    const auto ref = want.tensors.record(name);
    CHECK(got.dtype == ref.dtype);
    CHECK(got.shape == ref.shape);
    CHECK(same_bytes(got, ref));
  }
  std::vector<std::string> placeholders;
  for (const auto& p : ck.placeholders()) placeholders.push_back(p.path + " " + p.type);
  std::sort(placeholders.begin(), placeholders.end());
  CHECK(placeholders == want.placeholders);
}

}  // namespace

TEST_CASE("every dtype, scalars and empty tensors match torch") {
  check_parity("dtypes.pt", "dtypes.pt", io::CheckpointLayout::state_dict);
}

TEST_CASE("parameters saved with _rebuild_parameter") {
  check_parity("parameters.pt", "parameters.pt", io::CheckpointLayout::state_dict);
}

TEST_CASE("views that share storages, transposed slices, stride 0 and offsets") {
  check_parity("views.pt", "views.pt", io::CheckpointLayout::state_dict);
  auto ck = io::open_checkpoint(checkpoint_fixture("views.pt"));
  const auto fc = ck.record("itm_score.fc.weight");
  const auto rank = ck.record("rank_output.weight");
  CHECK(fc.storage.data() == rank.storage.data());  // one storage, two views, no copy
  CHECK(rank.storage_offset == 16);
  CHECK(rank.shape == std::vector<std::int64_t>{1, 16});
  const auto t = ck.info("transposed_slice");
  CHECK(t.strides == std::vector<std::int64_t>{1, 4});
  CHECK(t.storage_offset == 1);
  CHECK_FALSE(t.is_contiguous());
  CHECK(ck.info("expanded").strides == std::vector<std::int64_t>{0, 1});
}

TEST_CASE("Lightning checkpoint: state_dict without prefix, optimizer and hyper-parameters as placeholders") {
  check_parity("lightning.ckpt", "lightning.ckpt", io::CheckpointLayout::lightning);
  auto ck = io::open_checkpoint(checkpoint_fixture("lightning.ckpt"));
  CHECK(ck.contains("image_queue"));
  CHECK_FALSE(ck.contains("state_dict.temp"));
  CHECK(ck.info("temp").shape.empty());
}

TEST_CASE("maskrcnn_benchmark checkpoint: model with 'module.' stripped") {
  check_parity("maskrcnn.pth", "maskrcnn.pth", io::CheckpointLayout::maskrcnn_benchmark);
}

TEST_CASE("maskrcnn_benchmark checkpoint: model_ema chosen by state_dict_key; a missing key or a non-dict is an error") {
  check_parity("maskrcnn_ema.pth", "maskrcnn_ema.pth.model", io::CheckpointLayout::maskrcnn_benchmark);
  io::OpenOptions ema;
  ema.state_dict_key = "model_ema";
  check_parity("maskrcnn_ema.pth", "maskrcnn_ema.pth.model_ema", io::CheckpointLayout::maskrcnn_benchmark, ema);
  io::OpenOptions missing;
  missing.state_dict_key = "model_ema";
  CHECK_THROWS_WITH_AS(io::open_checkpoint(checkpoint_fixture("maskrcnn.pth"), missing),
                       doctest::Contains("has no top-level 'model_ema'"), Error);
  io::OpenOptions scalar;
  scalar.state_dict_key = "iteration";
  CHECK_THROWS_WITH_AS(io::open_checkpoint(checkpoint_fixture("maskrcnn_ema.pth"), scalar),
                       doctest::Contains("not a state dict"), Error);
  CHECK_THROWS_WITH_AS(io::open_checkpoint(checkpoint_fixture("dtypes.pt.expected.safetensors"), ema),
                       doctest::Contains("holds one state dict"), Error);
}

TEST_CASE("everything: every tensor of the file by its full path, optimizer state included") {
  io::OpenOptions options;
  options.everything = true;
  auto ck = io::open_checkpoint(checkpoint_fixture("lightning.ckpt"), options);
  CHECK(ck.layout() == io::CheckpointLayout::everything);
  CHECK(ck.contains("state_dict.temp"));
  CHECK(ck.contains("optimizer_states.0.state.0.exp_avg"));
  CHECK(ck.contains("optimizer_states.0.state.3.step"));
  CHECK(ck.contains("callbacks.ModelCheckpoint{'monitor': 'val/the_metric', 'mode': 'max'}.best_model_score"));
  const auto score = ck.record("callbacks.ModelCheckpoint{'monitor': 'val/the_metric', 'mode': 'max'}.best_model_score");
  CHECK(score.to_vector<float>() == std::vector<float>{0.75f});
  // exp_avg after one AdamW step has the parameter's shape.
  CHECK(ck.info("optimizer_states.0.state.0.exp_avg").shape == ck.info("state_dict.vit_model.patch_embed.proj.weight").shape);
}

TEST_CASE("archive variants: protocol 4, zip64 records, deflated entries, old layout under another prefix") {
  for (const char* fixture : {"small.pt", "protocol4.pt", "zip64.pt", "deflated.pt", "old_layout.pt"})
    check_parity(fixture, "small.pt", io::CheckpointLayout::state_dict);
  auto old = io::open_checkpoint(checkpoint_fixture("old_layout.pt"));
  // No byteorder entry (torch < 1.10): little-endian.
  CHECK(old.metadata() == io::Metadata{{"version", "3"}, {".data/version", "3"}});
  auto zip64 = io::open_checkpoint(checkpoint_fixture("zip64.pt"));
  CHECK(zip64.record("a.weight").to_vector<float>().size() == 12);
}

TEST_CASE("stored storages are zero-copy views of the file's bytes") {
  const Bytes file = read_bytes(checkpoint_fixture("small.pt"));
  auto ck = io::open_checkpoint(io::borrowed_bytes(file, "small.pt"));
  const io::ZipArchive zip(io::borrowed_bytes(file, "small.pt"));
  const auto r = ck.record("a.weight");
  CHECK(r.storage.data() == file.data() + zip.find("small/data/0")->data_offset);
  CHECK(r.storage.size() == 48);
  CHECK(r.data_if_in_place<float>() != nullptr);  // torch aligns storages to 64 bytes
  // From a mapped file the record keeps the mapping alive after the checkpoint is gone.
  io::TensorRecord kept = io::open_checkpoint(checkpoint_fixture("small.pt")).record("c.idx");
  CHECK(kept.keep_alive != nullptr);
  CHECK(kept.to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6});
}

TEST_CASE("a state-dict entry fiber cannot read is reported, the rest loads") {
  auto ck = io::open_checkpoint(checkpoint_fixture("complex.pt"));
  CHECK(ck.names() == std::vector<std::string>{"ok"});
  CHECK(ck.record("ok").to_vector<float>() == std::vector<float>{1, 1});
  CHECK_THROWS_WITH_AS(ck.record("z"), doctest::Contains("'z' cannot be read: it is an object built by 'torch.ComplexFloatStorage'"),
                       Error);
  REQUIRE(ck.placeholders().size() == 1);
  CHECK(ck.placeholders()[0].path == "z");
}

TEST_CASE("tensors are read lazily: a corrupt storage nobody asks for does no harm") {
  std::vector<TorchTensorSpec> tensors = {{"good", DType::f32, {2}, {}}, {"bad", DType::f32, {2}, {}}};
  const float good[2] = {1.5f, -2.0f};
  tensors[0].data.resize(8);
  std::memcpy(tensors[0].data.data(), good, 8);
  tensors[1].data.resize(8);
  ZipLayout layout;
  Bytes file = ZipBuilder()
                   .add("archive/data.pkl", torch_state_dict_pickle(tensors))
                   .add("archive/byteorder", "little")
                   .add("archive/data/0", tensors[0].data)
                   .add("archive/data/1", tensors[1].data)
                   .build({}, &layout);
  file[layout.data_offsets[3]] ^= std::byte{1};  // storage of "bad" no longer matches its CRC
  io::OpenOptions verify;
  verify.verify_checksums = true;
  auto ck = io::open_checkpoint(io::borrowed_bytes(file, "lazy.pt"), verify);
  CHECK(ck.record("good").to_vector<float>() == std::vector<float>{1.5f, -2.0f});
  CHECK_THROWS_WITH_AS(ck.record("bad"), doctest::Contains("lazy.pt: zip entry 'archive/data/1': CRC-32 mismatch"), Error);
  // Storage checksums are opt-in (like torch.load): by default the damaged bytes load.
  CHECK(io::open_checkpoint(io::borrowed_bytes(file, "lazy.pt")).record("bad").numel() == 2);
}

TEST_CASE("checkpoints built like torch.save (data descriptors, zip64 extras) read back") {
  std::vector<TorchTensorSpec> tensors = {{"w", DType::bf16, {3}, {}}, {"n", DType::i64, {}, {}}};
  const std::uint16_t w[3] = {0x3f80, 0x4000, 0xc040};  // 1, 2, -3
  tensors[0].data.resize(6);
  std::memcpy(tensors[0].data.data(), w, 6);
  const std::int64_t n = -9;
  tensors[1].data.resize(8);
  std::memcpy(tensors[1].data.data(), &n, 8);
  std::vector<const Bytes*> storages = {&tensors[0].data, &tensors[1].data};
  const Bytes pickle = torch_state_dict_pickle(tensors);
  for (bool zip64 : {false, true})
    for (bool descriptor : {false, true}) {
      CAPTURE(zip64);
      CAPTURE(descriptor);
      const Bytes file = torch_zip(pickle, storages, "my model/",
                                   {.align = 64, .zip64 = zip64, .data_descriptor = descriptor, .comment = "a comment"});
      auto ck = io::open_checkpoint(io::borrowed_bytes(file, "built.pt"));
      CHECK(ck.record("w").to_vector<float>() == std::vector<float>{1, 2, -3});
      CHECK(ck.record("n").to_vector<std::int64_t>() == std::vector<std::int64_t>{-9});
    }
}

TEST_CASE("copies from a mapped file (pread path) equal copies from the same bytes in memory") {
  // 300 KB contiguous tensors take the pread() path; a transposed one does not.
  std::vector<TorchTensorSpec> tensors = {{"big", DType::f32, {300, 256}, Bytes(300 * 256 * 4)},
                                          {"bf", DType::bf16, {512, 512}, Bytes(512 * 512 * 2)}};
  for (auto& t : tensors)
    for (std::size_t i = 0; i < t.data.size(); ++i) t.data[i] = std::byte((i * 7919) >> 3);
  const Bytes file = build_torch_checkpoint(tensors);
  const std::string path = (std::filesystem::temp_directory_path() / ("fiber_pread_" + std::to_string(::getpid()) + ".pt")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.data()), std::streamsize(file.size()));
  }
  auto mapped = io::open_checkpoint(path);
  auto memory = io::open_checkpoint(io::borrowed_bytes(file, "memory.pt"));
  for (std::string name : {"big", "bf"}) {
    CAPTURE(name);
    const auto a = mapped.record(name), b = memory.record(name);
    CHECK(a.mapping != nullptr);
    CHECK(b.mapping == nullptr);
    CHECK(same_bytes(a, b));
    // A chunk in the middle, and a conversion (which reads through the mapping).
    std::vector<float> x(70000), y(70000);
    a.copy_to(std::span<float>(x), 123);
    b.copy_to(std::span<float>(y), 123);
    CHECK(std::memcmp(x.data(), y.data(), x.size() * 4) == 0);  // bitwise: random bytes hold NaNs
  }
  std::filesystem::remove(path);
}
