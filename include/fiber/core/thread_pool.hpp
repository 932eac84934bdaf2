#pragma once
// The one thread pool every CPU kernel uses. The calling thread takes part in the work, so a pool
// of n threads starts n-1 workers. Work inside a parallel region runs serially (no nesting, no
// oversubscription), and a second host thread that finds the pool busy runs its work inline.
//
// Determinism: kernels split work by problem size, never by thread count, wherever the split
// changes the order of floating-point operations (reductions); so results are identical for
// any number of threads.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "fiber/core/error.hpp"

namespace fiber {

namespace detail {
inline thread_local bool in_parallel_region = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// A non-owning callable reference: no allocation per parallel call.
class TaskRef {
 public:
  TaskRef() = default;
  template <class F>
  explicit TaskRef(F& f) : object_(&f), call_([](void* o, std::int64_t t) { (*static_cast<F*>(o))(t); }) {}
  void operator()(std::int64_t task) const { call_(object_, task); }

 private:
  void* object_ = nullptr;
  void (*call_)(void*, std::int64_t) = nullptr;
};
}  // namespace detail

// True while the calling thread is executing a task of the pool.
inline bool in_parallel_region() { return detail::in_parallel_region; }

class ThreadPool {
 public:
  explicit ThreadPool(int threads) : threads_(threads) {
    FIBER_CHECK(threads >= 1 && threads <= 1024, "ThreadPool: thread count ", threads,
                " is out of range [1, 1024]");
    workers_.reserve(threads - 1);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  int size() const { return threads_; }

  // Calls fn(t) for every t in [0, tasks), spread over the pool; returns when all are done and
  // rethrows the first exception a task threw.
  template <class F>
  void run(std::int64_t tasks, F&& fn) {
    if (tasks <= 0) return;
    std::unique_lock busy(run_mutex_, std::try_to_lock);
    if (tasks == 1 || threads_ == 1 || detail::in_parallel_region || !busy.owns_lock()) {
      run_inline(tasks, fn);
      return;
    }
    auto body = [&fn](std::int64_t t) { fn(t); };
    {
      std::unique_lock lock(mutex_);
      done_.wait(lock, [this] { return active_ == 0; });
      task_ = detail::TaskRef(body);
      tasks_ = tasks;
      next_.store(0, std::memory_order_relaxed);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work_on_current_job();
    std::exception_ptr error;
    {
      std::unique_lock lock(mutex_);
      done_.wait(lock, [this] { return active_ == 0; });
      error = error_;
      error_ = nullptr;
    }
    if (error) std::rethrow_exception(error);
  }

 private:
  template <class F>
  static void run_inline(std::int64_t tasks, F& fn) {
    const bool outer = detail::in_parallel_region;
    detail::in_parallel_region = true;
    try {
      for (std::int64_t t = 0; t < tasks; ++t) fn(t);
    } catch (...) {
      detail::in_parallel_region = outer;
      throw;
    }
    detail::in_parallel_region = outer;
  }

  // Pulls tasks of the current job until none are left. Exceptions are kept, not propagated,
  // so every claimed task is accounted for.
  void work_on_current_job() {
    detail::in_parallel_region = true;
    for (std::int64_t t; (t = next_.fetch_add(1, std::memory_order_relaxed)) < tasks_;) {
      try {
        task_(t);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
    detail::in_parallel_region = false;
  }

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      // Spin briefly: kernels come in quick succession and a sleeping worker costs a wake-up.
      for (int spin = 0; spin < 4000 && generation_.load(std::memory_order_acquire) == seen; ++spin)
        detail::cpu_relax();
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        if (stop_) return;
        seen = generation_.load(std::memory_order_relaxed);
        ++active_;
      }
      work_on_current_job();
      {
        std::lock_guard lock(mutex_);
        --active_;
      }
      done_.notify_all();
    }
  }

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time; a second host thread runs inline
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> generation_{0};
  bool stop_ = false;
  int active_ = 0;
  detail::TaskRef task_;
  std::int64_t tasks_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::exception_ptr error_;
};

namespace detail {
// Cores this process may run on (the affinity mask), at least 1.
inline int available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// FIBER_NUM_THREADS if set (a positive integer, else fiber::Error), otherwise the core count.
inline int default_thread_count() {
  const char* text = std::getenv("FIBER_NUM_THREADS");
  if (!text || !*text) return available_cores();
  char* end = nullptr;
  long n = std::strtol(text, &end, 10);
  FIBER_CHECK(end && *end == '\0' && n >= 1 && n <= 1024, "FIBER_NUM_THREADS='", text,
              "' is not an integer in [1, 1024]");
  return static_cast<int>(n);
}

struct PoolHolder {
  std::mutex mutex;
  std::unique_ptr<ThreadPool> pool;
};
inline PoolHolder& pool_holder() {
  static PoolHolder holder;
  return holder;
}
}  // namespace detail

// The process-wide pool, made on first use.
inline ThreadPool& thread_pool() {
  auto& h = detail::pool_holder();
  std::lock_guard lock(h.mutex);
  if (!h.pool) h.pool = std::make_unique<ThreadPool>(detail::default_thread_count());
  return *h.pool;
}

inline int num_threads() { return thread_pool().size(); }

// Sets the number of threads CPU kernels use (the caller included). Not to be called while
// another thread runs fiber kernels.
inline void set_num_threads(int n) {
  FIBER_CHECK(n >= 1 && n <= 1024, "set_num_threads: ", n, " is out of range [1, 1024]");
  auto& h = detail::pool_holder();
  std::lock_guard lock(h.mutex);
  if (h.pool && h.pool->size() == n) return;
  h.pool.reset();
  h.pool = std::make_unique<ThreadPool>(n);
}

// Splits [begin, end) into at most num_threads() contiguous ranges of at least `grain`
// iterations and calls fn(range_begin, range_end) on each. Use only where the split does not
// change results (elementwise work, independent rows); reductions split by size instead.
template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, F&& fn) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  std::int64_t chunks = std::min<std::int64_t>((n + grain - 1) / grain, in_parallel_region() ? 1 : num_threads());
  if (chunks <= 1) {
    fn(begin, end);
    return;
  }
  thread_pool().run(chunks, [&](std::int64_t c) {
    fn(begin + n * c / chunks, begin + n * (c + 1) / chunks);
  });
}

}  // namespace fiber
