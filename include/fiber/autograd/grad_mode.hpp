#pragma once
// Whether operations on Vars record the graph, per thread. Inside a NoGrad scope nothing is
// recorded: results are plain Vars holding values, and no backward closure or saved tensor is
// made.
namespace fiber {

namespace detail {
inline thread_local bool grad_enabled = true;
}

inline bool grad_enabled() { return detail::grad_enabled; }

// RAII: disables gradient recording on this thread for its lifetime (inference).
class NoGrad {
 public:
  NoGrad() : previous_(detail::grad_enabled) { detail::grad_enabled = false; }
  ~NoGrad() { detail::grad_enabled = previous_; }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

// RAII: enables recording again inside a NoGrad scope.
class EnableGrad {
 public:
  EnableGrad() : previous_(detail::grad_enabled) { detail::grad_enabled = true; }
  ~EnableGrad() { detail::grad_enabled = previous_; }
  EnableGrad(const EnableGrad&) = delete;
  EnableGrad& operator=(const EnableGrad&) = delete;

 private:
  bool previous_;
};

}  // namespace fiber
