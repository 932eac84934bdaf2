#pragma once
// `fiber tokenize`: RoBERTa byte-level BPE on one text, from vocab.json + merges.txt.
//   fiber tokenize --vocab vocab.json --merges merges.txt --text "a red mug" [--max-len 40] [--json]
// Prints one line per token (index, id, token, character span), or with --json one object with
// "ids", "tokens", "offsets" and "attention_mask".
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "fiber/text/tokenizer.hpp"

namespace fiber::cli {

inline void add_tokenize_command(CLI::App& app, CommandList& commands) {
  struct Args {
    std::string vocab, merges, text;
    std::size_t max_len = 0;
    bool json = false, strict_utf8 = false, no_special = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("tokenize", "Tokenize text with a RoBERTa/GPT-2 byte-level BPE (vocab.json + merges.txt)");
  sub->add_option("--vocab", args->vocab, "vocab.json (token -> id)")->required();
  sub->add_option("--merges", args->merges, "merges.txt (ranked merges, #version header)")->required();
  sub->add_option("--text", args->text, "the text (UTF-8)")->required();
  sub->add_option("--max-len", args->max_len, "truncate and pad to this many tokens, <s> and </s> included (>= 2)")
      ->check(CLI::Range(std::size_t(2), std::size_t(1) << 20));
  sub->add_flag("--json", args->json, "print JSON: ids, tokens, offsets, attention_mask");
  sub->add_flag("--strict-utf8", args->strict_utf8, "fail on ill-formed UTF-8 instead of replacing it with U+FFFD");
  sub->add_flag("--no-special", args->no_special, "do not frame with <s> ... </s>");
  commands.add(sub, [args]() -> int {
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
