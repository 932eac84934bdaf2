#pragma once
// Test support for the GEMM layer: deterministic random operands and a naive double-precision
// reference with a rigorous error bound per element.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fiber/backend/cpu/gemm_args.hpp"

namespace gemm_test {

using fiber::cpu::Trans;
using std::int64_t;

template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed, T lo = T(-1), T hi = T(1)) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// op(X)[r, c] of a stored row-major operand.
template <class T>
T element(Trans t, const T* x, int64_t ld, int64_t r, int64_t c) {
  return t == Trans::no ? x[r * ld + c] : x[c * ld + r];
}

// alpha * op(A) op(B) + beta * C0 in double, and for each element the bound on the error of a
// float/double computation: (K + 4) * eps * (|alpha| sum |a b| + |beta c|) (the classical
// dot-product bound with room for alpha, beta and the final rounding).
struct Reference {
  std::vector<double> value, bound;
  int64_t M, N;
};

template <class T>
Reference reference_gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                         const T* B, int64_t ldb, T beta, const T* C0, int64_t ldc) {
  Reference ref{std::vector<double>(M * N), std::vector<double>(M * N), M, N};
  const double eps = std::numeric_limits<T>::epsilon();
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(element(ta, A, lda, i, k)) * double(element(tb, B, ldb, k, j));
        sum += p;
        magnitude += std::abs(p);
      }
      const double c = beta == T(0) ? 0.0 : double(beta) * double(C0[i * ldc + j]);
      ref.value[i * N + j] = double(alpha) * sum + c;
      ref.bound[i * N + j] = (K + 4) * eps * (std::abs(double(alpha)) * magnitude + std::abs(c)) + 1e-30;
    }
  return ref;
}

// Empty when every element of C is within its bound, else a description of the worst element.
template <class T>
std::string compare(const Reference& ref, const T* C, int64_t ldc, double bound_scale = 1.0) {
  double worst = 0;
  int64_t wi = -1, wj = -1;
  for (int64_t i = 0; i < ref.M; ++i)
    for (int64_t j = 0; j < ref.N; ++j) {
      const double got = C[i * ldc + j];
      const double err = std::abs(got - ref.value[i * ref.N + j]);
      const double ratio = std::isnan(got) ? 1e30 : err / (bound_scale * ref.bound[i * ref.N + j]);
      if (ratio > worst) {
        worst = ratio;
        wi = i;
        wj = j;
      }
    }
  if (worst <= 1.0) return {};
  std::ostringstream out;
  out << "C[" << wi << ", " << wj << "] = " << C[wi * ldc + wj] << ", reference " << ref.value[wi * ref.N + wj]
      << ", error " << worst << " x the bound " << bound_scale * ref.bound[wi * ref.N + wj];
  return out.str();
}

inline std::string describe(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K) {
  std::ostringstream out;
  out << (ta == Trans::yes ? "T" : "N") << (tb == Trans::yes ? "T" : "N") << " M=" << M << " N=" << N << " K=" << K;
  return out.str();
}

}  // namespace gemm_test
