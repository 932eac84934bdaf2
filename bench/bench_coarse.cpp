// FIBER-B coarse at 384 x 384 with 40 text tokens, inference (NoGrad), three cells at batch 1 and 8:
//   image  image_embedding: Swin-B + ITC head (transform_itc, mean, pooler_itc, L2 norm)
//   text   text_embedding: RoBERTa + ITC head
//   fused  fuse (Swin + RoBERTa with fusion in the backbone) + itm_logits + mlm_logits
// With --torch PYTHON it runs bench_coarse_torch.py with that interpreter: the OFFICIAL model
// (microsoft/FIBER modules, tests/reference/coarse_official.py) under PyTorch eager and under
// ONNX Runtime, same threads, same cells, and prints them beside ours with ratios.
//
// FLOPs are counted analytically (coarse_flops below): 2·M·N·K for every matrix product of the
// cell (linear layers, the patch-embedding convolution as a GEMM, attention scores q·kᵀ and
// probabilities·v), on all 40 tokens (padding included: every engine computes them). Softmax,
// norms, GELU, adds are not counted (a few percent of the total). The PyTorch side checks the
// count with torch.utils.flop_counter on its first call (column "torch GFLOP").
//
// Then a breakdown of our time for the image path (Swin-B) and a RoBERTa layer: each piece of a
// block run on its own on the real shapes (GEMMs, attention scores / softmax / P·V, layer norms,
// layout copies: roll, window partition / reverse, head split and merge, elementwise), scaled by
// how often the model runs it, beside the time of the whole block.
//
//   build-bench/bench/bench_coarse --torch $PY --threads 2            # the full table
//   build-bench/bench/bench_coarse --batches 1 --repeats 1 --no-breakdown   # a quick check
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "bench_common.hpp"
#include "fiber/fiber.hpp"
#include "fiber/models/fiber_coarse.hpp"

using namespace fiber;

namespace {
constexpr models::FiberCoarseConfig C = models::FiberBaseCoarse384;
using Model = models::FiberCoarse<float, C>;
constexpr std::int64_t text_len = 40;

struct Options {
  const char* python = nullptr;
  int threads = 0;
  std::vector<std::string> cells{"image", "text", "fused"};
  std::vector<int> batches{1, 8};
  int repeats = 5, warmup = 1;
  bool ort = true, breakdown = true;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int to_int(const std::string& option, const std::string& text) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  FIBER_CHECK(!text.empty() && *end == '\0' && v >= 0 && v <= 100000, "bench_coarse: ", option, " expects a count, got '",
              text, "'");
  return int(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      FIBER_CHECK(i + 1 < argc, "bench_coarse: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--torch") {
      FIBER_CHECK(i + 1 < argc, "bench_coarse: --torch needs a value");
      o.python = argv[++i];
    } else if (a == "--threads") o.threads = to_int(a, value());
    else if (a == "--cells") o.cells = split(value());
    else if (a == "--batches") {
      o.batches.clear();
      for (const auto& b : split(value())) o.batches.push_back(std::max(1, to_int(a, b)));
    } else if (a == "--repeats") o.repeats = to_int(a, value());
    else if (a == "--warmup") o.warmup = to_int(a, value());
    else if (a == "--no-ort") o.ort = false;
    else if (a == "--no-breakdown") o.breakdown = false;
    else {
      std::printf(
          "usage: bench_coarse [--torch PYTHON] [--threads N] [--cells image,text,fused] [--batches 1,8]\n"
          "                    [--repeats N] [--warmup N] [--no-ort] [--no-breakdown]\n");
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  for (const auto& c : o.cells)
    FIBER_CHECK(c == "image" || c == "text" || c == "fused", "bench_coarse: unknown cell '", c, "'");
  return o;
}

// ---- analytic FLOPs ---------------------------------------------------------------------------
// 2·rows·in·out for a linear layer; attention over heads together: 2·Nq·Nk·width for q·kᵀ and
// again for P·v.
double lin(double rows, double in, double out) { return 2 * rows * in * out; }
double attn(double nq, double nk, double width) { return 4 * nq * nk * width; }

// One image (batch 1); every term scales with the batch.
struct CellFlops {
  double image = 0, text = 0, fused = 0;
};
CellFlops coarse_flops() {
  const auto& s = C.swin;
  const double w2 = double(s.window()) * s.window();
  const double Lt = text_len, H = C.text.hidden, I = C.text.intermediate;
  // Swin: patch embedding (a [tokens, 3·p²] x [3·p², C] GEMM), then per stage and block.
  double swin = lin(double(s.grid()) * s.grid(), s.in_chans * s.patch_size * s.patch_size, s.embed_dim);
  double i2t = 0;  // the image-to-text attention of the fused blocks
  for (int st = 0; st < 4; ++st) {
    const double side = s.stage_side(st), L = side * side, D = s.stage_dim(st);
    const double N = std::min(w2, L);  // keys per window (one window when the map is the window)
    const double block = lin(L, D, 3 * D) + attn(L, N, D) + lin(L, D, D) + lin(L, D, 4 * D) + lin(L, 4 * D, D);
    swin += s.depths[st] * block;
    if (st < 3) swin += lin(L / 4, 4 * D, 2 * D);  // patch merging
    const int fused_blocks = st == 2 ? C.fused_in_stage3() : st == 3 ? s.depths[3] : 0;
    // qkv_text_i2t on the text, qkv_i2t and proj_i2t on the image, attention to Lt tokens.
    i2t += fused_blocks * (lin(Lt, H, 2 * D) + 2 * lin(L, D, D) + attn(L, Lt, D));
  }
  const double Li4 = double(s.stage_side(3)) * s.stage_side(3), D4 = s.num_features();
  // RoBERTa layer: q, k, v, dense, FFN, self-attention; fused layers add the cross-attention
  // (query and dense on the text, key and value on the image tokens of their stage).
  const double layer = 4 * lin(Lt, H, H) + attn(Lt, Lt, H) + lin(Lt, H, I) + lin(Lt, I, H);
  double t2i = 0;
  for (int i = C.first_fused_layer(); i < C.text.layers; ++i) {
    const bool stage4 = i >= C.text.layers - s.depths[3];
    const double Li = stage4 ? Li4 : double(s.stage_side(2)) * s.stage_side(2), Di = stage4 ? D4 : s.stage_dim(2);
    t2i += 2 * lin(Lt, H, H) + 2 * lin(Li, Di, H) + attn(Lt, Li, H);
  }
  const double text = C.text.layers * layer;
  CellFlops f;
  f.image = swin + lin(Li4, D4, C.hidden) + lin(1, C.hidden, C.hidden);  // transform_itc, pooler_itc
  f.text = text + lin(Lt, H, C.hidden) + lin(1, C.hidden, C.hidden);
  f.fused = swin + i2t + text + t2i + lin(Lt, H, C.hidden) + lin(Li4, D4, C.hidden) + 2 * lin(1, C.hidden, C.hidden) +
            lin(1, 2 * C.hidden, 2) + lin(Lt, C.hidden, C.hidden) + lin(Lt, C.hidden, C.mlm_vocab);  // heads: ITM, MLM
  return f;
}

// ---- the reference side -------------------------------------------------------------------------
struct RefTime {
  double median = 0, best = 0;
};
struct Reference {
  std::map<std::tuple<std::string, int, std::string>, RefTime> times;  // (cell, batch, engine)
  std::map<std::string, double> flops;                                   // cell -> per image
};

// The script prints "time<TAB>cell<TAB>batch<TAB>engine<TAB>median<TAB>best" (seconds) and
// "flops<TAB>cell<TAB>batch<TAB>flops" lines; anything else (its header, errors) is shown.
Reference run_reference(const Options& o) {
  Reference r;
  std::string cells, batches;
  for (const auto& c : o.cells) cells += (cells.empty() ? "" : ",") + c;
  for (int b : o.batches) batches += (batches.empty() ? "" : ",") + std::to_string(b);
  const std::string cmd = std::string(o.python) + " " FIBER_BENCH_DIR "/bench_coarse_torch.py --threads " +
                          std::to_string(num_threads()) + " --cells " + cells + " --batches " + batches +
                          " --repeats " + std::to_string(o.repeats) + " --warmup " + std::to_string(o.warmup) +
                          (o.ort ? "" : " --no-ort");
  std::printf("reference: %s\n", cmd.c_str());
  std::fflush(stdout);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char line[1024];
  while (std::fgets(line, sizeof line, p)) {
    std::istringstream in(line);
    std::string kind, cell, engine;
    int batch = 0;
    if (std::getline(in, kind, '\t') && kind == "time" && std::getline(in, cell, '\t') && in >> batch >> engine) {
      RefTime t;
      if (in >> t.median >> t.best) r.times[{cell, batch, engine}] = t;
    } else if (kind == "flops" && std::getline(in, cell, '\t') && in >> batch) {
      double f = 0;
      if (in >> f) r.flops[cell] = f / batch;
    } else {
      std::printf("  | %s", line);
      std::fflush(stdout);
    }
  }
  const int rc = pclose(p);
  if (rc != 0) std::printf("reference script exited with status %d\n", rc);
  return r;
}

// ---- our side -----------------------------------------------------------------------------------
void randomize(Model& m, std::uint64_t seed) {
  Generator gen(seed);
  m.visit("", [&](const std::string& name, nn::Entry<float> e) {
    if (e.role != nn::Role::parameter) return;
    const bool norm_weight = name.find("norm") != std::string::npos && name.ends_with(".weight");
    e.var->value().copy_(randn<float>(e.var->shape(), gen, norm_weight ? 1.f : 0.f, 0.02f));
  });
}

struct Inputs {
  Var<float> images;
  Tensor<std::int64_t> ids, mask;
};
Inputs make_inputs(int batch, Generator& gen) {
  Inputs in;
  in.images = Var<float>(randn<float>({batch, 3, C.swin.image_size, C.swin.image_size}, gen));
  in.ids = rand<float>({batch, text_len}, gen, 3.f, 50000.f).to<std::int64_t>();
  for (int b = 0; b < batch; ++b) {  // <s> ... </s>, no padding
    in.ids.data()[b * text_len] = 0;
    in.ids.data()[b * text_len + text_len - 1] = 2;
  }
  in.mask = Tensor<std::int64_t>::ones({batch, text_len});
  return in;
}

struct Timing {
  double median, best;
};
Timing time_it(const std::function<void()>& f, int repeats, int warmup) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> wall;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(wall.begin(), wall.end());
  return {wall[wall.size() / 2], wall[0]};
}

std::function<void()> cell_fn(const Model& m, const std::string& cell, const Inputs& in) {
  if (cell == "image") return [&m, &in] { (void)m.image_embedding(in.images); };
  if (cell == "text") return [&m, &in] { (void)m.text_embedding(in.ids, in.mask); };
  return [&m, &in] {
    const auto f = m.fuse(in.images, in.ids, in.mask);
    (void)m.itm_logits(f.cls_feats);
    (void)m.mlm_logits(f.text_feats);
  };
}

// ---- breakdown ----------------------------------------------------------------------------------
enum Cat { gemm, scores, softmax_cat, pv, layout, norm, elementwise, ncat };
const char* cat_names[ncat] = {"GEMM", "q.k^T", "softmax", "P.v", "layout", "norms", "elementw"};

struct Row {
  std::string name;
  double total = 0;  // whole piece, timed as one
  double cat[ncat] = {};
  int count = 1;     // times the model runs it per pass
};

// One Swin block's pieces, in the order the block runs them (SwinBlock::operator()).
Row swin_block_row(const Model& m, int s, int b, const Var<float>& x, int reps) {
  const auto& blk = m.vit_model.layers[std::size_t(s)].blocks[std::size_t(b)];
  const auto& at = blk.attn;
  const std::int64_t B = x.size(0), L = x.size(1), D = x.size(2), side = blk.side, ws = blk.window;
  const std::int64_t N = ws * ws, heads = at.heads, d = D / heads;
  Row r;
  r.name = "stage " + std::to_string(s + 1) + " block " + std::to_string(b % 2) + (blk.shift ? " (shifted)" : "");
  r.count = C.swin.depths[s] / 2;
  auto t = [&](auto&& f) { return time_it(f, reps, 1).median; };
  const models::TextContext<float> none{};
  r.total = t([&] { (void)blk(x, {}, none); });

  const Var<float> h = blk.norm1(x).reshape({B, side, side, D});
  r.cat[norm] += 2 * t([&] { (void)blk.norm1(x); });  // norm1 and norm2 (same shape)
  Var<float> windows;
  r.cat[layout] += t([&] {
    const Var<float> hs = blk.shift ? fiber::roll(h, {-blk.shift, -blk.shift}, {1, 2}) : h;
    windows = models::window_partition(hs, ws);
  });
  const std::int64_t BW = windows.size(0), nW = BW / B;
  Var<float> qkv_out;
  r.cat[gemm] += t([&] { qkv_out = at.qkv(windows); });
  const Var<float> qkv5 = qkv_out.reshape({B, nW, N, 3, heads, d}).permute({3, 0, 1, 4, 2, 5});
  const Var<float> q = qkv5.select(0, 0), k = qkv5.select(0, 1), v = qkv5.select(0, 2);
  Var<float> sc, p, o;
  r.cat[scores] += t([&] { sc = matmul(q, k.transpose(-1, -2)); });
  const Tensor<float> mask5 = blk.attn_mask.defined() ? blk.attn_mask.reshape({nW, 1, N, N}) : Tensor<float>();
  const float scale = float(1.0 / std::sqrt(double(d)));
  r.cat[softmax_cat] += t([&] {
    const Var<float> bias = at.relative_bias();
    p = mask5.defined() ? softmax(Var<float>(sc * scale + bias + mask5), -1) : softmax(Var<float>(sc * scale + bias), -1);
  });
  r.cat[pv] += t([&] { o = matmul(p, v); });
  Var<float> merged;
  r.cat[layout] += t([&] { merged = o.permute({0, 1, 3, 2, 4}).reshape({BW, N, D}); });
  Var<float> proj;
  r.cat[gemm] += t([&] { proj = at.proj(merged); });
  Var<float> back;
  r.cat[layout] += t([&] {
    Var<float> y = models::window_reverse(proj, ws, side, side);
    if (blk.shift) y = fiber::roll(y, {blk.shift, blk.shift}, {1, 2});
    back = y.reshape({B, L, D});
  });
  Var<float> y;
  r.cat[elementwise] += 2 * t([&] { y = Var<float>(x + back); });  // the two residual adds
  const Var<float> n2 = blk.norm2(y);
  Var<float> f1, g;
  r.cat[gemm] += t([&] { f1 = blk.fc1(n2); });
  r.cat[elementwise] += t([&] { g = Var<float>(gelu(f1)); });
  r.cat[gemm] += t([&] { (void)blk.fc2(g); });
  return r;
}

// One RoBERTa layer (text only), as RobertaLayer::operator() runs it.
Row text_layer_row(const Model& m, const Var<float>& x, const Tensor<float>& ext, int reps) {
  const auto& layer = m.text_transformer.layers[0];
  const auto& a = layer.attention;
  const std::int64_t heads = a.heads, d = x.size(2) / heads;
  Row r;
  r.name = "text layer (unfused)";
  r.count = C.text.layers;
  auto t = [&](auto&& f) { return time_it(f, reps, 1).median; };
  r.total = t([&] { (void)layer(x, ext, {}); });
  Var<float> q, k, v;
  r.cat[gemm] += t([&] {
    q = a.query(x);
    k = a.key(x);
    v = a.value(x);
  });
  Var<float> qh, kh, vh;
  r.cat[layout] += t([&] {
    qh = models::split_heads(q, heads);
    kh = models::split_heads(k, heads);
    vh = models::split_heads(v, heads);
  });
  Var<float> sc, p, o, merged, dense, h, f1, g;
  r.cat[scores] += t([&] { sc = matmul(qh, kh.transpose(-1, -2)); });
  const float scale = float(1.0 / std::sqrt(double(d)));
  r.cat[softmax_cat] += t([&] { p = softmax(Var<float>(sc * scale + ext), -1); });
  r.cat[pv] += t([&] { o = matmul(p, vh); });
  r.cat[layout] += t([&] { merged = models::merge_heads(o); });
  r.cat[gemm] += t([&] { dense = a.dense(merged); });
  r.cat[elementwise] += 2 * t([&] { h = Var<float>(dense + x); });  // two residual adds
  r.cat[norm] += 2 * t([&] { h = a.LayerNorm(h); });
  r.cat[gemm] += t([&] { f1 = layer.intermediate(h); });
  r.cat[elementwise] += t([&] { g = Var<float>(gelu(f1)); });
  r.cat[gemm] += t([&] { (void)layer.output(g); });
  return r;
}

// image_total / text_total: the cell's measured time (0 when the cell was not run: no table).
void print_breakdown(const Model& m, int batch, double image_total, double text_total, int reps) {
  Generator gen(11);
  const Inputs in = make_inputs(batch, gen);
  auto table = [&](const char* title, const std::vector<Row>& rs, double measured) {
    std::printf("\n%s, batch %d: ms per pass (piece time x count)\n", title, batch);
    std::printf("%-28s %5s %9s", "piece", "count", "whole");
    for (int c = 0; c < ncat; ++c) std::printf(" %9s", cat_names[c]);
    std::printf(" %9s\n", "rest");
    double sum_total = 0, sum_cat[ncat] = {};
    for (const auto& r : rs) {
      std::printf("%-28s %5d %9.2f", r.name.c_str(), r.count, 1e3 * r.total * r.count);
      double parts = 0;
      bool split = false;
      for (int c = 0; c < ncat; ++c) {
        split = split || r.cat[c] > 0;
        parts += r.cat[c];
        sum_cat[c] += r.cat[c] * r.count;
        if (r.cat[c] > 0) std::printf(" %9.2f", 1e3 * r.cat[c] * r.count);
        else std::printf(" %9s", "");
      }
      if (split) std::printf(" %9.2f", 1e3 * (r.total - parts) * r.count);
      std::printf("\n");
      sum_total += r.total * r.count;
    }
    double split_total = 0;
    std::printf("%-28s %5s %9.2f", "sum", "", 1e3 * sum_total);
    for (int c = 0; c < ncat; ++c) {
      std::printf(" %9.2f", 1e3 * sum_cat[c]);
      split_total += sum_cat[c];
    }
    std::printf("\n%-28s %5s %9s", "share of the split pieces", "", "");
    for (int c = 0; c < ncat; ++c) std::printf(" %8.0f%%", 100 * sum_cat[c] / split_total);
    std::printf("\nwhole pass measured: %.2f ms (the sum of pieces run alone is %.0f%% of it)\n", 1e3 * measured,
                100 * sum_total / measured);
    std::fflush(stdout);
  };

  if (text_total > 0) {
    std::vector<Row> trows;
    const Tensor<float> ext = models::extended_attention_mask<float>(in.mask);
    const Var<float> te = m.text_transformer.embeddings(in.ids, {});
    Row r;
    r.name = "embeddings";
    r.total = time_it([&] { (void)m.text_transformer.embeddings(in.ids, {}); }, reps, 1).median;
    trows.push_back(r);
    trows.push_back(text_layer_row(m, te, ext, reps));
    table("Text path (text_embedding)", trows, text_total);
  }
  if (image_total <= 0) return;
  std::vector<Row> rows;
  auto whole = [&](const std::string& name, auto&& f) {
    Row r;
    r.name = name;
    r.total = time_it(f, reps, 1).median;
    rows.push_back(r);
  };
  // The stage inputs, computed once.
  Var<float> x = m.vit_model.patch_embed(in.images);
  whole("patch embed (conv + norm)", [&] { (void)m.vit_model.patch_embed(in.images); });
  for (int s = 0; s < 4; ++s) {
    for (int b = 0; b < std::min(2, C.swin.depths[s]); ++b) {
      rows.push_back(swin_block_row(m, s, b, x, reps));
      x = m.image_block(s, b, x, {}, "");
    }
    for (int b = 2; b < C.swin.depths[s]; ++b) x = m.image_block(s, b, x, {}, "");
    if (s < 3) {
      const Var<float> xin = x;
      whole("stage " + std::to_string(s + 1) + " patch merging", [&] { (void)m.downsample(s, xin, {}, ""); });
      x = m.downsample(s, x, {}, "");
    }
  }
  whole("norm + ITC head", [&] {
    const Var<float> y = m.vit_model.norm(x);
    (void)models::l2_normalize(m.cross_modal_image_pooler_itc(mean(m.cross_modal_image_transform_itc(y), {1})));
  });

  table("Image path (image_embedding)", rows, image_total);
}
}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (o.threads > 0) set_num_threads(o.threads);
  std::printf("CPU: %s, threads: %d, SIMD: %s\n", bench::cpu_name().c_str(), num_threads(), xsimd::default_arch::name());
  std::printf("FIBER-B coarse, %dx%d images, %lld text tokens, float32, median of %d after %d warm-up\n",
              C.swin.image_size, C.swin.image_size, (long long)text_len, o.repeats, o.warmup);
  std::fflush(stdout);

  // The reference first (its models are freed when it exits), then ours.
  const Reference ref = o.python ? run_reference(o) : Reference{};

  // The peak measured right before our timings (after the reference has exited).
  const double peak = bench::measured_fma_peak_gflops(num_threads());
  std::printf("measured FMA peak (%d threads): %.1f GFLOP/s\n", num_threads(), peak);
  Model model;
  randomize(model, 1);
  NoGrad guard;
  const CellFlops flops = coarse_flops();
  auto cell_flops = [&](const std::string& c) { return c == "image" ? flops.image : c == "text" ? flops.text : flops.fused; };

  struct Result {
    std::string cell;
    int batch;
    Timing t;
  };
  std::vector<Result> results;
  Generator gen(5);
  // Tensor memory recycled across calls, as CoarsePipeline does: without it every large tensor is
  // fresh pages from the system (mmap, a page fault and zeroing per 4 KiB), about 30% of the image
  // path's time at batch 8 (Zen 3). ONNX Runtime keeps its own arena the same way.
  StoragePool pool;
  PoolScope reuse(pool);
  for (int batch : o.batches) {
    const Inputs in = make_inputs(batch, gen);
    for (const auto& cell : o.cells) {
      results.push_back({cell, batch, time_it(cell_fn(model, cell, in), o.repeats, o.warmup)});
      std::printf("  fiber %-5s batch %d: %.1f ms\n", cell.c_str(), batch, 1e3 * results.back().t.median);
      std::fflush(stdout);
    }
  }

  std::printf("\n%-6s %5s %9s %9s %9s %9s %9s %8s %7s %9s %8s %6s %8s\n", "cell", "batch", "fiber ms", "torch ms",
              "ORT ms", "torch/fb", "ORT/fb", "GFLOP", "tGFLOP", "fb best", "GFLOP/s", "%peak", "ORT %pk");
  auto ref_time = [&](const Result& r, const char* engine) {
    const auto it = ref.times.find({r.cell, r.batch, engine});
    return it == ref.times.end() ? RefTime{} : it->second;
  };
  for (const auto& r : results) {
    const double gf = cell_flops(r.cell) * r.batch * 1e-9;
    const RefTime tt = ref_time(r, "torch"), ot = ref_time(r, "ort");
    const auto f = ref.flops.find(r.cell);
    std::printf("%-6s %5d %9.1f", r.cell.c_str(), r.batch, 1e3 * r.t.median);
    auto opt = [](double v, const char* fmt) {
      if (v > 0) std::printf(fmt, v);
      else std::printf(" %9s", "-");
    };
    opt(1e3 * tt.median, " %9.1f");
    opt(1e3 * ot.median, " %9.1f");
    opt(tt.median / r.t.median, " %8.2fx");
    opt(ot.median / r.t.median, " %8.2fx");
    std::printf(" %8.1f", gf);
    if (f != ref.flops.end()) std::printf(" %7.1f", f->second * r.batch * 1e-9);
    else std::printf(" %7s", "-");
    std::printf(" %9.1f %8.1f %5.0f%%", 1e3 * r.t.best, gf / r.t.median, 100 * gf / r.t.median / peak);
    if (ot.median > 0) std::printf(" %7.0f%%", 100 * gf / ot.median / peak);
    std::printf("\n");
  }
  std::printf(
      "\nms: median wall time of one call. torch/fb, ORT/fb: the reference's median time over ours (> 1: we are "
      "faster).\nGFLOP: analytic count (matrix products only); tGFLOP: torch.utils.flop_counter on the official "
      "model.\nGFLOP/s and %%peak from our median; ORT %%pk: ONNX Runtime's rate on the same count.\n");
  std::fflush(stdout);

  if (o.breakdown) {
    const int b = o.batches.front();
    double image_total = 0, text_total = 0;
    for (const auto& r : results) {
      if (r.batch == b && r.cell == "image") image_total = r.t.median;
      if (r.batch == b && r.cell == "text") text_total = r.t.median;
    }
    print_breakdown(model, b, image_total, text_total, std::max(3, o.repeats));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
