#pragma once
// What `fiber embed`, `fiber match` and `fiber retrieve` share: the --weights/--vocab/--merges
// options, and running a body with the CoarsePipeline of whichever coarse configuration the
// weights hold.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/coarse_pipeline.hpp"
#include "fiber/models/coarse_variants.hpp"

namespace fiber::cli {

struct CoarseArgs {
  std::string weights, vocab, merges;
  bool json = false;
};

inline void add_coarse_options(CLI::App* sub, CoarseArgs& a) {
  sub->add_option("--weights", a.weights, "FIBER coarse weights: the official Lightning .ckpt or safetensors")->required();
  sub->add_option("--vocab", a.vocab, "roberta-base vocab.json")->required();
  sub->add_option("--merges", a.merges, "roberta-base merges.txt")->required();
  sub->add_flag("--json", a.json, "print JSON");
}

// Loads the pipeline for the weights' configuration and calls body(pipeline).
template <class Body>
int with_coarse_pipeline(const CoarseArgs& a, Body&& body) {
  const io::Checkpoint checkpoint = io::open_checkpoint(a.weights);
  return models::with_coarse_config(checkpoint, [&]<models::FiberCoarseConfig C>() -> int {
    using Pipeline = CoarsePipeline<C>;
    auto model = std::make_shared<typename Pipeline::Model>();
    nn::load_state_dict<float>(*model, checkpoint, Pipeline::Model::load_options());
    const Pipeline pipeline(std::move(model), text::Tokenizer::from_files(a.vocab, a.merges));
    return body(pipeline);
  });
}

// Row i of a [N, D] tensor as a JSON array.
inline nlohmann::json json_row(const Tensor<float>& t, std::int64_t i) {
  nlohmann::json row = nlohmann::json::array();
  const Tensor<float> r = t.select(0, i).contiguous();
  for (std::int64_t j = 0; j < r.numel(); ++j) row.push_back(r.data()[j]);
  return row;
}

}  // namespace fiber::cli
