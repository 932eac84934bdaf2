#pragma once
// `fiber retrieve`: image-text retrieval over a folder of images and a file of texts.
//   fiber retrieve --weights W --vocab V --merges M --images DIR --texts FILE [--top K] [--rerank K] [--json]
// Every image and text is embedded once (ITC) and both directions are ranked by cosine
// similarity. With --rerank K, each query's top K are re-scored by the fused model's ITM
// retrieval score (rank_output, as the official ITM recall) and re-ordered by it: the official
// code scores every pair with the fused model; the shortlist makes that usable on real
// collections. Images are the regular files of DIR sorted by name; texts are the non-empty lines
// of FILE. JSON: {"image_to_text": [[{"index": i, "score": s, "itm": r}, ...], ...],
// "text_to_image": [...]}, one list per query in input order, best first.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "coarse_cli.hpp"
#include "fiber/core/read_file.hpp"

namespace fiber::cli {

namespace detail {
inline std::vector<std::filesystem::path> image_files(const std::string& dir) {
  std::error_code ec;
  FIBER_CHECK(std::filesystem::is_directory(dir, ec), "retrieve: --images '", dir, "' is not a directory");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
  FIBER_CHECK(!files.empty(), "retrieve: no files in '", dir, "'");
  return files;
}

inline std::vector<std::string> text_lines(const std::string& file) {
  const std::string content = fiber::detail::read_whole_file<std::string>(file, "texts file");
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= content.size()) {
    std::size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string line = content.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    start = end + 1;
  }
  FIBER_CHECK(!lines.empty(), "retrieve: '", file, "' has no non-empty lines");
  return lines;
}

struct Hit {
  std::int64_t index;
  double score;
  bool reranked = false;
  double itm = 0;
};
}  // namespace detail

void add_retrieve_command(CLI::App& app, CommandList& commands) {
  struct Args : CoarseArgs {
    std::string images, texts;
    std::int64_t top = 5, rerank = 0, batch = 8;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("retrieve", "Image-text retrieval with coarse FIBER (ITC ranking, optional ITM re-ranking)");
  add_coarse_options(sub, *args);
  sub->add_option("--images", args->images, "a folder of images (PNG or JPEG), taken in file-name order")->required();
  sub->add_option("--texts", args->texts, "a text file, one text per non-empty line")->required();
  sub->add_option("--top", args->top, "results per query (default 5)")->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 30));
  sub->add_option("--rerank", args->rerank, "re-score each query's top K by ITM (default 0: off)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 30));
  sub->add_option("--batch", args->batch, "images per forward pass (default 8)")->check(CLI::Range(1, 1024));
  commands.add(sub, [args]() -> int {
    const auto files = detail::image_files(args->images);
    const auto texts = detail::text_lines(args->texts);
    return with_coarse_pipeline(*args, [&](const auto& fiber) {
      const std::int64_t ni = std::int64_t(files.size()), nt = std::int64_t(texts.size());
      // Embeddings, each computed once: images in batches, texts together.
      std::vector<Tensor<float>> parts;
      for (std::int64_t b = 0; b < ni; b += args->batch) {
        const std::int64_t n = std::min(args->batch, ni - b);
        parts.push_back(fiber.embed_images(fiber.load_images(std::span(files).subspan(std::size_t(b), std::size_t(n)))));
      }
      const Tensor<float> img = concat(parts, 0);
      const TextBatch tokens = fiber.tokenize(texts);
      const Tensor<float> txt = fiber.embed_texts(tokens);
      const Tensor<float> sim = matmul(img, txt.t());  // [ni, nt]
      // One direction: queries along rows of `scores`; `itm(q, c)` scores a shortlist.
      auto rank = [&](const Tensor<float>& scores, std::int64_t nq, std::int64_t nc, bool images_are_queries) {
        std::vector<std::vector<detail::Hit>> out(static_cast<std::size_t>(nq));
        const Tensor<float> s = scores.contiguous();
        for (std::int64_t q = 0; q < nq; ++q) {
          std::vector<detail::Hit> hits;
          for (std::int64_t c = 0; c < nc; ++c) hits.push_back({c, double(s.data()[q * nc + c])});
          std::stable_sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
          const std::int64_t k = std::min(args->rerank, nc);
          if (k > 0) {
            // The pairs (query, candidate) of the shortlist through the fused model.
            std::vector<std::filesystem::path> pair_images;
            std::vector<std::string> pair_texts;
            for (std::int64_t j = 0; j < k; ++j) {
              const std::int64_t i = images_are_queries ? q : hits[j].index, t = images_are_queries ? hits[j].index : q;
              pair_images.push_back(files[std::size_t(i)]);
              pair_texts.push_back(texts[std::size_t(t)]);
            }
            const MatchScores m = fiber.itm_scores(fiber.load_images(pair_images), fiber.tokenize(pair_texts));
            for (std::int64_t j = 0; j < k; ++j) {
              hits[j].reranked = true;
              hits[j].itm = m.rank_score.data()[j];
            }
            std::stable_sort(hits.begin(), hits.begin() + k, [](const auto& a, const auto& b) { return a.itm > b.itm; });
          }
          hits.resize(std::size_t(std::min(args->top, nc)));
          out[std::size_t(q)] = std::move(hits);
        }
        return out;
      };
      const auto i2t = rank(sim, ni, nt, true);
      const auto t2i = rank(sim.t(), nt, ni, false);
      if (args->json) {
        auto to_json = [](const std::vector<std::vector<detail::Hit>>& all) {
          nlohmann::json out = nlohmann::json::array();
          for (const auto& hits : all) {
            nlohmann::json list = nlohmann::json::array();
            for (const auto& h : hits) {
              nlohmann::json e{{"index", h.index}, {"score", h.score}};
              if (h.reranked) e["itm"] = h.itm;
              list.push_back(e);
            }
            out.push_back(list);
          }
          return out;
        };
        std::cout << nlohmann::json{{"image_to_text", to_json(i2t)}, {"text_to_image", to_json(t2i)}}.dump() << "\n";
      } else {
        for (std::int64_t q = 0; q < ni; ++q) {
          std::printf("image %s\n", files[std::size_t(q)].filename().string().c_str());
          for (const auto& h : i2t[std::size_t(q)])
            std::printf("  %.4f  %s\n", h.reranked ? h.itm : h.score, texts[std::size_t(h.index)].c_str());
        }
        for (std::int64_t q = 0; q < nt; ++q) {
          std::printf("text %s\n", texts[std::size_t(q)].c_str());
          for (const auto& h : t2i[std::size_t(q)])
            std::printf("  %.4f  %s\n", h.reranked ? h.itm : h.score, files[std::size_t(h.index)].filename().string().c_str());
        }
      }
      return 0;
    });
  });
}

}  // namespace fiber::cli
