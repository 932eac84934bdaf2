// Every nn op, forward and backward, gives bit-identical results with 1, 2 and 3 threads, on
// shapes large enough to be split over the pool.
#include "nn_test_util.hpp"

using fiber::Reduction;
using fiber::Shape;
using fiber::Tensor;
using fiber::Var;

namespace {

// Runs every op once and returns all outputs and gradients, in order.
std::vector<Tensor<float>> run_all() {
  fiber::Generator gen(99);
  std::vector<Tensor<float>> out;
  auto keep = [&](const Var<float>& v) { out.push_back(v.value()); };

  auto scores = fiber::randn<float>({64, 144, 144}, gen, 0, 3);  // attention-like
  Var<float> s = Var<float>::parameter(scores);
  Var<float> p = fiber::softmax(s, -1);
  keep(p);
  Var<float> lp = fiber::log_softmax(s, 1);  // along a middle axis: the strided kernel
  keep(lp);
  Var<float> lse = fiber::logsumexp(s, {-1});
  keep(lse);
  Var<float> total = fiber::sum(Var<float>(p * scores)) + fiber::sum(Var<float>(lp * scores)) + fiber::sum(lse);
  total.backward();
  out.push_back(s.grad());

  auto x = fiber::randn<float>({576, 512}, gen);
  Var<float> vx = Var<float>::parameter(x);
  Var<float> w = Var<float>::parameter(fiber::randn<float>({512}, gen, 1, 0.1f));
  Var<float> b = Var<float>::parameter(fiber::randn<float>({512}, gen, 0, 0.1f));
  Var<float> y = fiber::layer_norm(vx, Shape{512}, w, b);
  keep(y);
  fiber::sum(Var<float>(y * y * x)).backward();
  out.push_back(vx.grad());
  out.push_back(w.grad());
  out.push_back(b.grad());

  auto logits = fiber::randn<float>({3000, 40}, gen, 0, 4);
  auto target = fiber::rand<float>({3000}, gen, 0, 39.5f).to<std::int64_t>();
  target.data()[17] = -100;
  Var<float> vl = Var<float>::parameter(logits);
  Var<float> ce = fiber::cross_entropy(vl, target, {.weight = fiber::rand<float>({40}, gen, 0.5, 2), .label_smoothing = 0.1});
  keep(ce);
  ce.backward();
  out.push_back(vl.grad());
  Var<float> vp = Var<float>::parameter(fiber::softmax(fiber::randn<float>({3000, 40}, gen), -1));
  Var<float> vl2 = Var<float>::parameter(logits);
  Var<float> cep = fiber::cross_entropy(vl2, vp, {.reduction = Reduction::sum});
  keep(cep);
  cep.backward();
  out.push_back(vl2.grad());
  out.push_back(vp.grad());

  Var<float> bx = Var<float>::parameter(fiber::randn<float>({500, 200}, gen, 0, 5));
  Var<float> bt = Var<float>::parameter(fiber::rand<float>({500, 200}, gen, 0, 1));
  Var<float> bce = fiber::binary_cross_entropy_with_logits(
      bx, bt, {.weight = fiber::rand<float>({500, 1}, gen, 0.5, 2), .pos_weight = fiber::rand<float>({200}, gen, 1, 3)});
  keep(bce);
  bce.backward();
  out.push_back(bx.grad());
  out.push_back(bt.grad());
  return out;
}

}  // namespace

TEST_CASE("nn ops give identical results for 1, 2 and 3 threads") {
  const fiber::test::RestoreThreads restore_threads;
  fiber::set_num_threads(1);
  const auto one = run_all();
  for (int threads : {2, 3}) {
    fiber::set_num_threads(threads);
    const auto many = run_all();
    REQUIRE(many.size() == one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      INFO(threads << " threads, output " << i);
      CHECK(fiber::test::same_bits(one[i], many[i]));
    }
  }
}
