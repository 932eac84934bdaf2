#pragma once
// A restricted pickle virtual machine. It implements the opcodes torch.save emits (protocol 2)
// and the protocol 4 ones a custom pickle_protocol brings (FRAME, MEMOIZE, SHORT_BINUNICODE,
// STACK_GLOBAL, ...); everything else is an error naming the opcode and its offset. It never
// imports or calls anything: globals, calls (REDUCE, NEWOBJ), BUILD and persistent ids are
// handed to a PickleHooks object that decides what they mean (see torch_pickle.hpp). Stack,
// memo, object count and container sizes are bounded.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/byte_reader.hpp"
#include "fiber/io/pickle_value.hpp"

namespace fiber::io::pickle {

struct PickleLimits {
  std::size_t max_nodes = std::size_t(1) << 23;   // objects other than None/bool/int/float
  std::size_t max_stack = std::size_t(1) << 23;   // values on the stack
  std::size_t max_memo = std::size_t(1) << 23;    // memo entries
  std::size_t max_items = std::size_t(1) << 25;   // container elements, all containers together
  std::size_t max_depth = 100;                    // nesting depth walkers accept
  std::size_t max_visits = std::size_t(1) << 24;  // nodes walkers visit (shared references count each time)
  // Memory the unpickled objects and the machine's stack and memo may take (approximate, see
  // Heap). A torch checkpoint's pickle may take this much plus `bytes_per_file_byte` times the
  // size of its data.pkl in the file (compressed): a genuine pickle needs ~25 bytes of memory
  // per byte (3.3 KB per tensor), so large checkpoints fit, while a small file, however well it
  // deflates, is refused at about max_bytes.
  std::size_t max_bytes = Heap::default_max_bytes;
  std::size_t bytes_per_file_byte = 64;
};

// Where an opcode is, for messages: "<file>: <entry> offset N".
struct Site {
  std::string_view where;
  std::uint64_t offset = 0;
};

class PickleHooks {
 public:
  virtual ~PickleHooks() = default;
  virtual Value global(Heap& heap, std::string_view module, std::string_view name, const Site& site) = 0;
  // REDUCE: callable(*args); args is a tuple node.
  virtual Value call(Heap& heap, Value callable, Node* args, const Site& site) = 0;
  // NEWOBJ: cls.__new__(cls, *args).
  virtual Value new_object(Heap& heap, Value cls, Node* args, const Site& site) = 0;
  // BUILD: target.__setstate__(state); target stays on the stack.
  virtual void build(Heap& heap, Value target, Value state, const Site& site) = 0;
  virtual Value persistent_load(Heap& heap, Value pid, const Site& site) = 0;
};

namespace detail {

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++p; continue; }
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
    else return false;
    if (std::size_t(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += n + 1;
  }
  return true;
}

inline std::string_view opcode_name(std::uint8_t op) {
  switch (op) {
    case '(': return "MARK"; case '.': return "STOP"; case '0': return "POP"; case '1': return "POP_MARK";
    case '2': return "DUP"; case 'F': return "FLOAT"; case 'I': return "INT"; case 'J': return "BININT";
    case 'K': return "BININT1"; case 'L': return "LONG"; case 'M': return "BININT2"; case 'N': return "NONE";
    case 'P': return "PERSID"; case 'Q': return "BINPERSID"; case 'R': return "REDUCE"; case 'S': return "STRING";
    case 'T': return "BINSTRING"; case 'U': return "SHORT_BINSTRING"; case 'V': return "UNICODE";
    case 'X': return "BINUNICODE"; case 'a': return "APPEND"; case 'b': return "BUILD"; case 'c': return "GLOBAL";
    case 'd': return "DICT"; case '}': return "EMPTY_DICT"; case 'e': return "APPENDS"; case 'g': return "GET";
    case 'h': return "BINGET"; case 'i': return "INST"; case 'j': return "LONG_BINGET"; case 'l': return "LIST";
    case ']': return "EMPTY_LIST"; case 'o': return "OBJ"; case 'p': return "PUT"; case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT"; case 's': return "SETITEM"; case 't': return "TUPLE"; case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS"; case 'G': return "BINFLOAT"; case 0x80: return "PROTO"; case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1"; case 0x83: return "EXT2"; case 0x84: return "EXT4"; case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2"; case 0x87: return "TUPLE3"; case 0x88: return "NEWTRUE"; case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1"; case 0x8b: return "LONG4"; case 'B': return "BINBYTES"; case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8"; case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET"; case 0x90: return "ADDITEMS"; case 0x91: return "FROZENSET"; case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL"; case 0x94: return "MEMOIZE"; case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8"; case 0x97: return "NEXT_BUFFER"; case 0x98: return "READONLY_BUFFER";
    default: return {};
  }
}

}  // namespace detail

class Unpickler {
 public:
  Unpickler(ByteReader input, Heap& heap, PickleHooks& hooks, const PickleLimits& limits = {})
      : in_(std::move(input)), heap_(heap), hooks_(hooks), limits_(limits) {}

  // Runs to STOP and returns the pickled object.
  Value run() {
    while (!in_.at_end()) {
      op_offset_ = in_.file_offset();
      const std::uint8_t op = in_.u8("opcode");
      if (op == '.') return pop("STOP");
      step(op);
    }
    fail(in_.where(), ": pickle ends at offset ", in_.file_offset(), " before its STOP opcode (truncated)");
  }

 private:
  template <class... Parts>
  [[noreturn]] void error(std::string_view op, const Parts&... parts) const {
    fail(in_.where(), ": pickle opcode ", op, " at offset ", op_offset_, ": ", parts...);
  }
  Site site() const { return Site{in_.where(), op_offset_}; }

  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value v) {
    if (stack_.size() >= limits_.max_stack) error("(any)", "stack exceeds ", limits_.max_stack, " values");
    if (stack_.size() == stack_high_) {  // the stack's memory is charged at its high-water mark
      heap_.charge(sizeof(Value));
      ++stack_high_;
    }
    stack_.push_back(v);
  }
  Value pop(std::string_view op) {
    if (stack_.size() <= floor()) error(op, "stack underflow");
    Value v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top(std::string_view op) {
    if (stack_.size() <= floor()) error(op, "stack underflow");
    return stack_.back();
  }
  // Removes everything above the last MARK and the mark itself; returns the removed values.
  std::vector<Value> pop_mark(std::string_view op) {
    if (marks_.empty()) error(op, "no MARK on the stack");
    const std::size_t at = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(stack_.begin() + std::ptrdiff_t(at), stack_.end());
    stack_.resize(at);
    return items;
  }
  void count_items(std::size_t n) {
    items_ += n;
    if (items_ > limits_.max_items) error("(any)", "containers hold more than ", limits_.max_items, " elements in total");
    heap_.charge(n * sizeof(Value));
  }
  Node* make_sequence(NodeKind kind, std::vector<Value> items) {
    count_items(items.size());
    Node* n = heap_.make(kind);
    n->items = std::move(items);
    return n;
  }
  void memo_put(std::uint64_t key, std::string_view op) {
    if (memo_.size() >= limits_.max_memo && !memo_.count(key)) error(op, "memo exceeds ", limits_.max_memo, " entries");
    auto [it, fresh] = memo_.try_emplace(key);
    if (fresh) heap_.charge(memo_entry_bytes);
    it->second = top(op);
  }
  void memo_get(std::uint64_t key, std::string_view op) {
    auto it = memo_.find(key);
    if (it == memo_.end()) error(op, "memo key ", key, " was never stored");
    push(it->second);
  }
  Node* string_node(std::string_view text, std::string_view op) {
    if (!detail::valid_utf8(text)) error(op, "string is not valid UTF-8");
    return heap_.make(NodeKind::string, std::string(text));
  }
  std::uint64_t length(std::uint64_t n, std::string_view op) {
    if (n > in_.remaining()) error(op, "length ", n, " runs past the end of the pickle (", in_.remaining(), " bytes left)");
    return n;
  }
  // LONG1/LONG4: little-endian two's complement of n bytes.
  Value long_value(std::span<const std::byte> bytes) {
    if (bytes.empty()) return Value::of_int(0);
    const bool negative = std::to_integer<std::uint8_t>(bytes.back()) & 0x80;
    if (bytes.size() <= 8) {
      std::uint64_t v = negative ? ~std::uint64_t(0) : 0;
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        v &= ~(std::uint64_t(0xff) << (8 * i));
        v |= std::uint64_t(std::to_integer<std::uint8_t>(bytes[i])) << (8 * i);
      }
      return Value::of_int(static_cast<std::int64_t>(v));
    }
    return Value::of_node(heap_.make(NodeKind::big_integer, "int of " + std::to_string(bytes.size()) + " bytes"));
  }
  void add_items(Value target, std::vector<Value> items, std::string_view op, bool pairs) {
    if (pairs && items.size() % 2 != 0) error(op, "odd number of values (", items.size(), ") for key/value pairs");
    if (target.kind != Value::Kind::node) error(op, "target is a ", kind_name(target), ", not a container");
    Node* n = target.node;
    const bool fits = pairs ? n->kind == NodeKind::dict
                            : (n->kind == NodeKind::list || n->kind == NodeKind::set);
    if (n->kind == NodeKind::opaque) return;  // an object we do not model absorbs its contents
    if (!fits) error(op, "target is a ", kind_name(n->kind), ", expected a ", pairs ? "dict" : "list or set");
    count_items(items.size());
    n->items.insert(n->items.end(), items.begin(), items.end());
  }
  Node* tuple_args(Value v, std::string_view op) {
    if (!is(v, NodeKind::tuple)) error(op, "arguments are a ", kind_name(v), ", expected a tuple");
    return v.node;
  }

  void step(std::uint8_t op) {
    const std::string_view name = detail::opcode_name(op);
    switch (op) {
      case 0x80: {  // PROTO
        const unsigned version = in_.u8("protocol version");
        if (version > 5) error(name, "protocol ", version, " is newer than 5");
        return;
      }
      case 0x95: length(in_.u64("frame length"), name); return;  // FRAME: framing only
      case '(':
        if (marks_.size() >= limits_.max_stack) error(name, "too many marks");
        marks_.push_back(stack_.size());
        return;
      case '0':  // POP: an empty frame pops its mark, as Python does
        if (stack_.size() > floor()) stack_.pop_back();
        else pop_mark(name);
        return;
      case '1': pop_mark(name); return;
      case '2': push(top(name)); return;
      case 'N': push(Value::none()); return;
      case 0x88: push(Value::of_bool(true)); return;
      case 0x89: push(Value::of_bool(false)); return;
      case 'J': push(Value::of_int(in_.i32("BININT value"))); return;
      case 'K': push(Value::of_int(in_.u8("BININT1 value"))); return;
      case 'M': push(Value::of_int(in_.u16("BININT2 value"))); return;
      case 0x8a: {
        const std::uint64_t n = in_.u8("LONG1 length");
        push(long_value(in_.bytes(n, "LONG1 bytes")));
        return;
      }
      case 0x8b: {
        const std::int32_t n = in_.i32("LONG4 length");
        if (n < 0) error(name, "negative length ", n);
        push(long_value(in_.bytes(length(std::uint64_t(n), name), "LONG4 bytes")));
        return;
      }
      case 'G': push(Value::of_float(in_.f64_big_endian("BINFLOAT value"))); return;
      case 'X': push(Value::of_node(string_node(in_.chars(length(in_.u32("length"), name), "string"), name))); return;
      case 0x8c: push(Value::of_node(string_node(in_.chars(in_.u8("length"), "string"), name))); return;
      case 0x8d: push(Value::of_node(string_node(in_.chars(length(in_.u64("length"), name), "string"), name))); return;
      case 'T': {  // Python 2 str, decoded as UTF-8 like torch.load does
        const std::int32_t n = in_.i32("length");
        if (n < 0) error(name, "negative length ", n);
        push(Value::of_node(string_node(in_.chars(length(std::uint64_t(n), name), "string"), name)));
        return;
      }
      case 'U': push(Value::of_node(string_node(in_.chars(in_.u8("length"), "string"), name))); return;
      case 'B': push(bytes_value(in_.chars(length(in_.u32("length"), name), "bytes"))); return;
      case 'C': push(bytes_value(in_.chars(in_.u8("length"), "bytes"))); return;
      case 0x8e: push(bytes_value(in_.chars(length(in_.u64("length"), name), "bytes"))); return;
      case ')': push(Value::of_node(make_sequence(NodeKind::tuple, {}))); return;
      case 't': push(Value::of_node(make_sequence(NodeKind::tuple, pop_mark(name)))); return;
      case 0x85: case 0x86: case 0x87: {
        const std::size_t n = std::size_t(op - 0x84);
        std::vector<Value> items(n);
        for (std::size_t i = n; i-- > 0;) items[i] = pop(name);
        push(Value::of_node(make_sequence(NodeKind::tuple, std::move(items))));
        return;
      }
      case ']': push(Value::of_node(make_sequence(NodeKind::list, {}))); return;
      case 'l': push(Value::of_node(make_sequence(NodeKind::list, pop_mark(name)))); return;
      case 'a': {
        Value v = pop(name);
        add_items(top(name), {v}, name, false);
        return;
      }
      case 'e': case 0x90: {  // APPENDS, ADDITEMS
        std::vector<Value> items = pop_mark(name);
        add_items(top(name), std::move(items), name, false);
        return;
      }
      case '}': push(Value::of_node(make_sequence(NodeKind::dict, {}))); return;
      case 'd': {
        std::vector<Value> items = pop_mark(name);
        if (items.size() % 2 != 0) error(name, "odd number of values (", items.size(), ") for key/value pairs");
        push(Value::of_node(make_sequence(NodeKind::dict, std::move(items))));
        return;
      }
      case 's': {
        Value value = pop(name), key = pop(name);
        add_items(top(name), {key, value}, name, true);
        return;
      }
      case 'u': {
        std::vector<Value> items = pop_mark(name);
        add_items(top(name), std::move(items), name, true);
        return;
      }
      case 0x8f: push(Value::of_node(make_sequence(NodeKind::set, {}))); return;
      case 0x91: push(Value::of_node(make_sequence(NodeKind::set, pop_mark(name)))); return;
      case 'c': {
        const std::string_view module = in_.line("GLOBAL module"), global = in_.line("GLOBAL name");
        push(hooks_.global(heap_, checked_identifier(module, name), checked_identifier(global, name), site()));
        return;
      }
      case 0x93: {
        Value global = pop(name), module = pop(name);
        if (!is(global, NodeKind::string) || !is(module, NodeKind::string))
          error(name, "module and name must be strings, got ", kind_name(module), " and ", kind_name(global));
        push(hooks_.global(heap_, checked_identifier(module.node->text, name),
                           checked_identifier(global.node->text, name), site()));
        return;
      }
      case 'R': {
        Value args = pop(name), callable = pop(name);
        push(hooks_.call(heap_, callable, tuple_args(args, name), site()));
        return;
      }
      case 0x81: {
        Value args = pop(name), cls = pop(name);
        push(hooks_.new_object(heap_, cls, tuple_args(args, name), site()));
        return;
      }
      case 0x92: {  // NEWOBJ_EX: keyword arguments are dropped, the hooks see cls(*args)
        pop(name);
        Value args = pop(name), cls = pop(name);
        push(hooks_.new_object(heap_, cls, tuple_args(args, name), site()));
        return;
      }
      case 'b': {
        Value state = pop(name);
        hooks_.build(heap_, top(name), state, site());
        return;
      }
      case 'Q': {
        Value pid = pop(name);
        push(hooks_.persistent_load(heap_, pid, site()));
        return;
      }
      case 'q': memo_put(in_.u8("memo key"), name); return;
      case 'r': memo_put(in_.u32("memo key"), name); return;
      case 0x94: memo_put(memo_.size(), name); return;
      case 'h': memo_get(in_.u8("memo key"), name); return;
      case 'j': memo_get(in_.u32("memo key"), name); return;
      default: break;
    }
    static const char digits[] = "0123456789abcdef";
    const std::string hex = std::string("0x") + digits[op >> 4] + digits[op & 0xf];
    if (!name.empty())
      fail(in_.where(), ": pickle opcode ", name, " (", hex, ") at offset ", op_offset_,
           " is not supported (torch.save does not emit it)");
    fail(in_.where(), ": unknown pickle opcode ", hex, " at offset ", op_offset_);
  }

  Value bytes_value(std::string_view text) { return Value::of_node(heap_.make(NodeKind::bytes, std::string(text))); }

  std::string_view checked_identifier(std::string_view text, std::string_view op) const {
    if (text.empty() || text.size() > 256) error(op, "module or name of length ", text.size());
    for (char c : text) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
      if (!ok) error(op, "module or name contains byte ", int(static_cast<unsigned char>(c)), " (not an identifier)");
    }
    return text;
  }

  ByteReader in_;
  Heap& heap_;
  PickleHooks& hooks_;
  PickleLimits limits_;
  std::vector<Value> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Value> memo_;
  std::size_t items_ = 0;
  std::size_t stack_high_ = 0;
  std::uint64_t op_offset_ = 0;
  // An unordered_map node (key, Value, hash, next) and its bucket pointer.
  static constexpr std::size_t memo_entry_bytes = sizeof(std::uint64_t) + sizeof(Value) + 4 * sizeof(void*);
};

}  // namespace fiber::io::pickle
