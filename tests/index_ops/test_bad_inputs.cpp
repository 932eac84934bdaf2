// Every malformed input is a fiber::Error whose message names the op and what was wrong.
#include <doctest/doctest.h>

#include <limits>

#include "fiber/fiber.hpp"

using doctest::Contains;
using fiber::InterpolateMode;
using fiber::Tensor;
using fiber::Var;
using Ids = Tensor<std::int64_t>;

// Index element types are checked at compile time: only integer tensors are accepted.
template <class I>
concept CanIndexSelect = requires(Tensor<float> x, Tensor<I> i) { fiber::index_select(x, 0, i); };
template <class I>
concept CanEmbed = requires(Tensor<float> w, Tensor<I> i) { fiber::embedding(w, i); };
static_assert(CanIndexSelect<std::int64_t> && CanIndexSelect<std::int32_t>);
static_assert(!CanIndexSelect<float> && !CanIndexSelect<double> && !CanIndexSelect<bool>);
static_assert(CanEmbed<std::int64_t> && !CanEmbed<float>);

TEST_CASE("index_select: out-of-range and negative indices, index rank") {
  auto x = Tensor<float>::zeros({3, 4});
  CHECK_THROWS_WITH_AS(fiber::index_select(x, 1, Ids::from_data({3}, {0, 1, 4})),
                       Contains("index_select: index 4 at position [2] of the index tensor (shape [3]) is out of range for the "
                                "selected dimension of size 4"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::index_select(x, 0, Ids::from_data({2}, {-1, 0})), Contains("index -1 at position [0]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::index_select(x, 0, Ids::zeros({2, 2})), Contains("index_select: indices must be 0-D or 1-D, got shape [2, 2]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::index_select(x, 2, Ids::zeros({1})), Contains("index_select: axis 2 is out of range for shape [3, 4]"),
                       fiber::Error);
  Var<float> v(x, true);
  CHECK_THROWS_WITH_AS(fiber::index_select(v, 0, Ids::from_data({1}, {3})), Contains("index 3"), fiber::Error);
}

TEST_CASE("gather: rank, sizes and index values") {
  auto x = Tensor<float>::zeros({2, 3});
  CHECK_THROWS_WITH_AS(fiber::gather(x, 1, Ids::zeros({2})), Contains("gather: index of shape [2] must have the same rank as the input of shape [2, 3]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::gather(x, 1, Ids::zeros({3, 1})), Contains("is larger than the input of shape [2, 3] in dimension 0"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::gather(x, 1, Ids::from_data({2, 2}, {0, 1, 3, 0})),
                       Contains("gather: index 3 at position [1, 0] of the index tensor (shape [2, 2]) is out of range for the gathered "
                                "dimension of size 3"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::gather(x, 0, Ids::from_data({1, 1}, {-2})), Contains("index -2"), fiber::Error);
}

TEST_CASE("embedding: weight rank, ids out of range, padding_idx out of range") {
  auto w = Tensor<float>::zeros({10, 4});
  CHECK_THROWS_WITH_AS(fiber::embedding(Tensor<float>::zeros({10}), Ids::zeros({2})),
                       Contains("embedding: weight must be 2-D [num_embeddings, dim], got shape [10]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::embedding(w, Ids::from_data({2, 2}, {1, 10, 0, 0})),
                       Contains("embedding: index 10 at position [0, 1] of the index tensor (shape [2, 2]) is out of range for the "
                                "table's rows (num_embeddings) of size 10"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::embedding(w, Ids::from_data({1}, {0}), 10),
                       Contains("embedding: padding_idx 10 is out of range for a table of 10 rows"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::embedding(Var<float>(w, true), Ids::from_data({1}, {0}), -11), Contains("padding_idx -11"), fiber::Error);
}

TEST_CASE("one_hot: negative ids, ids beyond num_classes, nothing to infer from") {
  CHECK_THROWS_WITH_AS(fiber::one_hot(Ids::from_data({2}, {1, -1}), 3), Contains("one_hot: index -1 at position [1]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::one_hot(Ids::from_data({2}, {1, 3}), 3), Contains("one_hot: index 3 at position [1]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::one_hot(Ids::from_data({0}, {})), Contains("one_hot: cannot infer num_classes from empty ids"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::one_hot(Ids::from_data({1}, {0}), -2), Contains("one_hot: num_classes must be -1 (infer) or non-negative, got -2"),
                       fiber::Error);
}

TEST_CASE("concat and stack: shapes, ranks, axes, empty lists") {
  auto a = Tensor<float>::zeros({3, 4}), b = Tensor<float>::zeros({2, 5}), c = Tensor<float>::zeros({3, 4, 1});
  CHECK_THROWS_WITH_AS(fiber::concat({a, b}, 0),
                       Contains("concat: input 1 has shape [2, 5] but input 0 has shape [3, 4]; sizes must match in every dimension "
                                "except axis 0 (they differ in dimension 1)"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::concat({a, c}, 1), Contains("concat: input 1 has shape [3, 4, 1] of rank 3 but input 0 has shape [3, 4] of rank 2"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::concat({a, a}, 2), Contains("concat: axis 2 is out of range for shape [3, 4]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::concat(std::vector<Tensor<float>>{}, 0), Contains("concat: needs at least one input"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::concat({Tensor<float>::scalar(1), Tensor<float>::scalar(2)}), Contains("concat: input 0 is zero-dimensional"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::concat({Var<float>(a, true), Var<float>(b)}, 1), Contains("concat: input 1 has shape [2, 5]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::stack({a, a.t()}, 0), Contains("stack: input 1 has shape [4, 3] but input 0 has shape [3, 4]; all inputs must have "
                                                            "the same shape"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::stack({a, a}, 3), Contains("stack: axis 3 is out of range for inputs of shape [3, 4] (expected in [-3, 2])"),
                       fiber::Error);
}

TEST_CASE("split and chunk: sizes that do not add up, zero and negative counts") {
  auto x = Tensor<float>::zeros({2, 7});
  CHECK_THROWS_WITH_AS(fiber::split(x, std::vector<std::int64_t>{3, 3}, 1),
                       Contains("split: piece sizes sum to 6 but dimension 1 of shape [2, 7] has size 7"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::split(x, std::vector<std::int64_t>{8, -1}, 1), Contains("split: size -1 of piece 1 is negative"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::split(x, 0, 1), Contains("split: piece size 0 is only allowed for an empty dimension"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::split(x, -2, 0), Contains("split: piece size must be non-negative, got -2"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::chunk(x, 0, 1), Contains("chunk: number of chunks must be positive, got 0"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::chunk(Var<float>(x, true), -3, 1), Contains("chunk: number of chunks must be positive, got -3"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::chunk(x, 2, 2), Contains("chunk: axis 2 is out of range for shape [2, 7]"), fiber::Error);
}

TEST_CASE("interpolate: sizes, scale factors, modes, ranks") {
  auto x = Tensor<float>::zeros({1, 2, 4, 5});
  using M = InterpolateMode;
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.size = {0, 3}}), Contains("interpolate: output size 0 for spatial dimension 0 must be > 0"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.size = {3, -2}, .mode = M::bilinear}), Contains("output size -2 for spatial dimension 1"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.size = {2, 2, 2}}), Contains("interpolate: size has 3 values for an input of shape [1, 2, 4, 5]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.size = {2}, .scale_factor = {2.0}}), Contains("give exactly one of size and scale_factor (got both)"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {}), Contains("give exactly one of size and scale_factor (got neither)"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.scale_factor = {0.2}}),
                       Contains("interpolate: scale_factor 0.2 gives output size 0 for input size 4 in spatial dimension 0"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.scale_factor = {-1.0}}), Contains("scale_factor -1 for spatial dimension 0 must be finite and > 0"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.scale_factor = {std::numeric_limits<double>::quiet_NaN()}}), Contains("must be finite and > 0"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.scale_factor = {1e12}}), Contains("too large"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.size = {8, 8}, .mode = M::nearest, .align_corners = false}),
                       Contains("interpolate: align_corners can only be set with modes linear, bilinear and bicubic, not 'nearest'"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x, {.size = {8}, .mode = M::linear}), Contains("mode 'linear' needs a 3-D [N, C, W] input"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(x.select(0, 0), {.size = {8}, .mode = M::bilinear}),
                       Contains("interpolate: mode 'bilinear' needs a 4-D [N, C, H, W] input, got shape [2, 4, 5]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(Tensor<float>::zeros({4, 5}), {.size = {8}}),
                       Contains("interpolate: expects a 3-D [N, C, W] or 4-D [N, C, H, W] input, got shape [4, 5]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::interpolate(Tensor<float>::zeros({1, 1, 0, 5}), {.size = {8}}),
                       Contains("interpolate: spatial dimension 2 of input shape [1, 1, 0, 5] is empty"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::upsample_bilinear(Var<float>(x, true), {0, 4}), Contains("output size 0"), fiber::Error);
}

TEST_CASE("adaptive_avg_pool: output sizes, ranks, empty inputs") {
  auto x = Tensor<float>::zeros({1, 2, 4, 5});
  CHECK_THROWS_WITH_AS(fiber::adaptive_avg_pool2d(x, {3, -1}), Contains("adaptive_avg_pool2d: output size -1 (dimension 1) must not be negative"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::adaptive_avg_pool2d(x, {1, 2, 3}), Contains("adaptive_avg_pool2d: output size needs 1 or 2 values, got 3"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::adaptive_avg_pool2d(Tensor<float>::zeros({4, 5}), {2}),
                       Contains("adaptive_avg_pool2d: expects a 3-D or 4-D input ([C, H, W] or [N, C, H, W]), got shape [4, 5]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::adaptive_avg_pool2d(Tensor<float>::zeros({1, 2, 0, 5}), {2}),
                       Contains("adaptive_avg_pool2d: spatial dimension 2 of shape [1, 2, 0, 5] is empty"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::adaptive_avg_pool1d(x, 2), Contains("adaptive_avg_pool1d: expects a 2-D or 3-D input ([C, L] or [N, C, L])"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::adaptive_avg_pool1d(Var<float>(Tensor<float>::zeros({2, 3}), true), -4),
                       Contains("adaptive_avg_pool1d: output size -4"), fiber::Error);
}
