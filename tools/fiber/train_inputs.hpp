#pragma once
// What `fiber train coarse` and `fiber train fine` both read: the run directory of --out or
// --resume, the training file of --data and the tokenizer (--vocab/--merges, or the files beside
// the data).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/text/tokenizer.hpp"
#include "fiber/train/checkpoint_file.hpp"

namespace fiber::cli::detail {

// The run directory: --resume RUN continues RUN; a fresh run (--out) must not go where another
// run's checkpoints are (they would mix, and a later --resume would pick the other run's newest).
inline std::filesystem::path run_directory(const std::string& out, const std::string& resume) {
  FIBER_CHECK(resume.empty() || out.empty() || std::filesystem::path(out) == std::filesystem::path(resume),
              "fiber train: --out and --resume name different runs (", excerpt(out, 100), ", ", excerpt(resume, 100),
              "); --resume RUN continues RUN");
  const std::filesystem::path run_dir = resume.empty() ? std::filesystem::path(out) : std::filesystem::path(resume);
  FIBER_CHECK(!resume.empty() || train::list_checkpoints(run_dir).empty(), "fiber train: --out ", excerpt(out, 200),
              " already holds checkpoints of an earlier run; continue it with --resume ", excerpt(out, 200),
              " or choose another directory");
  return run_dir;
}

// With --resume RUN: the trainer continues from RUN's newest readable checkpoint (said on stdout) and
// the step it resumes at is returned; a fresh run starts at 0.
template <class Trainer>
std::int64_t resume_if_asked(Trainer& trainer, const std::string& resume, std::int64_t steps) {
  if (resume.empty()) return 0;
  const auto r = trainer.resume();
  FIBER_CHECK(r.resumed, "fiber train: --resume ", excerpt(resume, 200), " holds no readable checkpoint");
  std::printf("resumed %s at step %lld of %lld\n", excerpt(r.file.string(), 200).c_str(), static_cast<long long>(r.step),
              static_cast<long long>(steps));
  return r.step;
}

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
