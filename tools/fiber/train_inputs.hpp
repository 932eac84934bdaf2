#pragma once
// What `fiber train coarse` and `fiber train fine` both read: the training file of --data and
// the tokenizer (--vocab/--merges, or the files beside the data).
#include <filesystem>
#include <string>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/text/tokenizer.hpp"

namespace fiber::cli::detail {

// The training file of --data: a file as given, or DIR/train.json, else DIR/train.jsonl.
inline std::filesystem::path training_file(const std::filesystem::path& data) {
  FIBER_CHECK(std::filesystem::exists(data), "fiber train: --data ", excerpt(data.string(), 200), " does not exist");
  if (!std::filesystem::is_directory(data)) return data;
  for (const char* name : {"train.json", "train.jsonl"})
    if (std::filesystem::exists(data / name)) return data / name;
  fail("fiber train: --data ", excerpt(data.string(), 200), " is a directory without train.json or train.jsonl");
}

// --vocab and --merges when given, else vocab.json and merges.txt beside the data.
inline text::Tokenizer training_tokenizer(const std::string& data, const std::string& vocab, const std::string& merges) {
  FIBER_CHECK(vocab.empty() == merges.empty(), "fiber train: give --vocab and --merges together");
  if (!vocab.empty()) return text::Tokenizer::from_files(vocab, merges);
  std::filesystem::path d = data;
  if (!std::filesystem::is_directory(d)) d = d.parent_path();
  FIBER_CHECK(std::filesystem::exists(d / "vocab.json") && std::filesystem::exists(d / "merges.txt"),
              "fiber train: no tokenizer: give --vocab and --merges (roberta-base's), or put vocab.json and merges.txt "
              "beside the data (", excerpt(d.string(), 200), ")");
  return text::Tokenizer::from_files(d / "vocab.json", d / "merges.txt");
}

}  // namespace fiber::cli::detail
