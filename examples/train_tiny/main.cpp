// The demo (for now): trains a small MLP to tell three interleaved spirals apart, with fiber's
// autograd and a hand-written Adam, and prints the loss falling. Everything is generated here:
// no data or weights are read.
//
//   build/examples/train_tiny/train_tiny [--steps N] [--threads N]
#include <fiber/fiber.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using fiber::Tensor;
using fiber::Var;

namespace {

// points: [classes * per_class, 2], labels: [classes * per_class]
void make_spirals(int classes, int per_class, fiber::Generator& gen, Tensor<float>& points, Tensor<std::int64_t>& labels) {
  points = Tensor<float>::empty({classes * per_class, 2});
  labels = Tensor<std::int64_t>::empty({classes * per_class});
  Tensor<float> noise = fiber::randn<float>({classes * per_class}, gen, 0.0f, 0.15f);
  for (int c = 0; c < classes; ++c)
    for (int i = 0; i < per_class; ++i) {
      const int row = c * per_class + i;
      const float r = float(i) / float(per_class);
      const float angle = 4.0f * float(c) + 4.0f * r + noise.at({row});
      points.at({row, 0}) = r * std::sin(angle);
      points.at({row, 1}) = r * std::cos(angle);
      labels.at({row}) = c;
    }
}

// Adam (Kingma & Ba) on a list of parameters, with the bias-corrected step.
struct Adam {
  std::vector<Var<float>> params;
  std::vector<Tensor<float>> m, v;
  float lr, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  int t = 0;

  Adam(std::vector<Var<float>> p, float learning_rate) : params(std::move(p)), lr(learning_rate) {
    for (auto& q : params) {
      m.push_back(Tensor<float>::zeros(q.shape()));
      v.push_back(Tensor<float>::zeros(q.shape()));
    }
  }
  void step() {
    ++t;
    const double c1 = 1 - std::pow(beta1, t), c2 = 1 - std::pow(beta2, t);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Tensor<float>& g = params[i].grad();
      m[i].assign(beta1 * m[i] + (1 - beta1) * g);  // each line: one fused pass
      v[i].assign(beta2 * v[i] + (1 - beta2) * g * g);
      params[i].value().assign(params[i].value() - (lr / c1) * m[i] / (fiber::sqrt(v[i] / c2) + eps));
      params[i].zero_grad();
    }
  }
};

Var<float> init_weight(std::int64_t out, std::int64_t in, fiber::Generator& gen) {
  const float bound = 1.0f / std::sqrt(float(in));  // as torch.nn.Linear
  return Var<float>::parameter(fiber::rand<float>({out, in}, gen, -bound, bound));
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 400;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 == argc) {
      std::fprintf(stderr, "train_tiny: %s needs a value (use --steps N, --threads N)\n", flag.c_str());
      return 2;
    }
    char* end = nullptr;
    const long value = std::strtol(argv[i + 1], &end, 10);
    if (*end != '\0' || value < 1 || value > 1000000) {
      std::fprintf(stderr, "train_tiny: %s needs an integer in [1, 1000000], got '%s'\n", flag.c_str(), argv[i + 1]);
      return 2;
    }
    if (flag == "--steps") steps = int(value);
    else if (flag == "--threads") fiber::set_num_threads(int(value));
    else {
      std::fprintf(stderr, "train_tiny: unknown option %s (use --steps N, --threads N)\n", flag.c_str());
      return 2;
    }
  }

  fiber::Generator gen(2026);
  Tensor<float> points;
  Tensor<std::int64_t> labels;
  make_spirals(3, 200, gen, points, labels);

  const std::int64_t hidden = 64;
  Var<float> w1 = init_weight(hidden, 2, gen), b1 = Var<float>::parameter(Tensor<float>::zeros({hidden}));
  Var<float> w2 = init_weight(hidden, hidden, gen), b2 = Var<float>::parameter(Tensor<float>::zeros({hidden}));
  Var<float> w3 = init_weight(3, hidden, gen), b3 = Var<float>::parameter(Tensor<float>::zeros({3}));
  Adam adam({w1, b1, w2, b2, w3, b3}, 0.01f);

  std::printf("fiber demo: MLP 2-%lld-%lld-3 on 600 spiral points, Adam, %d threads\n", (long long)hidden,
              (long long)hidden, fiber::num_threads());
  const auto start = std::chrono::steady_clock::now();
  Var<float> x(points);
  double first_loss = 0, loss_value = 0;
  for (int step = 1; step <= steps; ++step) {
    Var<float> h1 = fiber::gelu(fiber::linear(x, w1, b1));
    Var<float> h2 = fiber::gelu(fiber::linear(h1, w2, b2));
    Var<float> logits = fiber::linear(h2, w3, b3);
    Var<float> loss = fiber::cross_entropy(logits, labels);
    loss.backward();
    adam.step();
    loss_value = loss.value().item();
    if (step == 1) first_loss = loss_value;
    if (step == 1 || step % 50 == 0 || step == steps) {
      Tensor<float> correct = fiber::argmax(logits.value(), 1) == labels;
      std::printf("step %4d  loss %.4f  accuracy %.1f%%\n", step, loss_value, 100.0 * fiber::mean(correct).item());
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loss %.4f -> %.4f in %.2f s\n", first_loss, loss_value, seconds);
  return loss_value < first_loss ? 0 : 1;
}
