#pragma once
// Reading the zip checkpoints torch.save writes (.pt, .pth, Lightning .ckpt): entries
// <archive>/data.pkl (the pickled object), <archive>/data/<key> (one per storage, stored and
// 64-byte aligned), <archive>/byteorder, <archive>/version, <archive>/.data/... The pickle is run
// by the restricted unpickler (torch_pickle.hpp) into records that point at storages by key;
// storage bytes are only touched when record(name) asks for that tensor.
//
// The state dict is found by layout: {"state_dict": ...} (Lightning), {"model": ...}
// (maskrcnn_benchmark, "module." stripped), otherwise the object itself. Nested dicts, lists and
// tuples inside it are flattened with '.' ("layer.0.weight"). Opaque objects anywhere are listed
// as placeholders; a state-dict entry that is opaque cannot be read and says why.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/io/checked_size.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/io/torch_pickle.hpp"
#include "fiber/io/unpickler.hpp"
#include "fiber/io/zip_archive.hpp"

namespace fiber::io {

namespace torch_detail {

using pickle::Node;
using pickle::NodeKind;
using pickle::Value;

// Storage bytes by entry; inflated entries are shared while some record still holds them.
class Source : public Checkpoint::Source {
 public:
  Source(std::shared_ptr<const ZipArchive> zip, std::vector<std::string> entries, bool verify)
      : zip_(std::move(zip)), entries_(std::move(entries)), verify_(verify) {}

  TensorRecord load(const TensorInfo& info, std::size_t index) const override {
    const ZipEntry* entry = zip_->find(entries_[index]);
    FIBER_CHECK(entry, zip_->name(), ": storage entry '", entries_[index], "' is missing");
    ByteSource bytes = entry->method == 0 ? zip_->read(*entry, verify_) : inflated(*entry);
    TensorRecord r{info, bytes.bytes, bytes.owner, zip_->name(), bytes.mapping};
    r.validate();
    return r;
  }

 private:
  ByteSource inflated(const ZipEntry& entry) const {
    std::lock_guard lock(mutex_);
    auto& cached = cache_[entry.name];
    if (auto held = cached.lock()) {
      ByteSource s;
      s.bytes = std::span<const std::byte>(static_cast<const std::byte*>(held.get()), entry.size);
      s.owner = held;
      s.name = zip_->name();
      return s;
    }
    ByteSource s = zip_->read(entry, true);
    // Alias the owner so the cache can hand out the data pointer itself.
    cached = std::shared_ptr<const void>(s.owner, s.bytes.data());
    return s;
  }

  std::shared_ptr<const ZipArchive> zip_;
  std::vector<std::string> entries_;  // storage entry of each tensor
  bool verify_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::weak_ptr<const void>> cache_;
};

// A dict key as it appears in a name: str as is, int/bool/None/float as Python prints them.
inline std::string key_text(const Value& k) {
  switch (k.kind) {
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return k.boolean ? "True" : "False";
    case Value::Kind::integer: return std::to_string(k.integer);
    case Value::Kind::floating: {
      std::ostringstream s;
      s << k.floating;
      return s.str();
    }
    case Value::Kind::node:
      if (k.node->kind == NodeKind::string) return k.node->text;
      {
        std::string s(1, '<');  // (not "<" + string: GCC 12 warns falsely about that)
        s += pickle::kind_name(k.node->kind);
        s += '>';
        return s;
      }
  }
  return "?";
}

inline std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

// Depth- and size-bounded walks over the unpickled object graph (which may share nodes or even
// contain cycles when crafted).
class Walker {
 public:
  Walker(std::string where, const pickle::PickleLimits& limits) : where_(std::move(where)), limits_(limits) {}

  struct Found {
    std::vector<std::pair<std::string, const Node*>> tensors;  // in first-seen order
    std::vector<std::pair<std::string, std::string>> unreadable;
    std::unordered_map<std::string, std::string> origin;  // flattened name -> Python-style path, for collisions
  };

  // `path` is the flattened name ("a.b.0"); `origin` the Python access path it came from
  // ("['a']['b'][0]"), which tells apart entries that flatten alike.
  void tensors(const Value& v, const std::string& path, const std::string& origin, std::size_t depth, Found& out) {
    enter(path, depth);
    if (v.kind != Value::Kind::node) return;
    const Node* n = v.node;
    switch (n->kind) {
      case NodeKind::tensor:
        claim(path, origin, out);
        out.tensors.emplace_back(path, n);
        return;
      case NodeKind::opaque:
        claim(path, origin, out);
        out.unreadable.emplace_back(path, describe_opaque(n));
        return;
      case NodeKind::dict:
        for (std::size_t i : distinct_keys(*n))
          tensors(n->items[i + 1], join(path, key_text(n->items[i])), origin + "[" + key_repr(n->items[i]) + "]",
                  depth + 1, out);
        return;
      case NodeKind::list: case NodeKind::tuple:
        for (std::size_t i = 0; i < n->items.size(); ++i)
          tensors(n->items[i], join(path, std::to_string(i)), origin + "[" + std::to_string(i) + "]", depth + 1, out);
        return;
      default: return;
    }
  }

  // Item indices of a dict's keys as Python sees them: a key given again (equal by Python's ==,
  // so 1, 1.0 and True are one key) keeps its first position and takes the last value.
  static std::vector<std::size_t> distinct_keys(const Node& dict) {
    std::vector<std::size_t> order;
    std::unordered_map<std::string, std::size_t> at;  // canonical key -> position in order
    for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
      auto [it, fresh] = at.emplace(canonical_key(dict.items[i]), order.size());
      if (fresh) order.push_back(i);
      else order[it->second] = i;
    }
    return order;
  }

  static std::string canonical_key(const Value& k) {
    // (built by appending: GCC 12 warns falsely about "x" + std::string)
    std::string s(1, 'n');
    switch (k.kind) {
      case Value::Kind::none: s[0] = 'N'; return s;
      case Value::Kind::boolean: s += std::to_string(int(k.boolean)); return s;
      case Value::Kind::integer: s += std::to_string(k.integer); return s;
      case Value::Kind::floating:
        if (k.floating > -9.2e18 && k.floating < 9.2e18 && k.floating == double(std::int64_t(k.floating))) {
          s += std::to_string(std::int64_t(k.floating));
        } else {
          s[0] = 'f';
          s += std::to_string(k.floating);
        }
        return s;
      case Value::Kind::node:
        if (k.node->kind == NodeKind::string) s[0] = 's', s += k.node->text;
        else if (k.node->kind == NodeKind::bytes) s[0] = 'b', s += k.node->text;
        else s[0] = 'p', s += std::to_string(reinterpret_cast<std::uintptr_t>(k.node));
        return s;
    }
    return s;
  }

  // A key as Python's repr would show it, bounded: 'a.b', 5, b'\x01', <tuple>.
  static std::string key_repr(const Value& k) {
    std::string s(1, '\'');  // (appended, not "'" + string: GCC 12 warns falsely about that)
    if (k.kind == Value::Kind::node && k.node->kind == NodeKind::string) {
      s += excerpt(k.node->text);
      s += '\'';
      return s;
    }
    if (k.kind == Value::Kind::node && k.node->kind == NodeKind::bytes) {
      s.insert(s.begin(), 'b');
      static const char hex[] = "0123456789abcdef";
      for (std::size_t i = 0; i < k.node->text.size() && i < 100; ++i) {
        const auto c = static_cast<unsigned char>(k.node->text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') s += char(c);
        else s += std::string("\\x") + hex[c >> 4] + hex[c & 15];
      }
      return s + (k.node->text.size() > 100 ? "'..." : "'");
    }
    return excerpt(key_text(k));
  }

  void placeholders(const Value& v, const std::string& path, std::size_t depth, std::vector<Placeholder>& out) {
    enter(path, depth);
    if (v.kind != Value::Kind::node) return;
    const Node* n = v.node;
    switch (n->kind) {
      case NodeKind::opaque: out.push_back({path, n->text, n->note}); return;
      case NodeKind::global: out.push_back({path, n->text, "a class or function object"}); return;
      case NodeKind::dict:
        for (std::size_t i = 0; i + 1 < n->items.size(); i += 2)
          placeholders(n->items[i + 1], join(path, key_text(n->items[i])), depth + 1, out);
        return;
      case NodeKind::list: case NodeKind::tuple: case NodeKind::set:
        for (std::size_t i = 0; i < n->items.size(); ++i)
          placeholders(n->items[i], join(path, std::to_string(i)), depth + 1, out);
        return;
      default: return;
    }
  }

  static std::string describe_opaque(const Node* n) {
    std::string s = "it is an object built by '" + n->text + "', which fiber does not interpret";
    if (!n->note.empty()) s += " (" + n->note + ")";
    return s;
  }

 private:
  void enter(const std::string& path, std::size_t depth) {
    FIBER_CHECK(depth <= limits_.max_depth, where_, ": objects nest deeper than ", limits_.max_depth, " levels at '",
                path.substr(0, 200), "' (cyclic or corrupt pickle)");
    FIBER_CHECK(++visits_ <= limits_.max_visits, where_, ": the pickled object graph has more than ", limits_.max_visits,
                " references (shared or cyclic structure)");
  }

  // Two different entries that flatten to one name would silently lose one tensor: refuse.
  void claim(const std::string& path, const std::string& origin, Found& out) {
    auto [it, fresh] = out.origin.emplace(path, origin);
    FIBER_CHECK(fresh, where_, ": two entries flatten to the same tensor name '", excerpt(path), "': ",
                it->second.empty() ? "<top>" : it->second, " and ", origin.empty() ? "<top>" : origin,
                " (nested keys are joined with '.'); rename one of them");
  }

  std::string where_;
  const pickle::PickleLimits& limits_;
  std::size_t visits_ = 0;
};

inline const Value* dict_get(const Value& dict, std::string_view key) {
  if (!pickle::is(dict, NodeKind::dict)) return nullptr;
  const auto& items = dict.node->items;
  for (std::size_t i = items.size(); i >= 2; i -= 2)  // last occurrence wins
    if (pickle::is(items[i - 2], NodeKind::string) && items[i - 2].node->text == key) return &items[i - 1];
  return nullptr;
}

// The archive's directory prefix ("archive/"), from the one <prefix>/data.pkl entry.
inline std::string archive_prefix(const ZipArchive& zip) {
  std::string prefix;
  int found = 0;
  bool torchscript = false;
  for (const ZipEntry& e : zip.entries()) {
    const std::string& n = e.name;
    const std::size_t slash = n.find('/');
    const std::string_view rest = slash == std::string::npos ? std::string_view(n) : std::string_view(n).substr(slash + 1);
    if (rest == "constants.pkl" || rest.starts_with("code/")) torchscript = true;
    if (rest == "data.pkl" && (slash == std::string::npos || rest.find('/') == std::string_view::npos)) {
      prefix = slash == std::string::npos ? std::string() : n.substr(0, slash + 1);
      ++found;
    }
  }
  FIBER_CHECK(!torchscript, zip.name(), ": this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint;"
              " in Python, save the weights with torch.save(model.state_dict(), path)");
  FIBER_CHECK(found == 1, zip.name(), ": ", found == 0 ? "no data.pkl entry: this zip is not a PyTorch checkpoint"
                                                       : "several <archive>/data.pkl entries: ambiguous PyTorch checkpoint");
  return prefix;
}

// A short text entry (version, byteorder), CRC-checked.
inline std::string small_entry(const ZipArchive& zip, const ZipEntry& e) {
  FIBER_CHECK(e.size <= 256, zip.name(), ": zip entry '", e.name, "' holds ", e.size, " bytes, expected a short text");
  const ByteSource s = zip.read(e, true);
  std::string text(reinterpret_cast<const char*>(s.bytes.data()), s.bytes.size());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace torch_detail

// Reads the index of a torch.save zip checkpoint held by `source`.
inline Checkpoint read_torch_checkpoint(ByteSource source, const OpenOptions& options = {}) {
  using namespace torch_detail;
  auto zip = std::make_shared<const ZipArchive>(source, options.zip);
  const std::string& file = zip->name();
  const std::string prefix = archive_prefix(*zip);

  Metadata metadata;
  if (const ZipEntry* e = zip->find(prefix + "byteorder")) {
    const std::string order = small_entry(*zip, *e);
    FIBER_CHECK(order != "big", file, ": the checkpoint was saved on a big-endian machine (", prefix,
                "byteorder = big); fiber reads little-endian checkpoints only: load and re-save it with torch on a"
                " little-endian machine");
    FIBER_CHECK(order == "little", file, ": ", prefix, "byteorder holds '", order.substr(0, 40),
                "', expected 'little' or 'big'");
    metadata.emplace_back("byteorder", order);
  }  // checkpoints from torch < 1.10 have no byteorder entry: they are little-endian
  for (const char* name : {"version", ".data/version"})
    if (const ZipEntry* e = zip->find(prefix + name)) metadata.emplace_back(name, small_entry(*zip, *e));

  const ZipEntry* pkl = zip->find(prefix + "data.pkl");
  FIBER_CHECK(pkl->size <= options.max_pickle_bytes, file, ": ", pkl->name, " holds ", pkl->size,
              " bytes, above the limit of ", options.max_pickle_bytes);
  const ByteSource pickled = zip->read(*pkl, true);
  const std::string where = file + ": " + pkl->name;
  const std::size_t memory = options.pickle.max_bytes + std::size_t(std::min<std::uint64_t>(
                                 pkl->compressed_size, std::uint64_t(1) << 32)) * options.pickle.bytes_per_file_byte;
  pickle::Heap heap(options.pickle.max_nodes, where, memory);
  pickle::TorchPickleHooks hooks;
  const Value top = pickle::Unpickler(ByteReader(pickled.bytes, where), heap, hooks, options.pickle).run();

  Walker walker(file, options.pickle);
  std::vector<Placeholder> placeholders;
  walker.placeholders(top, "", 0, placeholders);

  // Which object is the state dict.
  CheckpointLayout layout = CheckpointLayout::state_dict;
  const Value* root = &top;
  if (options.everything) {
    layout = CheckpointLayout::everything;
  } else if (!options.state_dict_key.empty()) {
    const std::string& key = options.state_dict_key;
    const Value* v = dict_get(top, key);
    FIBER_CHECK(v, file, ": the checkpoint has no top-level '", excerpt(key), "' (asked for its state dict)");
    if (pickle::is(*v, NodeKind::opaque))
      fail(file, ": the checkpoint's '", excerpt(key), "' cannot be read: ", Walker::describe_opaque(v->node));
    FIBER_CHECK(pickle::is(*v, NodeKind::dict), file, ": the checkpoint's '", excerpt(key), "' is a ",
                pickle::kind_name(*v), ", not a state dict");
    root = v;
    layout = key == "state_dict" ? CheckpointLayout::lightning : CheckpointLayout::maskrcnn_benchmark;
  } else {
    for (auto [key, kind] : {std::pair{"state_dict", CheckpointLayout::lightning},
                             std::pair{"model", CheckpointLayout::maskrcnn_benchmark}}) {
      const Value* v = dict_get(top, key);
      if (!v) continue;
      if (pickle::is(*v, NodeKind::opaque))
        fail(file, ": the checkpoint's '", key, "' cannot be read: ", Walker::describe_opaque(v->node));
      if (pickle::is(*v, NodeKind::dict)) {
        root = v;
        layout = kind;
        break;
      }
    }
    if (pickle::is(*root, NodeKind::opaque))
      fail(file, ": the checkpoint's top-level object cannot be read: ", Walker::describe_opaque(root->node));
    FIBER_CHECK(root->kind == Value::Kind::node &&
                    (root->node->kind == NodeKind::dict || root->node->kind == NodeKind::list ||
                     root->node->kind == NodeKind::tuple || root->node->kind == NodeKind::tensor),
                file, ": the checkpoint holds a ", pickle::kind_name(*root), ", not a state dict");
  }
  Walker::Found found;
  walker.tensors(*root, "", "", 0, found);

  std::vector<TensorInfo> infos;
  std::vector<std::string> entries;
  std::unordered_map<std::string, std::size_t> names;
  for (auto& [path, node] : found.tensors) {
    std::string name = path;
    if (layout == CheckpointLayout::maskrcnn_benchmark && name.starts_with("module.")) name.erase(0, 7);
    FIBER_CHECK(names.emplace(name, infos.size()).second, file, ": two tensors are named '", excerpt(name),
                "' after removing the 'module.' prefix");
    const Node* storage = node->storage;
    const std::string entry = prefix + "data/" + storage->text;
    const std::string what = "tensor '" + excerpt(name) + "'";
    const ZipEntry* e = zip->find(entry);
    FIBER_CHECK(e, file, ": ", what, ": its storage '", entry, "' is missing from the archive");
    const std::uint64_t expected = checked_mul(std::uint64_t(storage->numel), dtype_size(storage->dtype), file,
                                               what + " storage size");
    FIBER_CHECK(e->size == expected, file, ": ", what, ": storage '", entry, "' holds ", e->size,
                " bytes, but the pickle says ", storage->numel, " ", dtype_name(storage->dtype), " elements (",
                expected, " bytes)");
    TensorInfo info{name, node->dtype, node->shape, node->strides, node->storage_offset};
    check_view(info, expected, file);
    infos.push_back(std::move(info));
    entries.push_back(entry);
  }
  Checkpoint::Unreadable unreadable;
  for (auto& [path, why] : found.unreadable) {
    std::string name = path;
    if (layout == CheckpointLayout::maskrcnn_benchmark && name.starts_with("module.")) name.erase(0, 7);
    unreadable.emplace_back(std::move(name), std::move(why));
  }
  // The index is read: its pages (zip headers, pickle, JSON) need not stay in our resident set.
  if (source.mapping) source.mapping->release_all();
  auto loader = std::make_shared<torch_detail::Source>(zip, std::move(entries), options.verify_checksums);
  return Checkpoint(CheckpointFormat::torch_zip, layout, file, std::move(infos), std::move(placeholders),
                    std::move(unreadable), std::move(metadata), std::move(loader), source.mapping);
}

}  // namespace fiber::io
