// Hostile inputs to `fiber inspect / convert / tokenize / resize` (issue 14): each case a small
// generated file (the multi-gigabyte ones by declared sizes only) and the exact error it must
// give, run as a child process with a deadline so a crash or a hang fails the test instead of
// taking the suite down.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "support/pickle_builder.hpp"

namespace fs = std::filesystem;
using namespace fiber::test;

namespace {

struct Dir {
  fs::path path;
  explicit Dir(const std::string& name)
      : path(fs::temp_directory_path() / ("fiber_hostile_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}
void write_file(const std::string& path, const std::string& text) { write_file(path, to_bytes(text)); }

// A safetensors file of F32 scalars named `names` (the header written by hand, so any name goes).
Bytes safetensors_of(const std::vector<std::string>& names, const std::string& dtype = "F32") {
  std::string header = "{";
  for (std::size_t i = 0; i < names.size(); ++i)
    header += (i ? ",\"" : "\"") + names[i] + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[],\"data_offsets\":[" +
              std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  header += "}";
  Bytes b;
  put_le(b, header.size(), 8);
  const Bytes h = to_bytes(header);
  b.insert(b.end(), h.begin(), h.end());
  b.resize(b.size() + 4 * names.size(), std::byte{0});
  return b;
}

// A torch zip around `pickle`, with `storages` 4-byte storages "0", "1", ...
Bytes torch_file(const PickleBuilder& pickle, std::size_t storages, bool deflate_pickle = false) {
  ZipBuilder zip;
  zip.add("archive/data.pkl", pickle.bytes(), deflate_pickle);
  zip.add("archive/byteorder", "little");
  for (std::size_t i = 0; i < storages; ++i) zip.add("archive/data/" + std::to_string(i), Bytes(4));
  zip.add("archive/version", "3\n");
  return zip.build({.align = 64, .zip64 = false, .data_descriptor = true, .comment = {}});
}

PickleBuilder& scalar(PickleBuilder& p, const std::string& key, const char* type = "FloatStorage") {
  return p.tensor(type, key, 1, 0, {}, {});
}

std::string tiny_checkpoint(const Dir& dir) {
  PickleBuilder p;
  p.proto(2).empty_dict().mark().str("w");
  scalar(p, "0").setitems().stop();
  const std::string path = dir / "tiny.pt";
  write_file(path, torch_file(p, 1));
  return path;
}

}  // namespace

// ---- 1. --drop on hostile names: linear time, no stack overflow ------------------------------

TEST_CASE("1: convert --drop 'x.*' on a 30,000-character name, and '(a*)*b' on 30 a's, finish") {
  Dir dir("drop");
  write_file(dir / "long.safetensors", safetensors_of({std::string(30000, 'x'), "keep"}));
  auto r = run_cli({"convert", dir / "long.safetensors", dir / "out.safetensors", "--drop", "x.*"}, "", 60);
  FIBER_CHECK_CLI(r, 0, "");
  CHECK(r.out.find("wrote 1 tensors") != std::string::npos);
  CHECK(r.out.find("dropped 1: xxxx") != std::string::npos);

  write_file(dir / "a.safetensors", safetensors_of({std::string(30, 'a')}));
  r = run_cli({"convert", dir / "a.safetensors", dir / "out.safetensors", "--drop", "(a*)*b"}, "", 60);
  FIBER_CHECK_CLI(r, 0, "");
  CHECK(r.seconds < 30);
  CHECK(r.out.find("wrote 1 tensors") != std::string::npos);

  r = run_cli({"convert", dir / "a.safetensors", dir / "out.safetensors", "--drop", "(a)\\1"});
  FIBER_CHECK_CLI(r, 1, "fiber: error: --drop '(a)\\1': not a valid regular expression (invalid escape sequence: \\1;"
                        " RE2 syntax: no backreferences or lookaround)");
}

// ---- 2. non-regular files do not hang any command ---------------------------------------------

TEST_CASE("2: a FIFO given as checkpoint, vocab, merges, image or text file is refused at once") {
  Dir dir("fifo");
  const std::string fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string vocab = std::string(FIBER_TEST_DATA_DIR) + "/text/vocab.json";
  const std::string merges = std::string(FIBER_TEST_DATA_DIR) + "/text/merges.txt";
  const std::string is_fifo = "is a FIFO (named pipe), not a regular file";
  FIBER_CHECK_CLI(run_cli({"inspect", fifo}, "", 20), 1, "fiber: error: " + fifo + ": " + is_fifo);
  FIBER_CHECK_CLI(run_cli({"convert", fifo, dir / "o.safetensors"}, "", 20), 1, fifo + ": " + is_fifo);
  FIBER_CHECK_CLI(run_cli({"tokenize", "--vocab", fifo, "--merges", merges, "--text", "x"}, "", 20), 1,
                  "vocab.json '" + fifo + "': " + is_fifo);
  FIBER_CHECK_CLI(run_cli({"tokenize", "--vocab", vocab, "--merges", fifo, "--text", "x"}, "", 20), 1,
                  "merges.txt '" + fifo + "': " + is_fifo);
  FIBER_CHECK_CLI(run_cli({"tokenize", "--vocab", vocab, "--merges", merges, "--text-file", fifo}, "", 20), 1,
                  "text file '" + fifo + "': " + is_fifo);
  FIBER_CHECK_CLI(run_cli({"resize", fifo, dir / "o.png", "--width", "2", "--height", "2"}, "", 20), 1,
                  "image '" + fifo + "': " + is_fifo);
}

// ---- 3. entries convert cannot represent are refused, or dropped by name and listed ----------

TEST_CASE("3: convert refuses complex and quantized entries unless they are dropped explicitly") {
  Dir dir("unrepresentable");
  PickleBuilder p;
  p.proto(2).empty_dict().mark().str("w");
  scalar(p, "0");
  p.str("z");
  scalar(p, "1", "ComplexFloatStorage");
  p.str("q").global("torch._utils", "_rebuild_qtensor").mark().integer(1).tuple().reduce();
  p.setitems().stop();
  write_file(dir / "c.pt", torch_file(p, 2));
  auto r = run_cli({"convert", dir / "c.pt", dir / "o.safetensors"});
  FIBER_CHECK_CLI(r, 1, "fiber: error: convert: 2 entries of " + (dir / "c.pt") +
                            " cannot be converted to safetensors: 'z', 'q' ('z': it is an object built by "
                            "'torch.ComplexFloatStorage', which fiber does not interpret (tensor on an opaque storage)); "
                            "drop them explicitly (--drop '^NAME$') to convert the rest, or convert it with torch");
  CHECK(dir.entries() == std::vector<std::string>{"c.pt"});
  r = run_cli({"convert", dir / "c.pt", dir / "o.safetensors", "--drop", "^[zq]$"});
  FIBER_CHECK_CLI(r, 0, "");
  CHECK(r.out.find("wrote 1 tensors (4 bytes of data)") != std::string::npos);
  CHECK(r.out.find("dropped 2: z q\n") != std::string::npos);
}

// ---- 4. keys that flatten to one name ---------------------------------------------------------

TEST_CASE("4: two entries flattening to one name are an error naming both, in inspect and convert") {
  Dir dir("flatten");
  {  // {'a.b': t1, 'a': {'b': t2}}
    PickleBuilder p;
    p.proto(2).empty_dict().mark().str("a.b");
    scalar(p, "0").str("a").empty_dict().mark().str("b");
    scalar(p, "1").setitems().setitems().stop();
    write_file(dir / "nested.pt", torch_file(p, 2));
  }
  const std::string nested = "two entries flatten to the same tensor name 'a.b': ['a.b'] and ['a']['b'] (nested keys"
                             " are joined with '.'); rename one of them";
  FIBER_CHECK_CLI(run_cli({"inspect", dir / "nested.pt"}), 1, "fiber: error: " + (dir / "nested.pt") + ": " + nested);
  FIBER_CHECK_CLI(run_cli({"convert", dir / "nested.pt", dir / "o.safetensors"}), 1, nested);
  {  // {5: t1, '5': t2}
    PickleBuilder p;
    p.proto(2).empty_dict().mark().integer(5);
    scalar(p, "0").str("5");
    scalar(p, "1").setitems().stop();
    write_file(dir / "int.pt", torch_file(p, 2));
  }
  FIBER_CHECK_CLI(run_cli({"inspect", dir / "int.pt"}), 1, "two entries flatten to the same tensor name '5': [5] and ['5']");
  {  // {b'\x01': t1, b'\x02': t2}
    PickleBuilder p;
    p.proto(2).empty_dict().mark().op('C').le(1, 1).raw("\x01");
    scalar(p, "0").op('C').le(1, 1).raw("\x02");
    scalar(p, "1").setitems().stop();
    write_file(dir / "bytes.pt", torch_file(p, 2));
  }
  FIBER_CHECK_CLI(run_cli({"inspect", "--all", dir / "bytes.pt"}), 1,
                  "two entries flatten to the same tensor name '<bytes>': [b'\\x01'] and [b'\\x02']");
  {  // the same key twice in one dict is Python's own rule: the last value wins, no error
    PickleBuilder p;
    p.proto(2).empty_dict().mark().str("w");
    scalar(p, "0").str("w");
    scalar(p, "1").setitems().stop();
    write_file(dir / "repeat.pt", torch_file(p, 2));
  }
  FIBER_CHECK_CLI(run_cli({"inspect", dir / "repeat.pt"}), 0, "");
}

// ---- 5. convert X X ---------------------------------------------------------------------------

TEST_CASE("5: convert refuses an output that is the input, a hard link or a symlink to it") {
  Dir dir("same");
  const std::string in = tiny_checkpoint(dir);
  const std::string prefix = "fiber: error: convert: the output '";
  FIBER_CHECK_CLI(run_cli({"convert", in, in}), 1, prefix + in + "' is the input file; converting in place would "
                                                   "replace the checkpoint: write to another path");
  REQUIRE(::link(in.c_str(), (dir / "hard.pt").c_str()) == 0);
  FIBER_CHECK_CLI(run_cli({"convert", in, dir / "hard.pt"}), 1, prefix + (dir / "hard.pt") + "' is the input file (a link to it)");
  REQUIRE(::symlink(in.c_str(), (dir / "soft.pt").c_str()) == 0);
  FIBER_CHECK_CLI(run_cli({"convert", in, dir / "soft.pt"}), 1, prefix + (dir / "soft.pt") + "' is the input file (a link to it)");
  FIBER_CHECK_CLI(run_cli({"convert", dir / "soft.pt", in}), 1, "is the input file (a link to it)");
  CHECK(fs::file_size(in) > 100);  // still the checkpoint
  FIBER_CHECK_CLI(run_cli({"inspect", in}), 0, "");
}

// ---- 6. nothing left behind -------------------------------------------------------------------

TEST_CASE("6: a convert that fails in the middle of writing leaves nothing beside the destination") {
  Dir dir("leftover");
  // 'a' is stored and written first; 'b' is deflated and damaged, so reading it fails mid-write.
  PickleBuilder p;
  p.proto(2).empty_dict().mark().str("a");
  scalar(p, "0").str("b").tensor("FloatStorage", "1", 1024, 0, {1024}, {1}).setitems().stop();
  ZipBuilder zip;
  zip.add("archive/data.pkl", p.bytes());
  zip.add("archive/data/0", Bytes(4));
  zip.add("archive/data/1", Bytes(4096, std::byte{1}), true);
  zip.add("archive/version", "3\n");
  ZipLayout layout;
  Bytes file = zip.build({.align = 64, .zip64 = false, .data_descriptor = true, .comment = {}}, &layout);
  file[layout.data_offsets[2] + 2] ^= std::byte{0x55};
  write_file(dir / "in.pt", file);
  const auto r = run_cli({"convert", dir / "in.pt", dir / "out.safetensors"});
  FIBER_CHECK_CLI(r, 1, "fiber: error: " + (dir / "in.pt") + ": ");
  CHECK(r.out.find("writing 2 tensors") != std::string::npos);  // it failed after it had started writing
  CHECK(dir.entries() == std::vector<std::string>{"in.pt"});
  // SIGKILL, SIGINT, SIGTERM and SIGHUP in the middle of a write: test_atomic_file.cpp.
}

// ---- 7. the output size is bounded before writing ---------------------------------------------

TEST_CASE("7: a stride-0 view over 1e9 elements is refused before writing; --max-output-bytes") {
  Dir dir("stride0");
  PickleBuilder p;
  p.proto(2).empty_dict().mark().str("big").tensor("FloatStorage", "0", 1, 0, {1000000000}, {0}).setitems().stop();
  write_file(dir / "expand.pt", torch_file(p, 1));
  CHECK(fs::file_size(dir / "expand.pt") < 1000);
  auto r = run_cli({"convert", dir / "expand.pt", dir / "o.safetensors"});
  FIBER_CHECK_CLI(r, 1, "fiber: error: convert: the output would hold 4000000000 bytes of tensor data, more than the "
                        "limit of 1073741824 bytes (default: 4 times the input's ");
  CHECK(r.err.find("the largest tensor, 'big', alone is 4000000000 bytes (a view with stride 0 repeats its storage and is"
                   " written out in full); pass --max-output-bytes to allow it") != std::string::npos);
  CHECK(dir.entries() == std::vector<std::string>{"expand.pt"});
  const std::string tiny = tiny_checkpoint(dir);
  r = run_cli({"convert", tiny, dir / "o.safetensors", "--max-output-bytes", "3"});
  FIBER_CHECK_CLI(r, 1, "convert: the output would hold 4 bytes of tensor data, more than the limit of 3 bytes "
                        "(--max-output-bytes)");
  r = run_cli({"convert", tiny, dir / "o.safetensors", "--max-output-bytes", "1KiB"});
  FIBER_CHECK_CLI(r, 0, "");
  CHECK(r.out.find("writing 1 tensors (4 bytes of data) to ") == 0);
}

// ---- 9. memory, not only object counts --------------------------------------------------------

TEST_CASE("9: a small deflated pickle of ten million empty lists is refused within a few hundred MB") {
  Dir dir("pickle_memory");
  PickleBuilder p;
  p.proto(2).op(']');
  for (int i = 0; i < 10'000'000; ++i) p.op(']').op('a');
  p.stop();
  const Bytes file = torch_file(p, 0, true);
  CHECK(file.size() < 200'000);
  write_file(dir / "lists.pt", file);
  const auto r = run_cli({"inspect", dir / "lists.pt"}, "", 120);
  // 256 MiB + 64 x the deflated pickle's ~20 KB
  FIBER_CHECK_CLI(r, 1, "archive/data.pkl: pickle: its objects would take more than 257 MiB of memory (");
  CHECK(r.err.find("raise PickleLimits::max_bytes if this file is genuine") != std::string::npos);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's redzones, quarantine and shadow memory nearly double the footprint of many
  // small allocations (716 MiB measured for this file): the bound is checked in builds without it.
  MESSAGE("AddressSanitizer build: the 400 MiB bound is left to other builds; peak " << r.max_rss_kib / 1024 << " MiB");
#else
  CHECK(r.max_rss_kib < 400 * 1024);
  MESSAGE("peak memory to reject it: " << r.max_rss_kib / 1024 << " MiB");
#endif
}

// ---- 10. control characters in inspect's text output ------------------------------------------

TEST_CASE("10: inspect escapes control characters in names and metadata") {
  Dir dir("escape");
  const std::string name = "a\\nforged  F32  [1]  4\\u001b[2J\\u001b]0;title\\u0007";
  std::string header = "{\"__metadata__\":{\"k\\r\":\"v\\u001b[31m\"},\"" + name +
                       "\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}";
  Bytes b;
  put_le(b, header.size(), 8);
  const Bytes h = to_bytes(header);
  b.insert(b.end(), h.begin(), h.end());
  b.resize(b.size() + 4);
  write_file(dir / "esc.safetensors", b);
  const auto r = run_cli({"inspect", dir / "esc.safetensors"});
  FIBER_CHECK_CLI(r, 0, "");
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.out.find('\x07') == std::string::npos);
  CHECK(r.out.find("  a\\nforged  F32  [1]  4\\x1b[2J\\x1b]0;title\\x07  F32    []     4\n") != std::string::npos);
  CHECK(r.out.find("  k\\r = v\\x1b[31m\n") != std::string::npos);
  const auto j = run_cli({"inspect", "--json", dir / "esc.safetensors"});
  FIBER_CHECK_CLI(j, 0, "");
  CHECK(j.out.find("a\\nforged  F32  [1]  4\\u001b[2J") != std::string::npos);
}

// ---- 11. a damaged safetensors file says what is wrong with it --------------------------------

TEST_CASE("11: inspect names the safetensors problem") {
  Dir dir("safetensors");
  Bytes b;
  put_le(b, 0, 8);
  write_file(dir / "zero.safetensors", b);
  FIBER_CHECK_CLI(run_cli({"inspect", dir / "zero.safetensors"}), 1,
                  "zero.safetensors: not a PyTorch zip checkpoint (no \"PK\" signature), and not a valid safetensors "
                  "file: the header length (first 8 bytes, little-endian) is 0, too small for a JSON object");
}

// ---- 12. messages ----------------------------------------------------------------------------

TEST_CASE("12: devices, unknown commands, empty outputs and huge echoed values") {
  Dir dir("messages");
  const std::string vocab = std::string(FIBER_TEST_DATA_DIR) + "/text/vocab.json";
  const std::string merges = std::string(FIBER_TEST_DATA_DIR) + "/text/merges.txt";
  FIBER_CHECK_CLI(run_cli({"tokenize", "--vocab", vocab, "--merges", "/dev/urandom", "--text", "x"}, "", 20), 1,
                  "fiber: error: merges.txt '/dev/urandom': is a character device, not a regular file");
  FIBER_CHECK_CLI(run_cli({"resize", "/dev/urandom", dir / "o.png", "--width", "2", "--height", "2"}, "", 20), 1,
                  "fiber: error: image '/dev/urandom': is a character device, not a regular file");
  FIBER_CHECK_CLI(run_cli({"frobnicate", "x"}), 2,
                  "fiber: error: unknown command 'frobnicate' (commands: convert, data, embed, ground, init, inspect, match, resize, retrieve, tokenize, train; fiber --help)");

  // An empty output path fails before the input is read (the input here does not even exist).
  FIBER_CHECK_CLI(run_cli({"convert", dir / "missing.pt", ""}), 1, "fiber: error: convert: output: the path is empty");
  FIBER_CHECK_CLI(run_cli({"convert", dir / "missing.pt", dir / "no/such/dir/o.safetensors"}), 1,
                  "/no/such/dir' does not exist");
  FIBER_CHECK_CLI(run_cli({"resize", dir / "missing.png", dir / "no/o.png", "--width", "2", "--height", "2"}), 1,
                  "fiber: error: resize: output '" + (dir / "no/o.png") + "': directory '");

  // A 10 MB merges token and a 1 MB dtype string are echoed as their first 100 bytes.
  write_file(dir / "merges.txt", "#version: 0.2\n" + std::string(10 << 20, 'm') + " x\n");
  auto r = run_cli({"tokenize", "--vocab", vocab, "--merges", dir / "merges.txt", "--text", "x"});
  FIBER_CHECK_CLI(r, 1, "merges.txt: line 2: merge part '" + std::string(100, 'm') + "\xe2\x80\xa6 (10485760 bytes)' is "
                        "not in the vocabulary");
  CHECK(r.err.size() < 600);
  write_file(dir / "dtype.safetensors", safetensors_of({"w"}, std::string(1 << 20, 'D')));
  r = run_cli({"inspect", dir / "dtype.safetensors"});
  FIBER_CHECK_CLI(r, 1, "tensor 'w': field 'dtype': unknown or unsupported dtype '" + std::string(100, 'D') +
                            "\xe2\x80\xa6 (1048576 bytes)'");
  CHECK(r.err.size() < 600);
}

// ---- 13. tokenize from a file or standard input -----------------------------------------------

TEST_CASE("13: tokenize --text-file F and --text-file - (standard input), beyond the 128 KiB argument cap") {
  Dir dir("text");
  const std::string vocab = std::string(FIBER_TEST_DATA_DIR) + "/text/vocab.json";
  const std::string merges = std::string(FIBER_TEST_DATA_DIR) + "/text/merges.txt";
  const auto direct = run_cli({"tokenize", "--vocab", vocab, "--merges", merges, "--text", "the red mug", "--json"});
  FIBER_CHECK_CLI(direct, 0, "");
  write_file(dir / "t.txt", "the red mug");
  const auto from_file =
      run_cli({"tokenize", "--vocab", vocab, "--merges", merges, "--text-file", dir / "t.txt", "--json"});
  FIBER_CHECK_CLI(from_file, 0, "");
  CHECK(from_file.out == direct.out);
  const auto from_stdin = run_cli({"tokenize", "--vocab", vocab, "--merges", merges, "--text-file", "-", "--json"},
                                  "the red mug");
  FIBER_CHECK_CLI(from_stdin, 0, "");
  CHECK(from_stdin.out == direct.out);

  std::string big;
  while (big.size() < 300'000) big += "a red mug on the table. ";
  const auto large = run_cli({"tokenize", "--vocab", vocab, "--merges", merges, "--text-file", "-", "--max-len", "5"}, big);
  FIBER_CHECK_CLI(large, 0, "");
  CHECK(large.out.find("4\t2\t</s>") != std::string::npos);

  FIBER_CHECK_CLI(run_cli({"tokenize", "--vocab", vocab, "--merges", merges}), 1,
                  "fiber: error: tokenize: give the text with --text TEXT, --text-file FILE or --text-file - (standard input)");
  FIBER_CHECK_CLI(run_cli({"tokenize", "--vocab", vocab, "--merges", merges, "--text", "x", "--text-file", "-"}), 108,
                  "--text excludes --text-file");
}
