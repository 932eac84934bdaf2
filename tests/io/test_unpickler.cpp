// The restricted unpickler: opcodes, memo, marks, limits; and what torch's globals become.
#include <doctest/doctest.h>

#include <string>

#include "fiber/io/torch_pickle.hpp"
#include "fiber/io/unpickler.hpp"
#include "support/pickle_builder.hpp"

using namespace fiber;
using namespace fiber::io::pickle;
using fiber::test::Bytes;
using fiber::test::PickleBuilder;

namespace {

struct Run {
  explicit Run(std::size_t max_bytes = Heap::default_max_bytes) : heap(1 << 20, "t.pkl", max_bytes) {}
  Heap heap;
  TorchPickleHooks hooks;
  Value value;
};

std::unique_ptr<Run> run(const Bytes& bytes, PickleLimits limits = {}) {
  auto r = std::make_unique<Run>(limits.max_bytes);
  r->value = Unpickler(io::ByteReader(bytes, "t.pkl"), r->heap, r->hooks, limits).run();
  return r;
}

}  // namespace

TEST_CASE("scalars") {
  CHECK(run(PickleBuilder().proto().integer(7).stop().bytes())->value.integer == 7);
  CHECK(run(PickleBuilder().integer(-5).stop().bytes())->value.integer == -5);
  CHECK(run(PickleBuilder().integer(std::int64_t(1) << 40).stop().bytes())->value.integer == std::int64_t(1) << 40);
  CHECK(run(PickleBuilder().op('M').le(0xfffe, 2).stop().bytes())->value.integer == 0xfffe);
  CHECK(run(PickleBuilder().op(0x8a).le(2, 1).le(0xff7f, 2).stop().bytes())->value.integer == -129);  // LONG1, 2 bytes
  CHECK(run(PickleBuilder().op(0x8a).le(0, 1).stop().bytes())->value.integer == 0);
  CHECK(is(run(PickleBuilder().op(0x8a).le(9, 1).le(0, 8).le(1, 1).stop().bytes())->value, NodeKind::big_integer));
  CHECK(run(PickleBuilder().op('G').raw(std::string("\x3f\xf8\0\0\0\0\0\0", 8)).stop().bytes())->value.floating == 1.5);
  CHECK(run(PickleBuilder().none().stop().bytes())->value.kind == Value::Kind::none);
  CHECK(run(PickleBuilder().boolean(true).stop().bytes())->value.boolean);
  CHECK(run(PickleBuilder().str("héllo").stop().bytes())->value.node->text == "héllo");
  CHECK(run(PickleBuilder().op(0x8c).le(2, 1).raw("ab").stop().bytes())->value.node->text == "ab");
  CHECK(run(PickleBuilder().op('U').le(2, 1).raw("cd").stop().bytes())->value.node->text == "cd");
  CHECK(run(PickleBuilder().op('C').le(3, 1).raw("xyz").stop().bytes())->value.node->kind == NodeKind::bytes);
  // protocol 2 bytes: _codecs.encode('abc', 'latin1')
  auto b = run(PickleBuilder().global("_codecs", "encode").str("abc").str("latin1").op(0x86).reduce().stop().bytes());
  CHECK(b->value.node->kind == NodeKind::bytes);
  CHECK(b->value.node->text == "abc");
}

TEST_CASE("containers, marks and memo share objects like Python") {
  // d = {}; l = [1, 2]; d['a'] = l; d['b'] = l (memo); l.append(3) afterwards shows in both.
  PickleBuilder p;
  p.proto().empty_dict().binput(0).mark();
  p.str("a").op(']').binput(1).mark().integer(1).integer(2).op('e');
  p.str("b").binget(1);
  p.op('u');
  p.binget(1).integer(3).op('a').op('0');  // append to the shared list, pop it
  p.stop();
  auto r = run(p.bytes());
  io::pickle::Node* d = r->value.node;
  REQUIRE(d->kind == NodeKind::dict);
  REQUIRE(d->items.size() == 4);
  CHECK(d->items[1].node == d->items[3].node);
  CHECK(d->items[1].node->items.size() == 3);
  // TUPLE1..3, TUPLE, LIST, DICT, sets, DUP, POP_MARK, MEMOIZE, FRAME
  PickleBuilder q;
  q.proto(4).op(0x95).le(20, 8).mark().integer(1).integer(2).integer(3).op(0x87).op(0x94);
  q.mark().integer(4).op('l').mark().str("k").integer(5).op('d').op(0x8f).mark().integer(6).op(0x90);
  q.mark().integer(7).op(0x91).op('2').mark().integer(9).op('1').op('t').stop();
  auto t = run(q.bytes());
  REQUIRE(t->value.node->kind == NodeKind::tuple);
  const auto& items = t->value.node->items;
  REQUIRE(items.size() == 6);
  CHECK(items[0].node->items.size() == 3);
  CHECK(items[1].node->kind == NodeKind::list);
  CHECK(items[2].node->kind == NodeKind::dict);
  CHECK(items[3].node->kind == NodeKind::set);
  CHECK(items[4].node == items[5].node);  // DUP
}

TEST_CASE("torch globals: tensors, parameters, Size, OrderedDict; others opaque") {
  PickleBuilder p;
  p.proto().global("torch._utils", "_rebuild_parameter");
  p.tensor("HalfStorage", "3", 12, 2, {2, 3}, {1, 2});
  p.boolean(true).global("collections", "OrderedDict").empty_tuple().reduce().op(0x87).reduce().stop();
  auto r = run(p.bytes());
  io::pickle::Node* t = r->value.node;
  REQUIRE(t->kind == NodeKind::tensor);
  CHECK(t->dtype == DType::f16);
  CHECK(t->storage->text == "3");
  CHECK(t->storage->numel == 12);
  CHECK(t->storage_offset == 2);
  CHECK(t->shape == std::vector<std::int64_t>{2, 3});
  CHECK(t->strides == std::vector<std::int64_t>{1, 2});

  auto size = run(PickleBuilder().global("torch", "Size").mark().integer(4).integer(5).op('t').op(0x85).reduce().stop().bytes());
  CHECK(size->value.node->kind == NodeKind::tuple);

  // argparse.Namespace(): NEWOBJ of an unknown class, then BUILD and SETITEMS are absorbed.
  auto ns = run(PickleBuilder().global("argparse", "Namespace").empty_tuple().op(0x81).empty_dict().op('b').stop().bytes());
  REQUIRE(ns->value.node->kind == NodeKind::opaque);
  CHECK(ns->value.node->text == "argparse.Namespace");
  auto counter = run(PickleBuilder().global("collections", "Counter").empty_dict().op(0x85).reduce()
                         .mark().integer(1).integer(2).op('u').stop().bytes());
  CHECK(counter->value.node->text == "collections.Counter");
  // A tensor on an opaque storage is opaque and says why.
  auto odd = run(PickleBuilder().tensor("ComplexFloatStorage", "0", 2, 0, {2}, {1}).stop().bytes());
  CHECK(odd->value.node->kind == NodeKind::opaque);
  CHECK(odd->value.node->text == "torch.ComplexFloatStorage");
  // STACK_GLOBAL and python 2 module names.
  auto sg = run(PickleBuilder().proto(4).str("__builtin__").str("set").op(0x93).op(']').op(0x85).reduce().stop().bytes());
  CHECK(sg->value.node->kind == NodeKind::set);
}

TEST_CASE("limits hold against hostile pickles") {
  PickleLimits limits;
  limits.max_stack = 100;
  PickleBuilder deep;
  for (int i = 0; i < 200; ++i) deep.op(']');
  CHECK_THROWS_WITH_AS(run(deep.stop().bytes(), limits), doctest::Contains("stack exceeds 100 values"), Error);
  limits = {};
  limits.max_memo = 10;
  PickleBuilder memo;
  memo.none();
  for (int i = 0; i < 20; ++i) memo.op('r').le(std::uint64_t(i) * 1000, 4);
  CHECK_THROWS_WITH_AS(run(memo.stop().bytes(), limits), doctest::Contains("memo exceeds 10 entries"), Error);
  limits = {};
  limits.max_items = 50;
  PickleBuilder items;
  items.op(']').mark();
  for (int i = 0; i < 60; ++i) items.integer(i);
  CHECK_THROWS_WITH_AS(run(items.op('e').stop().bytes(), limits), doctest::Contains("more than 50 elements"), Error);
  // A list appended to itself is a cycle: building it is fine (arena, no leak).
  auto cyclic = run(PickleBuilder().op(']').binput(0).binget(0).op('a').stop().bytes());
  CHECK(cyclic->value.node->items[0].node == cyclic->value.node);
}

TEST_CASE("memory is bounded, not only object counts (issue 14, item 9)") {
  // Empty lists appended to one list: 2 bytes of pickle each, a node and a slot in memory.
  PickleBuilder lists;
  lists.op(']');
  for (int i = 0; i < 100'000; ++i) lists.op(']').op('a');
  PickleLimits limits;
  limits.max_bytes = std::size_t(4) << 20;
  CHECK_THROWS_WITH_AS(run(lists.stop().bytes(), limits),
                       doctest::Contains("t.pkl: pickle: its objects would take more than 4 MiB of memory ("), Error);
  limits.max_bytes = std::size_t(64) << 20;  // the same pickle fits a larger budget
  CHECK(run(lists.bytes(), limits)->value.node->items.size() == 100'000);
  // Memo entries and stack slots count too: None memoised under 100k keys.
  PickleBuilder memo;
  memo.none();
  for (int i = 0; i < 100'000; ++i) memo.op('r').le(std::uint64_t(i), 4);
  limits.max_bytes = std::size_t(2) << 20;
  CHECK_THROWS_WITH_AS(run(memo.stop().bytes(), limits), doctest::Contains("more than 2 MiB of memory"), Error);
  PickleBuilder stack;
  for (int i = 0; i < 100'000; ++i) stack.none();
  CHECK_THROWS_WITH_AS(run(stack.stop().bytes(), limits), doctest::Contains("more than 2 MiB of memory (0 objects"), Error);
}
