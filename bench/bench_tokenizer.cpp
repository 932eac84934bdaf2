// Tokenizer throughput on a generated corpus (mixed English, accented Latin, Cyrillic, Arabic,
// CJK, emoji, digits, punctuation, contractions, white space), one document per line.
//   bench_tokenizer [--corpus FILE] [--mb 20] [--vocab V --merges M] [--repeat 3]
// Writes the corpus to FILE when FILE does not exist (so bench_tokenizer_hf.py reads the very
// same text), then times encode() one document at a time on one thread and encode_batch() on
// fiber's thread pool; reports tokens/s (best of --repeat runs). The last line is JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "fiber/fiber.hpp"

namespace {

const char* english[] = {"the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on",
                         "are", "as", "with", "they", "at", "be", "this", "have", "from", "or", "one", "had",
                         "by", "word", "but", "not", "what", "all", "were", "when", "your", "can", "said",
                         "there", "use", "each", "which", "she", "how", "their", "will", "other", "about",
                         "many", "then", "them", "some", "would", "make", "like", "time", "look", "more",
                         "write", "number", "people", "water", "called", "sentence", "picture", "camera",
                         "red", "mug", "left", "laptop", "person", "umbrella", "standing", "holding", "Hello",
                         "World", "NASA", "Transformer", "grounding", "phrase", "region", "bicycle"};
const char* others[] = {"café", "naïve", "résumé", "über", "straße", "São", "Zürich", "Łódź", "привет", "мир",
                        "Москва", "слово", "مرحبا", "بالعالم", "كتاب", "你好", "世界", "中文", "東京", "日本語",
                        "こんにちは", "한국어", "नमस्ते", "ελληνικά", "e\u0301", "42", "2024", "3.14159",
                        "1,000,000", "$5.99", "12:30", "٣٤٥", "½", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "🔥"};
const char* contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "’s"};
const char* punct[] = {".", ",", "!", "?", ";", ":", "—", "…", "(", ")", "\"", "«", "»", "。"};
const char* spaces[] = {"  ", "\t", " \u00a0", "\u3000", "   "};

// Deterministic on every platform: raw 64-bit draws, no std distributions.
std::string generate_corpus(std::size_t bytes) {
  std::mt19937_64 rng(20261123);
  auto pick = [&](auto& table) { return table[rng() % std::size(table)]; };
  std::string out;
  out.reserve(bytes + 1024);
  while (out.size() < bytes) {
    const int words = 4 + static_cast<int>(rng() % 40);
    for (int w = 0; w < words; ++w) {
      if (w) out += rng() % 20 == 0 ? pick(spaces) : " ";
      const auto r = rng() % 100;
      if (r < 70) {
        out += pick(english);
      } else {
        out += pick(others);
      }
      if (r % 17 == 0) out += pick(contractions);
      if (rng() % 8 == 0) out += pick(punct);
    }
    out += '\n';
  }
  return out;
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

struct Timing {
  double wall = 1e30, cpu = 1e30;  // best of the runs; cpu: this thread's CPU time
};

// On a shared machine wall time includes waiting for a core; the calling thread's CPU time
// does not, so single-thread figures report both.
template <class F>
Timing best_of(int repeat, F&& run) {
  Timing best;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    run();
    best.cpu = std::min(best.cpu, thread_cpu_seconds() - c0);
    best.wall = std::min(best.wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path = "/tmp/fiber_tokenizer_corpus.txt";
  std::string root = FIBER_BENCH_DIR "/..";
  std::string vocab = root + "/tests/data/text/vocab.json", merges = root + "/tests/data/text/merges.txt";
  double mb = 20;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--corpus") corpus_path = value;
    else if (flag == "--mb") mb = std::atof(value.c_str());
    else if (flag == "--vocab") vocab = value;
    else if (flag == "--merges") merges = value;
    else if (flag == "--repeat") repeat = std::max(1, std::atoi(value.c_str()));
    else {
      std::cerr << "unknown option " << flag << "\n";
      return 2;
    }
  }
  try {
    if (!std::filesystem::exists(corpus_path)) {
      std::ofstream(corpus_path, std::ios::binary) << generate_corpus(static_cast<std::size_t>(mb * 1e6));
    }
    std::ifstream in(corpus_path, std::ios::binary);
    std::vector<std::string> docs;
    std::size_t bytes = 0;
    for (std::string line; std::getline(in, line);) {
      bytes += line.size() + 1;
      docs.push_back(std::move(line));
    }
    const auto tok = fiber::text::Tokenizer::from_files(vocab, merges);
    std::size_t tokens = 0;
    const Timing single = best_of(repeat, [&] {
      tokens = 0;
      for (const auto& d : docs) tokens += tok.encode(d).size();
    });
    std::size_t batch_tokens = 0;
    const Timing batch = best_of(repeat, [&] {
      const auto enc = tok.encode_batch(docs);
      batch_tokens = 0;
      for (const auto& e : enc) batch_tokens += e.size();
    });
    if (batch_tokens != tokens) throw fiber::Error("batch and single token counts differ");
    std::printf("corpus: %s, %.1f MB, %zu documents, %zu tokens (vocab %zu)\n", corpus_path.c_str(), bytes / 1e6,
                docs.size(), tokens, tok.vocab_size());
    std::printf("fiber single thread : wall %8.3f s %10.0f tokens/s %6.1f MB/s | cpu %8.3f s %10.0f tokens/s\n",
                single.wall, tokens / single.wall, bytes / 1e6 / single.wall, single.cpu, tokens / single.cpu);
    std::printf("fiber batch (%d threads): wall %8.3f s %10.0f tokens/s %6.1f MB/s\n", fiber::num_threads(), batch.wall,
                tokens / batch.wall, bytes / 1e6 / batch.wall);
    std::printf("{\"tokens\": %zu, \"bytes\": %zu, \"single_s\": %.6f, \"single_cpu_s\": %.6f, \"batch_s\": %.6f, "
                "\"threads\": %d}\n", tokens, bytes, single.wall, single.cpu, batch.wall, fiber::num_threads());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
}
