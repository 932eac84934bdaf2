#pragma once
// StoragePool: recycles tensor memory across repeated work of the same shapes (a camera's frames,
// training steps). While a PoolScope is active on a thread, every tensor that thread allocates
// takes a free block of the pool when one of its size class is there, and any block the pool
// handed out goes back to the pool, not to the system, when its last tensor dies (on whatever
// thread). From the second frame of a size on, a frame allocates no tensor memory from the system
// and touches no fresh pages.
//
//   fiber::StoragePool pool;
//   for (;;) {
//     fiber::PoolScope scope(pool);   // this thread's tensors come from `pool` until scope ends
//     run_one_frame();
//   }
//
// Size classes: requests are rounded up to a multiple of 64 bytes below 4 KiB and to one of eight
// steps per power of two above (at most 12.5% slack), so that nearby sizes share blocks.
// Blocks stay owned by the pool until trim() or its destruction; tensors that outlive the pool
// object free their memory to the system when they die. Thread-safe.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"

namespace fiber {

// The alignment of every tensor block (pooled or not): a cache line, and a whole AVX-512 register.
inline constexpr std::size_t kStorageAlignment = 64;

namespace detail {

// Memory from the system, kStorageAlignment-aligned; nullptr when there is none.
inline void* system_block(std::size_t rounded_bytes) { return std::aligned_alloc(kStorageAlignment, rounded_bytes); }

// The pool's shared state: the deleters of handed-out blocks keep it alive, so a block may die
// after the StoragePool object.
struct PoolState {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> free;  // size class -> free blocks
  std::size_t cached_bytes = 0;                    // bytes in `free`
  std::size_t live_bytes = 0;                      // bytes handed out and not returned
  std::int64_t hits = 0, misses = 0;
  bool open = true;                                // false once the StoragePool object is gone

  ~PoolState() { release_free(); }
  void release_free() {
    for (auto& [size, blocks] : free)
      for (void* p : blocks) std::free(p);
    free.clear();
    cached_bytes = 0;
  }
  void give_back(void* p, std::size_t size) {
    std::lock_guard lock(mutex);
    live_bytes -= size;
    if (!open) {
      std::free(p);
      return;
    }
    free[size].push_back(p);
    cached_bytes += size;
  }
};

}  // namespace detail

// The size class of a request of `bytes` bytes (at least kStorageAlignment, and a multiple of it,
// as std::aligned_alloc requires).
inline std::size_t pool_size_class(std::size_t bytes) {
  bytes = std::max<std::size_t>(bytes, 1);
  if (bytes <= 4096) return (bytes + kStorageAlignment - 1) / kStorageAlignment * kStorageAlignment;
  const std::size_t step = std::bit_floor(bytes) / 8;  // eight classes per power of two
  FIBER_CHECK(bytes <= SIZE_MAX - step, "StoragePool: a request of ", bytes, " bytes overflows");
  return (bytes + step - 1) / step * step;
}

struct StoragePoolStats {
  std::size_t cached_bytes = 0;  // free blocks held for reuse
  std::size_t live_bytes = 0;    // blocks in use by tensors
  std::int64_t hits = 0;         // requests served from a free block
  std::int64_t misses = 0;       // requests that took memory from the system
};

// A block handed out: its memory and the owner whose last copy returns it.
struct PooledBlock {
  void* data = nullptr;
  std::shared_ptr<void> owner;
  bool from_system = false;  // no free block of its class was there
};

class StoragePool {
 public:
  StoragePool() : state_(std::make_shared<detail::PoolState>()) {}
  StoragePool(const StoragePool&) = delete;
  StoragePool& operator=(const StoragePool&) = delete;
  ~StoragePool() {
    std::lock_guard lock(state_->mutex);
    state_->open = false;
    state_->release_free();
  }

  // A block of at least `bytes` bytes, 64-byte aligned, uninitialised. nullptr data when the
  // system has no memory (the caller reports it).
  PooledBlock take(std::size_t bytes) {
    const std::size_t size = pool_size_class(bytes);
    void* p = nullptr;
    {
      std::lock_guard lock(state_->mutex);
      auto it = state_->free.find(size);
      if (it != state_->free.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        state_->cached_bytes -= size;
        ++state_->hits;
      } else {
        ++state_->misses;
      }
      state_->live_bytes += size;  // counted now, so a failed system allocation is undone below
    }
    const bool from_system = !p;
    if (!p) p = detail::system_block(size);
    if (!p) {
      std::lock_guard lock(state_->mutex);
      state_->live_bytes -= size;
      return {};
    }
    std::shared_ptr<detail::PoolState> state = state_;
    return {p, std::shared_ptr<void>(p, [state, size](void* q) { state->give_back(q, size); }), from_system};
  }

  // Frees every cached block (live ones stay with their tensors and come back later).
  void trim() {
    std::lock_guard lock(state_->mutex);
    state_->release_free();
  }

  StoragePoolStats stats() const {
    std::lock_guard lock(state_->mutex);
    return {state_->cached_bytes, state_->live_bytes, state_->hits, state_->misses};
  }

 private:
  std::shared_ptr<detail::PoolState> state_;
};

// The pool of this thread's innermost PoolScope, or nullptr.
inline StoragePool*& current_storage_pool() {
  thread_local StoragePool* pool = nullptr;
  return pool;
}

// Makes `pool` the current thread's tensor allocator until the scope ends (scopes nest; the
// innermost wins). Tensors allocated by other threads (thread-pool workers) are not affected.
class PoolScope {
 public:
  explicit PoolScope(StoragePool& pool) : previous_(current_storage_pool()) { current_storage_pool() = &pool; }
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;
  ~PoolScope() { current_storage_pool() = previous_; }

 private:
  StoragePool* previous_;
};

// Suspends the current thread's pool until the scope ends: tensors made inside come from the
// system. For what outlives the repeated work a pool serves (a cache kept across frames), so that
// it does not hold the pool's blocks.
class UnpooledScope {
 public:
  UnpooledScope() : previous_(current_storage_pool()) { current_storage_pool() = nullptr; }
  UnpooledScope(const UnpooledScope&) = delete;
  UnpooledScope& operator=(const UnpooledScope&) = delete;
  ~UnpooledScope() { current_storage_pool() = previous_; }

 private:
  StoragePool* previous_;
};

}  // namespace fiber
