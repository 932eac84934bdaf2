#pragma once
// Byte-level BPE: a pre-token's bytes start as one symbol each (the vocabulary id of the byte's
// alphabet character); then, repeatedly, the adjacent pair with the lowest merge rank (the
// leftmost one on ties) is replaced by its merged token, until no adjacent pair has a merge.
// This is exactly the order HF tokenizers' priority queue produces. A byte whose alphabet
// character is not in the vocabulary is dropped, as HF's BPE does when it has no unknown token
// (RoBERTa's has none); offsets of the other tokens stay exact.
//
// Speed: merges live in an open-addressing table keyed by the id pair; each thread keeps a
// cache of encoded words (pre-tokens), so frequent words are merged once.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/text/byte_level.hpp"
#include "fiber/text/char_class.hpp"
#include "fiber/text/vocab_files.hpp"

namespace fiber::text {

// One BPE token of a word: its id and byte range in the word.
struct BpePiece {
  std::int32_t id;
  std::uint32_t begin, end;
};

namespace detail {

// Merge rank and result by (left id, right id).
class MergeTable {
 public:
  struct Entry {
    std::uint64_t key = empty;
    std::uint32_t rank = 0;
    std::int32_t merged = -1;
  };
  static constexpr std::uint64_t empty = ~std::uint64_t(0);

  explicit MergeTable(std::size_t count = 0) {
    std::size_t cap = 16;
    while (cap < count * 2 + 1) cap *= 2;
    slots_.assign(cap, Entry{});
    mask_ = cap - 1;
  }
  static std::uint64_t key(std::int32_t a, std::int32_t b) {
    return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
  }
  // Inserts or replaces: a repeated pair keeps the later rank, as in HF tokenizers.
  void put(std::int32_t a, std::int32_t b, std::uint32_t rank, std::int32_t merged) {
    const std::uint64_t k = key(a, b);
    for (std::size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == empty || slots_[i].key == k) {
        size_ += slots_[i].key == empty;
        slots_[i] = {k, rank, merged};
        return;
      }
    }
  }
  const Entry* find(std::int32_t a, std::int32_t b) const {
    const std::uint64_t k = key(a, b);
    for (std::size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return &slots_[i];
      if (slots_[i].key == empty) return nullptr;
    }
  }
  std::size_t size() const { return size_; }

 private:
  std::size_t slot(std::uint64_t k) const {
    k ^= k >> 29;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 32;
    return static_cast<std::size_t>(k) & mask_;
  }
  std::vector<Entry> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

// Encoded words of one model on one thread. Bounded: cleared when full.
struct WordCache {
  static constexpr std::size_t max_entries = 1 << 16;
  static constexpr std::size_t max_word_bytes = 256;
  struct Span {
    std::uint32_t first, count;
  };
  std::unordered_map<std::string, Span, StringHash, std::equal_to<>> words;
  std::vector<BpePiece> pieces;

  void clear() {
    words.clear();
    pieces.clear();
  }
};

inline std::uint64_t next_model_uid() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

}  // namespace detail

class BpeModel {
 public:
  // Builds the model; `merges` parts and results must all be vocabulary tokens.
  BpeModel(Vocab vocab, const std::vector<MergeRule>& merges, std::string_view merges_name = "merges.txt")
      : vocab_(std::move(vocab)), merges_(merges.size()), uid_(detail::next_model_uid()) {
    std::string joined;
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const MergeRule& m = merges[rank];
      const auto a = token_to_id(m.left), b = token_to_id(m.right);
      FIBER_CHECK(a, merges_name, ": line ", m.line, ": merge part '", excerpt(m.left), "' is not in the vocabulary");
      FIBER_CHECK(b, merges_name, ": line ", m.line, ": merge part '", excerpt(m.right), "' is not in the vocabulary");
      joined.assign(m.left).append(m.right);
      const auto merged = token_to_id(joined);
      FIBER_CHECK(merged, merges_name, ": line ", m.line, ": merge result '", excerpt(joined),
                  "' is not in the vocabulary");
      merges_.put(*a, *b, static_cast<std::uint32_t>(rank), *merged);
    }
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      utf8_append(ch, byte_level.to_char(static_cast<std::uint8_t>(b)));
      byte_ids_[b] = token_to_id(ch).value_or(-1);
    }
  }

  static BpeModel from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) {
    return BpeModel(read_vocab_json(vocab_json), read_merges_txt(merges_txt), merges_txt.string());
  }
  static BpeModel from_strings(std::string_view vocab_json, std::string_view merges_txt) {
    return BpeModel(parse_vocab_json(vocab_json), parse_merges_txt(merges_txt));
  }

  std::size_t vocab_size() const { return vocab_.tokens.size(); }
  // Distinct merge pairs (a repeated pair counts once).
  std::size_t merge_count() const { return merges_.size(); }

  std::optional<std::int32_t> token_to_id(std::string_view token) const {
    auto it = vocab_.ids.find(token);
    if (it == vocab_.ids.end()) return std::nullopt;
    return it->second;
  }
  const std::string& id_to_token(std::int32_t id) const {
    FIBER_CHECK(id >= 0 && std::size_t(id) < vocab_.tokens.size(), "BpeModel::id_to_token: id ", id,
                " is out of range [0, ", vocab_.tokens.size(), ")");
    return vocab_.tokens[id];
  }
  const std::vector<std::string>& tokens() const { return vocab_.tokens; }

  // Appends the tokens of one pre-token (raw bytes) to `out`, offsets relative to `word`.
  void encode_word(std::string_view word, std::vector<BpePiece>& out) const {
    if (word.empty()) return;
    if (word.size() > detail::WordCache::max_word_bytes) {
      merge_word(word, out);
      return;
    }
    detail::WordCache& cache = this_thread_cache();
    if (auto it = cache.words.find(word); it != cache.words.end()) {
      const auto* p = cache.pieces.data() + it->second.first;
      out.insert(out.end(), p, p + it->second.count);
      return;
    }
    const std::size_t first = out.size();
    merge_word(word, out);
    if (cache.words.size() >= detail::WordCache::max_entries) cache.clear();
    const auto count = static_cast<std::uint32_t>(out.size() - first);
    cache.words.emplace(std::string(word), detail::WordCache::Span{static_cast<std::uint32_t>(cache.pieces.size()), count});
    cache.pieces.insert(cache.pieces.end(), out.begin() + first, out.end());
  }

  // The same without the cache (used by tests to check the cache changes nothing).
  void encode_word_uncached(std::string_view word, std::vector<BpePiece>& out) const { merge_word(word, out); }

 private:
  struct Symbol {
    std::int32_t id;
    std::uint32_t begin, end;
    std::int32_t prev, next;  // linked list over the word; -1 at the ends
  };
  struct Candidate {
    std::uint32_t rank, pos;
    std::int32_t merged;
    // Heap order: lowest rank first, then leftmost.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  detail::WordCache& this_thread_cache() const {
    // One cache per (thread, model). Ids are never reused, so a dead model's cache is only memory.
    thread_local std::unordered_map<std::uint64_t, std::unique_ptr<detail::WordCache>> caches;
    auto& slot = caches[uid_];
    if (!slot) {
      if (caches.size() > 64) {  // keep threads that see many short-lived models bounded
        caches.clear();
        return *caches.emplace(uid_, std::make_unique<detail::WordCache>()).first->second;
      }
      slot = std::make_unique<detail::WordCache>();
    }
    return *slot;
  }

  void push_candidate(std::vector<Candidate>& heap, const std::vector<Symbol>& s, std::int32_t left) const {
    const std::int32_t right = s[left].next;
    if (right < 0) return;
    if (const auto* m = merges_.find(s[left].id, s[right].id)) {
      heap.push_back({m->rank, static_cast<std::uint32_t>(left), m->merged});
      std::push_heap(heap.begin(), heap.end());
    }
  }

  void merge_word(std::string_view word, std::vector<BpePiece>& out) const {
    thread_local std::vector<Symbol> symbols;
    thread_local std::vector<Candidate> heap;
    symbols.clear();
    heap.clear();
    for (std::uint32_t i = 0; i < word.size(); ++i) {
      const std::int32_t id = byte_ids_[static_cast<unsigned char>(word[i])];
      if (id < 0) continue;  // not in the vocabulary: dropped
      const auto n = static_cast<std::int32_t>(symbols.size());
      symbols.push_back({id, i, i + 1, n - 1, -1});
      if (n > 0) symbols[n - 1].next = n;
    }
    for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) {
      if (const auto* m = merges_.find(symbols[i].id, symbols[i + 1].id))
        heap.push_back({m->rank, static_cast<std::uint32_t>(i), m->merged});
    }
    std::make_heap(heap.begin(), heap.end());
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      const Candidate top = heap.back();
      heap.pop_back();
      Symbol& left = symbols[top.pos];
      // Stale when the left symbol was absorbed (id -1), lost its right neighbour, or either
      // side changed since the candidate was pushed (the pair no longer merges to `merged`).
      if (left.id < 0 || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      const auto* m = merges_.find(left.id, right.id);
      if (!m || m->merged != top.merged || m->rank != top.rank) continue;
      left.id = top.merged;
      left.end = right.end;
      left.next = right.next;
      right.id = -1;
      if (left.next >= 0) symbols[left.next].prev = static_cast<std::int32_t>(top.pos);
      if (left.prev >= 0) push_candidate(heap, symbols, left.prev);
      push_candidate(heap, symbols, static_cast<std::int32_t>(top.pos));
    }
    for (const Symbol& s : symbols)
      if (s.id >= 0) out.push_back({s.id, s.begin, s.end});
  }

  Vocab vocab_;
  detail::MergeTable merges_;
  std::int32_t byte_ids_[256];
  std::uint64_t uid_;
};

}  // namespace fiber::text
