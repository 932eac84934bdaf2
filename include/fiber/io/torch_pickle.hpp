#pragma once
// What the globals in a torch.save pickle mean. Only an allowlist is understood:
//   collections.OrderedDict, builtins.dict/set/frozenset      -> dict / set
//   torch._utils._rebuild_tensor_v2 / _rebuild_tensor          -> tensor (storage, offset, size, stride)
//   torch._utils._rebuild_parameter(_with_state),
//   torch._tensor._rebuild_from_type_v2                         -> the tensor inside
//   torch.Size                                                  -> tuple
//   _codecs.encode (how protocol 2 pickles bytes)               -> bytes
//   torch.<Type>Storage in persistent ids                       -> storage of that dtype
// Any other global, and anything called, instantiated or built from one, becomes an opaque
// node that remembers the global's name: nothing is ever imported or executed. A wanted value
// that turns out opaque is an error naming that global (see torch_checkpoint.hpp).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/io/tensor_record.hpp"
#include "fiber/io/unpickler.hpp"

namespace fiber::io::pickle {

// The dtype of a torch storage class ("torch.FloatStorage"), or false when not supported.
inline bool storage_dtype(std::string_view type, DType& out) {
  if (type.starts_with("torch.cuda.")) type.remove_prefix(11);
  else if (type.starts_with("torch.")) type.remove_prefix(6);
  else return false;
  static constexpr std::pair<std::string_view, DType> table[] = {
      {"FloatStorage", DType::f32}, {"DoubleStorage", DType::f64}, {"HalfStorage", DType::f16},
      {"BFloat16Storage", DType::bf16}, {"LongStorage", DType::i64}, {"IntStorage", DType::i32},
      {"ShortStorage", DType::i16}, {"CharStorage", DType::i8}, {"ByteStorage", DType::u8},
      {"BoolStorage", DType::boolean}, {"UntypedStorage", DType::u8}};
  for (const auto& [name, dtype] : table)
    if (type == name) {
      out = dtype;
      return true;
    }
  return false;
}

class TorchPickleHooks : public PickleHooks {
 public:
  Value global(Heap& heap, std::string_view module, std::string_view name, const Site&) override {
    std::string full = module == "__builtin__" ? std::string("builtins") : std::string(module);
    full += '.';
    full += name;
    return Value::of_node(heap.make(NodeKind::global, std::move(full)));
  }

  Value call(Heap& heap, Value callable, Node* args, const Site& site) override {
    return call_at_depth(heap, callable, args, site, 0);
  }

  Value new_object(Heap& heap, Value cls, Node* args, const Site& site) override {
    if (is(cls, NodeKind::opaque)) return opaque(heap, cls.node->text, "instance of an opaque class");
    if (!is(cls, NodeKind::global)) fail_at(site, "NEWOBJ", "class is a ", kind_name(cls), ", not a global");
    const std::string& name = cls.node->text;
    if ((name == "collections.OrderedDict" || name == "builtins.dict") && args->items.empty())
      return Value::of_node(heap.make(NodeKind::dict));
    return opaque(heap, name, "");
  }

  void build(Heap&, Value target, Value, const Site& site) override {
    // OrderedDict state (a state dict's _metadata), Parameter state, opaque objects: ignored.
    if (is(target, NodeKind::dict) || is(target, NodeKind::tensor) || is(target, NodeKind::opaque)) return;
    fail_at(site, "BUILD", "cannot set the state of a ", kind_name(target));
  }

  // ('storage', torch.<Type>Storage, key, location, numel) as torch.save writes it.
  Value persistent_load(Heap& heap, Value pid, const Site& site) override {
    if (!is(pid, NodeKind::tuple)) fail_at(site, "BINPERSID", "persistent id is a ", kind_name(pid), ", expected a tuple");
    const auto& items = pid.node->items;
    if (items.size() != 5 || !is(items[0], NodeKind::string) || items[0].node->text != "storage")
      fail_at(site, "BINPERSID", "persistent id is not ('storage', type, key, location, numel)");
    if (is(items[1], NodeKind::opaque)) return items[1];
    if (!is(items[1], NodeKind::global)) fail_at(site, "BINPERSID", "storage type is a ", kind_name(items[1]));
    if (!is(items[2], NodeKind::string)) fail_at(site, "BINPERSID", "storage key is a ", kind_name(items[2]));
    if (items[4].kind != Value::Kind::integer || items[4].integer < 0)
      fail_at(site, "BINPERSID", "storage element count is not a non-negative int");
    const std::string& type = items[1].node->text;
    DType dtype{};
    if (!storage_dtype(type, dtype)) return opaque(heap, type, "storage type fiber does not read");
    Node* storage = heap.make(NodeKind::storage, items[2].node->text);
    storage->dtype = dtype;
    storage->numel = items[4].integer;
    return Value::of_node(storage);
  }

 private:
  template <class... Parts>
  [[noreturn]] static void fail_at(const Site& site, std::string_view op, const Parts&... parts) {
    fail(site.where, ": pickle opcode ", op, " at offset ", site.offset, ": ", parts...);
  }

  static Value opaque(Heap& heap, const std::string& type, std::string note) {
    Node* n = heap.make(NodeKind::opaque, type);
    n->note = std::move(note);
    return Value::of_node(n);
  }

  static std::int64_t int_arg(const Value& v, const std::string& fn, std::string_view field, const Site& site) {
    if (v.kind != Value::Kind::integer) fail_at(site, "REDUCE", fn, ": ", field, " is a ", kind_name(v), ", expected an int");
    return v.integer;
  }
  static std::vector<std::int64_t> ints_arg(const Value& v, const std::string& fn, std::string_view field,
                                            const Site& site) {
    if (!is(v, NodeKind::tuple) && !is(v, NodeKind::list))
      fail_at(site, "REDUCE", fn, ": ", field, " is a ", kind_name(v), ", expected a tuple of ints");
    if (v.node->items.size() > max_tensor_rank)
      fail_at(site, "REDUCE", fn, ": ", field, " has ", v.node->items.size(), " dimensions, more than ", max_tensor_rank);
    std::vector<std::int64_t> out;
    out.reserve(v.node->items.size());
    for (const Value& item : v.node->items) out.push_back(int_arg(item, fn, field, site));
    return out;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  Value rebuild_tensor(Heap& heap, const std::string& fn, Node* args, const Site& site) {
    const auto& a = args->items;
    if (a.size() < 4 || a.size() > 7)
      fail_at(site, "REDUCE", fn, ": ", a.size(), " arguments, expected (storage, offset, size, stride, ...)");
    if (is(a[0], NodeKind::opaque)) return opaque(heap, a[0].node->text, "tensor on an opaque storage");
    if (!is(a[0], NodeKind::storage)) fail_at(site, "REDUCE", fn, ": storage argument is a ", kind_name(a[0]));
    Node* t = heap.make(NodeKind::tensor);
    t->storage = a[0].node;
    t->dtype = a[0].node->dtype;
    t->storage_offset = int_arg(a[1], fn, "storage offset", site);
    t->shape = ints_arg(a[2], fn, "size", site);
    t->strides = ints_arg(a[3], fn, "stride", site);
    return Value::of_node(t);
  }

  Value call_at_depth(Heap& heap, Value callable, Node* args, const Site& site, int depth) {
    if (is(callable, NodeKind::opaque)) return opaque(heap, callable.node->text, "result of calling an opaque object");
    if (!is(callable, NodeKind::global)) fail_at(site, "REDUCE", "callable is a ", kind_name(callable), ", not a global");
    const std::string& fn = callable.node->text;
    const auto& a = args->items;
    if (fn == "collections.OrderedDict" || fn == "builtins.dict") {
      if (a.empty()) return Value::of_node(heap.make(NodeKind::dict));
      return opaque(heap, fn, "built from arguments");
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor")
      return rebuild_tensor(heap, fn, args, site);
    if (fn == "torch._utils._rebuild_parameter" || fn == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty()) fail_at(site, "REDUCE", fn, ": no arguments");
      if (is(a[0], NodeKind::tensor) || is(a[0], NodeKind::opaque)) return a[0];
      fail_at(site, "REDUCE", fn, ": data is a ", kind_name(a[0]), ", expected a tensor");
    }
    if (fn == "torch._tensor._rebuild_from_type_v2") {  // (func, type, args, state): func(*args)
      if (a.size() != 4 || !is(a[2], NodeKind::tuple)) fail_at(site, "REDUCE", fn, ": expected (func, type, args, state)");
      if (depth > 4) fail_at(site, "REDUCE", fn, ": nested too deeply");
      return call_at_depth(heap, a[0], a[2].node, site, depth + 1);
    }
    if (fn == "torch.Size") {  // the tuple itself; its ints are checked where a tensor uses it
      if (a.size() != 1 || !is(a[0], NodeKind::tuple)) fail_at(site, "REDUCE", fn, ": expected one tuple argument");
      return a[0];
    }
    if (fn == "_codecs.encode") {  // protocol 2 bytes: encode(str, 'latin1')
      if (a.size() != 2 || !is(a[0], NodeKind::string)) fail_at(site, "REDUCE", fn, ": expected (str, encoding)");
      return Value::of_node(heap.make(NodeKind::bytes, a[0].node->text));
    }
    if (fn == "builtins.set" || fn == "builtins.frozenset") {
      // Sets matter to no state dict: keep the kind, not the contents (no copy to bound memory).
      return Value::of_node(heap.make(NodeKind::set));
    }
    return opaque(heap, fn, "");
  }
};

}  // namespace fiber::io::pickle
