// A driver for fuzz targets without libFuzzer: runs every file of the seed directories, then a
// fixed number of deterministic mutations of them (bit flips, byte changes, truncations,
// splices, insertions of interesting values). It is a smoke test inside ctest, not a fuzzer:
// real campaigns use the libFuzzer build (FIBER_FUZZ=ON).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
using Bytes = std::vector<std::uint8_t>;

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void mutate(Bytes& b, const std::vector<Bytes>& seeds, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n ? rng() % n : 0; };
  static const std::uint64_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff,
                                              0xffffffff, 0x7fffffffffffffffull, ~0ull};
  switch (rng() % 7) {
    case 0: if (!b.empty()) b[pick(b.size())] ^= std::uint8_t(1u << (rng() % 8)); break;
    case 1: if (!b.empty()) b[pick(b.size())] = std::uint8_t(rng()); break;
    case 2: b.resize(pick(b.size() + 1)); break;
    case 3: {
      const Bytes& other = seeds[pick(seeds.size())];
      if (other.empty()) break;
      std::size_t at = pick(b.size() + 1), from = pick(other.size()), n = 1 + pick(other.size() - from);
      b.insert(b.begin() + at, other.begin() + from, other.begin() + from + n);
      break;
    }
    case 4: {
      if (b.empty()) break;
      std::uint64_t v = interesting[pick(std::size(interesting))];
      std::size_t width = std::size_t(1) << (rng() % 4), at = pick(b.size());
      for (std::size_t i = 0; i < width && at + i < b.size(); ++i) b[at + i] = std::uint8_t(v >> (8 * i));
      break;
    }
    case 5: if (!b.empty()) b.erase(b.begin() + pick(b.size())); break;
    case 6: for (int i = 0, n = 1 + rng() % 8; i < n; ++i) if (!b.empty()) b[pick(b.size())] = std::uint8_t(rng()); break;
  }
}
}  // namespace

int main(int argc, char** argv) {
  long mutations = 0;
  std::vector<Bytes> seeds;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--mutations=", 0) == 0) {
      mutations = std::stol(arg.substr(12));
    } else if (std::filesystem::is_directory(arg)) {
      for (auto& e : std::filesystem::directory_iterator(arg))
        if (e.is_regular_file()) seeds.push_back(read_file(e.path()));
    } else {
      seeds.push_back(read_file(arg));
    }
  }
  if (seeds.empty()) seeds.emplace_back();
  for (const Bytes& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
  std::mt19937_64 rng(20261123);
  for (long i = 0; i < mutations; ++i) {
    Bytes b = seeds[rng() % seeds.size()];
    for (int k = 0, n = 1 + rng() % 4; k < n; ++k) mutate(b, seeds, rng);
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }
  std::printf("fuzz smoke: %zu seeds, %ld mutations, no crash\n", seeds.size(), mutations);
  return 0;
}
