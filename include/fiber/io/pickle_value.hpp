#pragma once
// The values a restricted unpickler builds: Python scalars inline (None, bool, int, float) and
// everything else as a Node owned by a Heap. Containers have reference semantics (the pickle
// memo shares them, APPEND/SETITEM mutate them), and a crafted pickle may build cycles, so
// nodes live in an arena and point at each other with plain pointers: no leaks, no recursion
// on destruction. Walkers over a result must bound their depth (see PickleLimits::max_depth).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"

namespace fiber::io::pickle {

struct Node;

struct Value {
  enum class Kind : std::uint8_t { none, boolean, integer, floating, node };
  Kind kind = Kind::none;
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0;
  Node* node = nullptr;

  static Value none() { return {}; }
  static Value of_bool(bool b) {
    Value v;
    v.kind = Kind::boolean;
    v.boolean = b;
    return v;
  }
  static Value of_int(std::int64_t i) {
    Value v;
    v.kind = Kind::integer;
    v.integer = i;
    return v;
  }
  static Value of_float(double f) {
    Value v;
    v.kind = Kind::floating;
    v.floating = f;
    return v;
  }
  static Value of_node(Node* n) {
    Value v;
    v.kind = Kind::node;
    v.node = n;
    return v;
  }
};

enum class NodeKind : std::uint8_t {
  string,       // text: UTF-8
  bytes,        // text: raw bytes
  big_integer,  // an int that needs more than 64 bits; text: "int of N bytes"
  list,         // items
  tuple,        // items
  dict,         // items: key0, value0, key1, value1, ... in insertion order
  set,          // items
  global,       // text: "module.name" (a class or function, not called yet)
  storage,      // a torch storage from a persistent id: text = key, dtype, numel
  tensor,       // a view of a storage: storage, storage_offset, shape, strides
  opaque,       // anything not understood: text = the global it came from, note = why
};

struct Node {
  NodeKind kind = NodeKind::opaque;
  std::string text;
  std::vector<Value> items;
  // storage
  DType dtype = DType::u8;
  std::int64_t numel = 0;
  // tensor
  Node* storage = nullptr;
  std::int64_t storage_offset = 0;
  std::vector<std::int64_t> shape, strides;
  // opaque: what it depends on / why it is opaque
  std::string note;

};

inline std::string_view kind_name(NodeKind k) {
  switch (k) {
    case NodeKind::string: return "str";
    case NodeKind::bytes: return "bytes";
    case NodeKind::big_integer: return "int (more than 64 bits)";
    case NodeKind::list: return "list";
    case NodeKind::tuple: return "tuple";
    case NodeKind::dict: return "dict";
    case NodeKind::set: return "set";
    case NodeKind::global: return "global";
    case NodeKind::storage: return "storage";
    case NodeKind::tensor: return "tensor";
    case NodeKind::opaque: return "opaque object";
  }
  return "?";
}

inline std::string_view kind_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "float";
    case Value::Kind::node: return kind_name(v.node->kind);
  }
  return "?";
}

inline bool is(const Value& v, NodeKind k) { return v.kind == Value::Kind::node && v.node->kind == k; }

// Owns every node of one unpickled object graph; nodes never move. It also keeps the memory
// account of the whole unpickling (nodes, their text, container slots, stack and memo entries,
// charged by the unpickler): object counts alone let a 10 KB deflated pickle of ten million
// empty lists take 1.8 GB before any count limit stopped it.
class Heap {
 public:
  static constexpr std::size_t default_max_bytes = std::size_t(256) << 20;

  Heap(std::size_t max_nodes, std::string where, std::size_t max_bytes = default_max_bytes)
      : max_nodes_(max_nodes), max_bytes_(max_bytes), where_(std::move(where)) {}
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  Node* make(NodeKind kind, std::string text = {}) {
    FIBER_CHECK(nodes_.size() < max_nodes_, where_, ": pickle: more than ", max_nodes_,
                " objects (memory limit; raise PickleLimits::max_nodes if this file is genuine)");
    charge(sizeof(Node) + text.size());
    Node& n = nodes_.emplace_back();
    n.kind = kind;
    n.text = std::move(text);
    return &n;
  }
  std::size_t size() const { return nodes_.size(); }

  // Accounts for `bytes` more memory held by the unpickled objects or the machine's state.
  void charge(std::size_t bytes) {
    bytes_ += bytes;
    FIBER_CHECK(bytes_ <= max_bytes_, where_, ": pickle: its objects would take more than ", max_bytes_ >> 20,
                " MiB of memory (", nodes_.size(), " objects so far; raise PickleLimits::max_bytes if this file"
                " is genuine)");
  }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t max_nodes_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::string where_;
  std::deque<Node> nodes_;
};

}  // namespace fiber::io::pickle
