#pragma once
// Storage: one block of tensor memory, shared by every view of it. Either owned (64-byte aligned,
// from the allocator below) or borrowed from something that keeps it alive (a memory-mapped
// checkpoint, a host buffer).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "fiber/core/device.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/storage_pool.hpp"

namespace fiber {

// Counts of tensor-memory allocations, process wide. Tests use them to prove that a fused
// expression allocates only its result.
struct AllocationStats {
  std::atomic<std::int64_t> allocations{0};         // tensor storages created
  std::atomic<std::int64_t> bytes{0};               // their bytes
  std::atomic<std::int64_t> system_allocations{0};  // of them, taken from the system (not a StoragePool's free block)
};
inline AllocationStats& allocation_stats() {
  static AllocationStats stats;
  return stats;
}

class Storage {
 public:
  // New CPU memory of `bytes` bytes, aligned to kStorageAlignment, uninitialised.
  static std::shared_ptr<Storage> allocate(std::size_t bytes) {
    allocation_stats().allocations.fetch_add(1, std::memory_order_relaxed);
    allocation_stats().bytes.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
    if (StoragePool* pool = current_storage_pool()) {
      PooledBlock block = pool->take(bytes);
      if (!block.data) fail("Storage: out of memory allocating ", bytes, " bytes");
      if (block.from_system) allocation_stats().system_allocations.fetch_add(1, std::memory_order_relaxed);
      return std::shared_ptr<Storage>(new Storage(block.data, bytes, Device::cpu(), std::move(block.owner)));
    }
    const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kStorageAlignment - 1) / kStorageAlignment * kStorageAlignment;
    FIBER_CHECK(rounded >= bytes, "Storage: allocation of ", bytes, " bytes overflows");
    void* p = std::aligned_alloc(kStorageAlignment, rounded);
    if (!p) fail("Storage: out of memory allocating ", bytes, " bytes");
    allocation_stats().system_allocations.fetch_add(1, std::memory_order_relaxed);
    return std::shared_ptr<Storage>(new Storage(p, bytes, Device::cpu(), std::shared_ptr<void>(p, std::free)));
  }

  // Memory owned elsewhere; `keep_alive` holds it for as long as any tensor uses it.
  static std::shared_ptr<Storage> borrow(void* data, std::size_t bytes, std::shared_ptr<void> keep_alive,
                                         Device device = Device::cpu()) {
    return std::shared_ptr<Storage>(new Storage(data, bytes, device, std::move(keep_alive)));
  }

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // The version counter: bumped by every in-place write through a Tensor (copy_, fill_, assign,
  // evaluate_into), so autograd can tell that a tensor it saved for a backward has changed since.
  // One relaxed atomic per write: optimisers update parameters in place every step. Writes through
  // raw pointers (data(), at()) are not counted.
  std::uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  Storage(void* data, std::size_t bytes, Device device, std::shared_ptr<void> owner)
      : data_(data), bytes_(bytes), device_(device), owner_(std::move(owner)) {}

  void* data_;
  std::size_t bytes_;
  Device device_;
  std::shared_ptr<void> owner_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace fiber
