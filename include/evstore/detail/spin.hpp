// Spin-wait steps and per-thread slots for the cache's reader stripes.
//
// Thread safety: every function may be called from any thread.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_SPIN_HPP_
#define EVSTORE_DETAIL_SPIN_HPP_

#include <atomic>
#include <bit>
#include <cstdint>
#include <functional>
#include <thread>

namespace evstore::cache_internal {

// One spin-wait step: a pause instruction where there is one.
inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Waiting `spins` steps in: pause for the first 64, then yield the core.
inline void CpuRelax(int spins) {
  if (spins < 64) {
    Pause();
  } else {
    std::this_thread::yield();
  }
}

// A small number identifying the calling thread, for picking a reader stripe:
// the lowest one no other live thread holds (so a few threads get distinct
// stripes), or a hash of the thread id once 64 threads hold one.
inline uint32_t ThreadSlot() {
  static std::atomic<uint64_t> taken{0};
  struct Holder {
    uint32_t slot = 0;
    bool owned = false;
    Holder() {
      uint64_t cur = taken.load(std::memory_order_relaxed);
      while (~cur != 0) {
        int bit = std::countr_zero(~cur);
        if (taken.compare_exchange_weak(cur, cur | (uint64_t{1} << bit),
                                        std::memory_order_relaxed)) {
          slot = static_cast<uint32_t>(bit);
          owned = true;
          return;
        }
      }
      slot = static_cast<uint32_t>(std::hash<std::thread::id>()(std::this_thread::get_id()));
    }
    ~Holder() {
      if (owned) taken.fetch_and(~(uint64_t{1} << slot), std::memory_order_relaxed);
    }
  };
  thread_local Holder holder;
  return holder.slot;
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_SPIN_HPP_
