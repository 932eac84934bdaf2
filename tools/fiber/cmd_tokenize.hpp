#pragma once
// `fiber tokenize`: RoBERTa byte-level BPE on one text, from vocab.json + merges.txt.
//   fiber tokenize --vocab vocab.json --merges merges.txt --text "a red mug" [--max-len 40] [--json]
//   fiber tokenize --vocab vocab.json --merges merges.txt --text-file caption.txt   (or - for stdin)
// A command-line argument is capped by the OS (128 KiB per argument on Linux): longer texts come
// from a file or standard input.
// Prints one line per token (index, id, token, character span), or with --json one object with
// "ids", "tokens", "offsets" and "attention_mask".
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "fiber/core/read_file.hpp"
#include "fiber/text/tokenizer.hpp"

namespace fiber::cli {

// The whole of `path` ('-': standard input, read to its end) as text.
inline std::string read_text_input(const std::string& path) {
  if (path != "-") return fiber::detail::read_whole_file<std::string>(path, "text file");
  constexpr std::size_t limit = std::size_t(1) << 30;
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const std::size_t n = std::fread(buffer, 1, sizeof buffer, stdin);
    text.append(buffer, n);
    FIBER_CHECK(text.size() <= limit, "tokenize: standard input holds more than ", limit, " bytes");
    if (n < sizeof buffer) break;
  }
  FIBER_CHECK(!std::ferror(stdin), "tokenize: cannot read standard input");
  return text;
}

void add_tokenize_command(CLI::App& app, CommandList& commands) {
  struct Args {
    std::string vocab, merges, text, text_file;
    std::size_t max_len = 0;
    bool json = false, strict_utf8 = false, no_special = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("tokenize", "Tokenize text with a RoBERTa/GPT-2 byte-level BPE (vocab.json + merges.txt)");
  sub->add_option("--vocab", args->vocab, "vocab.json (token -> id)")->required();
  sub->add_option("--merges", args->merges, "merges.txt (ranked merges, #version header)")->required();
  CLI::Option* text = sub->add_option("--text", args->text, "the text (UTF-8)");
  CLI::Option* text_file =
      sub->add_option("--text-file", args->text_file, "read the text from this file ('-': standard input), whole");
  text->excludes(text_file);
  text_file->excludes(text);
  sub->add_option("--max-len", args->max_len, "truncate and pad to this many tokens, <s> and </s> included (>= 2)")
      ->check(CLI::Range(std::size_t(2), std::size_t(1) << 20));
  sub->add_flag("--json", args->json, "print JSON: ids, tokens, offsets, attention_mask");
  sub->add_flag("--strict-utf8", args->strict_utf8, "fail on ill-formed UTF-8 instead of replacing it with U+FFFD");
  sub->add_flag("--no-special", args->no_special, "do not frame with <s> ... </s>");
  commands.add(sub, [args, text, text_file]() -> int {
    FIBER_CHECK(text->count() + text_file->count() == 1,
                "tokenize: give the text with --text TEXT, --text-file FILE or --text-file - (standard input)");
    if (text_file->count()) args->text = read_text_input(args->text_file);
    text::TokenizerOptions options;
    if (args->strict_utf8) options.invalid_utf8 = text::InvalidUtf8::error;
    const auto tok = text::Tokenizer::from_files(args->vocab, args->merges, options);
    text::EncodeOptions opt;
    opt.add_special_tokens = !args->no_special;
    if (args->max_len > 0) {
      opt.max_length = args->max_len;
      opt.truncate = opt.pad_to_max = true;
    }
    const text::Encoding e = tok.encode(args->text, opt);
    if (args->json) {
      nlohmann::json out;
      out["ids"] = e.ids;
      out["tokens"] = nlohmann::json::array();
      for (auto t : e.tokens) out["tokens"].push_back(std::string(t));
      out["offsets"] = nlohmann::json::array();
      for (const auto& o : e.offsets) out["offsets"].push_back({o.begin, o.end});
      out["attention_mask"] = e.attention_mask;
      std::cout << out.dump() << "\n";
    } else {
      for (std::size_t i = 0; i < e.size(); ++i)
        std::cout << i << "\t" << e.ids[i] << "\t" << e.tokens[i] << "\t" << e.offsets[i].begin << " "
                  << e.offsets[i].end << "\n";
    }
    return 0;
  });
}

}  // namespace fiber::cli
