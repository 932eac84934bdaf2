// io::to_tensor / io::load_tensor: checkpoint tensors as fiber::Tensor, compared element by
// element with the contiguous copies the safetensors package wrote from the same torch objects
// (tests/reference/make_checkpoints.py), views and dtype conversions included.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "support/fixtures.hpp"

using namespace fiber;
using namespace fiber::test;

namespace {

template <class T>
std::vector<T> elements(const Tensor<T>& t) {
  const Tensor<T> c = t.contiguous();
  return std::vector<T>(c.data(), c.data() + c.numel());
}

// Bit equality: the dtype fixtures hold NaNs (payloads included), which == would call different.
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace

TEST_CASE("views of shared storages come out as the tensors torch saved (float, double)") {
  const auto ck = io::open_checkpoint(checkpoint_fixture("views.pt"));
  const auto want = expected_for("views.pt");
  for (const char* name : {"itm_score.fc.weight", "rank_output.weight", "transposed_slice", "expanded", "narrow",
                           "permuted", "small_window"}) {
    CAPTURE(name);
    const Tensor<float> got = io::load_tensor<float>(ck, name);
    const auto ref = want.tensors.record(name);
    CHECK(std::vector<std::int64_t>(got.shape().begin(), got.shape().end()) == ref.shape);
    CHECK(elements(got) == ref.to_vector<float>());
    CHECK(elements(io::load_tensor<double>(ck, name)) == ref.to_vector<double>());
  }
}

// The element conversions themselves are checked against torch's in tests/core/test_half.cpp and
// test_tensor_record.cpp; here, that load_tensor<T> applies them with the shape and view intact.
TEST_CASE("half, bfloat16 and integer tensors convert to the requested element type") {
  const auto ck = io::open_checkpoint(checkpoint_fixture("dtypes.pt"));
  const auto want = expected_for("dtypes.pt");
  for (const char* name : {"f16", "bf16", "f64", "i32", "u8"}) {
    CAPTURE(name);
    CHECK(same_bits(elements(io::load_tensor<float>(ck, name)), want.tensors.record(name).to_vector<float>()));
  }
  CHECK(elements(io::load_tensor<std::int64_t>(ck, "i64")) == want.tensors.record("i64").to_vector<std::int64_t>());
  const Tensor<float> scalar = io::load_tensor<float>(ck, "scalar");
  CHECK(scalar.shape().rank() == 0);
  CHECK(scalar.item() == 2.5f);
  CHECK(io::load_tensor<float>(ck, "empty").numel() == 0);
}

TEST_CASE("a tensor fiber cannot hold or convert gives an Error naming it") {
  const auto ck = io::open_checkpoint(checkpoint_fixture("dtypes.pt"));
  CHECK_THROWS_WITH_AS(io::load_tensor<std::int64_t>(ck, "f32"), doctest::Contains("cannot convert F32 to I64"), Error);
  CHECK_THROWS_WITH_AS(io::load_tensor<float>(ck, "nope"), doctest::Contains("no tensor named 'nope'"), Error);
  io::TensorRecord seven = ck.record("f32");
  seven.shape = {1, 1, 1, 1, 1, 4, 8};
  seven.strides = {32, 32, 32, 32, 32, 8, 1};
  CHECK_THROWS_WITH_AS(io::to_tensor<float>(seven), doctest::Contains("'f32' has 7 dimensions"), Error);
}
