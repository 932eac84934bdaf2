#pragma once
// How a loss combines its per-element values, as PyTorch's `reduction` argument: none keeps them,
// sum adds them, mean averages them (each loss says what it divides by).
#include <ostream>

#include "fiber/autograd/var.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber {

enum class Reduction { none, mean, sum };

inline const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::none: return "none";
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
  }
  return "?";
}
inline std::ostream& operator<<(std::ostream& out, Reduction r) { return out << reduction_name(r); }

namespace detail {
// `loss` (a Tensor or a Var) reduced over all its elements; mean divides by the element count, so
// the mean of nothing is NaN (0 / 0), as in PyTorch.
template <class L>
L reduce_loss(const L& loss, Reduction r) {
  switch (r) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return L(sum(loss) * (1.0 / double(loss.numel())));
  }
  fail("loss: unknown reduction ", static_cast<int>(r));
}
}  // namespace detail

}  // namespace fiber
