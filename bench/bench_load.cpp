// Loading a ~1 GB PyTorch checkpoint: fiber (lazily: the index and one tensor; fully: every
// tensor copied into owned buffers) beside torch.load (mmap=False and mmap=True, plus one
// tensor) on the same file, same machine, same run. Every measurement runs in a fresh child
// process, so each peak RSS (VmHWM) is that load's alone; times are medians of --repeats runs.
// The file is generated here (torch.save's layout: stored, 64-byte aligned, data descriptors,
// zip64 records) into /tmp and is warm in the page cache for both readers.
//
//   bench_load [--size-mb 1024] [--file /tmp/fiber_bench_load.pt] [--python PATH] [--repeats 3] [--keep]
//   (torch side: bench/bench_load_torch.py run with PATH, default $FIBER_REF_PYTHON or the
//   reference interpreter /root/.cache/fiber-ref-venv/bin/python; skipped when absent)
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../tests/io/support/pickle_builder.hpp"
#include "fiber/io/open_checkpoint.hpp"

namespace {

using fiber::test::Bytes;
using fiber::test::TorchTensorSpec;

const char* lazy_tensor = "encoder.layer.8.intermediate.dense.weight";

// A RoBERTa-large-like state dict of about `megabytes` MB (f32).
std::vector<TorchTensorSpec> model_tensors(std::size_t megabytes) {
  std::vector<TorchTensorSpec> t;
  auto add = [&](std::string name, std::vector<std::int64_t> shape) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    Bytes data(std::size_t(n) * 4);
    std::uint32_t state = std::uint32_t(t.size() * 2654435761u + 12345u);
    for (std::int64_t i = 0; i < n; ++i) {  // cheap pseudo-random floats in [-1, 1)
      state = state * 1664525u + 1013904223u;
      const float v = float(std::int32_t(state)) * (1.0f / 2147483648.0f);
      std::memcpy(data.data() + 4 * i, &v, 4);
    }
    t.push_back({std::move(name), fiber::DType::f32, std::move(shape), std::move(data)});
  };
  add("embeddings.word_embeddings.weight", {50265, 1024});
  std::size_t bytes = 50265ull * 1024 * 4;
  for (int l = 0; bytes < megabytes * 1000000ull; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    add(p + "attention.self.query.weight", {1024, 1024});
    add(p + "attention.self.key.weight", {1024, 1024});
    add(p + "attention.self.value.weight", {1024, 1024});
    add(p + "attention.output.dense.weight", {1024, 1024});
    add(p + "attention.output.LayerNorm.weight", {1024});
    add(p + "intermediate.dense.weight", {4096, 1024});
    add(p + "intermediate.dense.bias", {4096});
    add(p + "output.dense.weight", {1024, 4096});
    add(p + "output.LayerNorm.weight", {1024});
    bytes += (4 * 1024 * 1024 + 2 * 4096 * 1024 + 4096 + 2 * 1024) * 4ull;
  }
  return t;
}

void generate(const std::string& path, std::size_t megabytes) {
  const auto tensors = model_tensors(megabytes);
  std::vector<const Bytes*> storages;
  for (const auto& t : tensors) storages.push_back(&t.data);
  const std::string prefix = std::filesystem::path(path).stem().string() + "/";
  const Bytes file = fiber::test::torch_zip(fiber::test::torch_state_dict_pickle(tensors), storages, prefix,
                                            {.align = 64, .zip64 = true, .data_descriptor = true, .comment = {}});
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(file.data()), std::streamsize(file.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// The child: one load, prints "<seconds> <peak RSS MB> <CPU seconds> <bytes read> <checksum>".
int child(const std::string& mode, const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  std::size_t bytes = 0;
  double checksum = 0;
  fiber::io::OpenOptions options;
  options.verify_checksums = mode == "full_crc";
  const fiber::io::Checkpoint ck = fiber::io::open_checkpoint(path, options);
  if (mode == "lazy") {
    const auto values = ck.record(lazy_tensor).to_vector<float>();
    bytes = values.size() * 4;
    checksum = values[values.size() / 2];
  } else {
    // Owned, uninitialised buffers (as a tensor allocator would give), filled by copy_to.
    std::vector<std::unique_ptr<float[]>> all;
    all.reserve(ck.size());
    for (const auto& name : ck.names()) {
      const auto r = ck.record(name);
      all.push_back(std::make_unique_for_overwrite<float[]>(std::size_t(r.numel())));
      r.copy_to(std::span<float>(all.back().get(), std::size_t(r.numel())));
      ck.release(r);  // the copy is ours now: the file's pages can leave our resident set
      bytes += std::size_t(r.numel()) * 4;
      checksum += all.back()[0];
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.6f %.1f %.4f %zu %g\n", seconds, peak_rss_mb(), cpu_seconds() - cpu_start, bytes, checksum);
  return 0;
}

struct Sample {
  double seconds = 0, rss_mb = 0, cpu = 0, baseline_mb = 0;
  bool ok = false;
};

std::string run_capture(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  return out;
}

Sample median(std::vector<Sample> s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](const Sample& x) { return !x.ok; }), s.end());
  if (s.empty()) return {};
  std::sort(s.begin(), s.end(), [](const Sample& a, const Sample& b) { return a.seconds < b.seconds; });
  return s[s.size() / 2];
}

Sample fiber_sample(const std::string& self, const std::string& mode, const std::string& path) {
  std::istringstream in(run_capture("'" + self + "' --child " + mode + " '" + path + "'"));
  Sample s;
  s.ok = bool(in >> s.seconds >> s.rss_mb >> s.cpu);
  return s;
}

// bench_load_torch.py prints "seconds peak_rss_mb cpu_seconds baseline_rss_mb".
Sample torch_sample(const std::string& python, const std::string& script, const std::string& mode, const std::string& path) {
  std::istringstream in(run_capture("'" + python + "' '" + script + "' " + mode + " '" + path + "' " + lazy_tensor + " 2>/dev/null"));
  Sample s;
  s.ok = bool(in >> s.seconds >> s.rss_mb >> s.cpu >> s.baseline_mb);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "--child") return child(args[1], args[2]);
  std::size_t megabytes = 1024;
  int repeats = 3;
  bool keep = false;
  std::string path = "/tmp/fiber_bench_load.pt";
  const char* env_python = std::getenv("FIBER_REF_PYTHON");
  std::string python = env_python ? env_python : "/root/.cache/fiber-ref-venv/bin/python";
  for (std::size_t i = 0; i < args.size(); i += 2) {
    if (args[i] == "--keep") {
      keep = true;
      --i;
      continue;
    }
    if (i + 1 >= args.size()) {
      std::cerr << "usage: bench_load [--size-mb N] [--file PATH] [--python PATH] [--repeats N] [--keep]\n";
      return 2;
    }
    if (args[i] == "--size-mb") megabytes = std::stoul(args[i + 1]);
    else if (args[i] == "--file") path = args[i + 1];
    else if (args[i] == "--python") python = args[i + 1];
    else if (args[i] == "--repeats") repeats = std::stoi(args[i + 1]);
    else {
      std::cerr << "usage: bench_load [--size-mb N] [--file PATH] [--python PATH] [--repeats N] [--keep]\n";
      return 2;
    }
  }
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  const std::string script = (std::filesystem::path(__FILE__).parent_path() / "bench_load_torch.py").string();

  std::cout << "generating " << path << " (~" << megabytes << " MB, torch.save layout)..." << std::flush;
  generate(path, megabytes);
  const auto info = fiber::io::open_checkpoint(path);
  std::cout << " " << std::filesystem::file_size(path) / 1e6 << " MB, " << info.size() << " tensors\n";

  std::vector<Sample> fl, ff, fc, tl, tf, tm;
  const bool have_torch = ::access(python.c_str(), X_OK) == 0;
  for (int r = 0; r < repeats; ++r) {  // interleaved, so load changes on the machine hit both sides
    fl.push_back(fiber_sample(self, "lazy", path));
    ff.push_back(fiber_sample(self, "full", path));
    fc.push_back(fiber_sample(self, "full_crc", path));
    if (have_torch) {
      tm.push_back(torch_sample(python, script, "mmap", path));
      tl.push_back(torch_sample(python, script, "mmap_one", path));
      tf.push_back(torch_sample(python, script, "full", path));
    }
  }
  const Sample fiber_lazy = median(fl), fiber_full = median(ff), fiber_crc = median(fc);
  const Sample torch_mmap = median(tm), torch_mmap_one = median(tl), torch_full = median(tf);
  std::printf("\n%-50s %9s %9s %12s\n", "load (median of runs, fresh process each)", "wall s", "CPU s", "peak RSS MB");
  auto row = [](const char* what, const Sample& s) {
    if (!s.ok) std::printf("%-50s %9s %9s %12s\n", what, "n/a", "n/a", "n/a");
    else if (s.baseline_mb > 0)
      std::printf("%-50s %9.4f %9.4f %12.1f  (%.1f before torch.load)\n", what, s.seconds, s.cpu, s.rss_mb, s.baseline_mb);
    else std::printf("%-50s %9.4f %9.4f %12.1f\n", what, s.seconds, s.cpu, s.rss_mb);
  };
  row("fiber: open + one tensor (16.8 MB) copied out", fiber_lazy);
  row("torch.load(mmap=True) + that tensor .clone()", torch_mmap_one);
  row("torch.load(mmap=True) alone", torch_mmap);
  row("fiber: every tensor into owned buffers", fiber_full);
  row("fiber: the same, verify_checksums=true (CRC-32)", fiber_crc);
  row("torch.load(mmap=False)", torch_full);
  if (fiber_lazy.ok && torch_mmap_one.ok)
    std::printf("\nlazy: torch.load(mmap=True)+tensor / fiber = %.2fx wall, %.2fx CPU; RSS growth %.1f MB (torch) vs %.1f MB "
                "(fiber, whole process)\n",
                torch_mmap_one.seconds / fiber_lazy.seconds, torch_mmap_one.cpu / fiber_lazy.cpu,
                torch_mmap_one.rss_mb - torch_mmap_one.baseline_mb, fiber_lazy.rss_mb);
  if (fiber_full.ok && torch_full.ok)
    std::printf("full: torch.load(mmap=False) / fiber = %.2fx wall, %.2fx CPU (%.2fx, %.2fx with CRC checks); RSS "
                "growth %.1f MB (torch) vs %.1f MB (fiber, whole process)\n",
                torch_full.seconds / fiber_full.seconds, torch_full.cpu / fiber_full.cpu,
                torch_full.seconds / fiber_crc.seconds, torch_full.cpu / fiber_crc.cpu,
                torch_full.rss_mb - torch_full.baseline_mb, fiber_full.rss_mb);
  if (!have_torch) std::printf("\n(torch side skipped: %s not found; pass --python)\n", python.c_str());
  std::printf("threads: %d (FIBER_NUM_THREADS), page cache warm for both\n", fiber::num_threads());
  if (!keep) std::filesystem::remove(path);
  return 0;
}
