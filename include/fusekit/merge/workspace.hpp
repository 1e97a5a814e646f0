/// @file
/// @brief merge_workspace: scratch memory that a sequence of merge calls reuses instead of asking the
/// operating system for fresh pages each time.
///
/// The two-pass merge methods need per-call scratch that grows with the tensor: DARE (with the L1 rescale)
/// and DELLA keep one bit per element and model between their passes (59 MB for 14336×4096 with 8 models),
/// TIES and breadcrumbs sample the keys and collect the top-k bracket's candidates (~30 MB there). Allocated
/// with operator new, blocks above glibc's mmap threshold (dynamic, at most 32 MiB) come from fresh mmap'd
/// pages every call, and on a virtual machine each fresh page costs a fault of ~10 µs: 14 337 faults per
/// dare_ties call at 14336×4096×8 on this project's VM. A
/// workspace that lives across the calls of a job (the `fusekit merge` tool keeps one for its whole run)
/// hands the same blocks back and the pages stay mapped.
///
/// Use: `fusekit::merge_workspace ws;` then pass `merge_context{.tensor_name = ..., .seed = ..., .scratch = &ws}`
/// to every merge. Any thread-safe std::pmr::memory_resource may be passed instead.
#pragma once

#include <cstddef>
#include <map>
#include <memory_resource>
#include <mutex>
#include <new>
#include <unordered_map>

namespace fusekit {

/// A thread-safe std::pmr::memory_resource that keeps every block it hands out: a freed block is kept idle
/// and given to the next request it can hold (the smallest idle block of at least the requested size), so a
/// job that merges tensors of similar shapes allocates from the system only for its first, or largest,
/// tensors. Memory held = the largest scratch any one call needed, plus idle blocks of other sizes, until
/// release() or destruction. Blocks are 64-byte aligned (larger alignments are honoured too).
class merge_workspace final : public std::pmr::memory_resource {
public:
  merge_workspace() = default;
  merge_workspace(const merge_workspace&) = delete;
  merge_workspace& operator=(const merge_workspace&) = delete;
  ~merge_workspace() override { release(); }

  /// Frees the idle blocks (blocks in use stay valid and are freed when given back, after release()
  /// they are kept again).
  void release() noexcept {
    const std::lock_guard lock(mu_);
    for (auto& [size, b] : idle_) {
      ::operator delete(b.p, std::align_val_t{b.align});
      held_ -= size;
    }
    idle_.clear();
  }
  /// Bytes obtained from the system and not yet freed (in use + idle).
  [[nodiscard]] std::size_t bytes_held() const {
    const std::lock_guard lock(mu_);
    return held_;
  }
  /// How many blocks were obtained from the system so far (a reused block does not count).
  [[nodiscard]] std::size_t system_allocations() const {
    const std::lock_guard lock(mu_);
    return system_allocations_;
  }

private:
  struct block {
    void* p;
    std::size_t align;
  };
  static constexpr std::size_t min_align = 64;

  void* do_allocate(std::size_t bytes, std::size_t align) override {
    const std::size_t al = align > min_align ? align : min_align;
    const std::size_t size = ((bytes == 0 ? 1 : bytes) + al - 1) / al * al; // whole alignment units, never 0
    const std::lock_guard lock(mu_);
    for (auto it = idle_.lower_bound(size); it != idle_.end(); ++it)
      if (it->second.align >= al) {
        void* p = it->second.p;
        live_.emplace(p, live_entry{it->first, it->second.align});
        idle_.erase(it);
        return p;
      }
    void* p = ::operator new(size, std::align_val_t{al}); // throws std::bad_alloc
    try {
      live_.emplace(p, live_entry{size, al});
    } catch (...) {
      ::operator delete(p, std::align_val_t{al});
      throw;
    }
    held_ += size;
    ++system_allocations_;
    return p;
  }
  void do_deallocate(void* p, std::size_t, std::size_t) override {
    const std::lock_guard lock(mu_);
    const auto it = live_.find(p);
    if (it == live_.end())
      return; // not ours: nothing to do (a pmr resource is only given back its own blocks)
    const live_entry e = it->second;
    live_.erase(it);
    try {
      idle_.emplace(e.size, block{p, e.align});
    } catch (...) { // no memory to keep it: free it instead
      ::operator delete(p, std::align_val_t{e.align});
      held_ -= e.size;
    }
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  struct live_entry {
    std::size_t size, align;
  };
  mutable std::mutex mu_;
  std::multimap<std::size_t, block> idle_;        // capacity -> idle block
  std::unordered_map<void*, live_entry> live_;    // block in use -> its capacity and alignment
  std::size_t held_ = 0, system_allocations_ = 0;
};

} // namespace fusekit
