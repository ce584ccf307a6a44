// Slab<T>: the cache's node storage, with AddressSanitizer hooks so that a
// use of a freed slot is reported like a use of freed heap memory.
//
// Thread safety: none; a slab belongs to one cache shard.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_SLAB_HPP_
#define EVSTORE_DETAIL_SLAB_HPP_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace evstore::cache_internal {

// Marks memory as unusable (or usable again) for AddressSanitizer, so that a
// use of a freed slab slot is reported like a use of freed heap memory.
#if defined(__SANITIZE_ADDRESS__)
#define EVSTORE_CACHE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVSTORE_CACHE_ASAN 1
#endif
#endif
#ifdef EVSTORE_CACHE_ASAN
extern "C" void __asan_poison_memory_region(void const volatile* addr, size_t size);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
inline void PoisonMemory(void* p, size_t n) { __asan_poison_memory_region(p, n); }
inline void UnpoisonMemory(void* p, size_t n) { __asan_unpoison_memory_region(p, n); }
#else
inline void PoisonMemory(void*, size_t) {}
inline void UnpoisonMemory(void*, size_t) {}
#endif

// Storage for objects of one type, in chunks of aligned slots reused through
// a free list: no per-object allocator header or alignment waste, and no
// allocator call per insert. Chunks grow from 4 to 256 slots. Not
// thread-safe; memory goes back only with Reset or destruction. New has the
// strong guarantee (a failed allocation or constructor leaves the slab as
// it was); Delete and Reset do not throw.
template <typename T>
class Slab {
 public:
  Slab() = default;
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;
  ~Slab() { Reset(); }

  template <typename... Args>
  T* New(Args&&... args) {
    void* p;
    if (free_ != nullptr) {
      p = free_;
      UnpoisonMemory(p, sizeof(T));
      std::memcpy(&free_, Link(p), sizeof(void*));
    } else {
      if (chunks_.empty() || used_ == ChunkSlots(chunks_.size() - 1)) {
        void* chunk =
            ::operator new(sizeof(T) * ChunkSlots(chunks_.size()), std::align_val_t(alignof(T)));
        try {
          chunks_.push_back(chunk);
        } catch (...) {
          ::operator delete(chunk, std::align_val_t(alignof(T)));
          throw;
        }
        used_ = 0;
      }
      p = static_cast<char*>(chunks_.back()) + sizeof(T) * used_++;
    }
    try {
      return new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      Release(p);
      throw;
    }
  }
  void Delete(T* t) {
    t->~T();
    Release(t);
  }
  // Frees every chunk. REQUIRES: no object is live.
  void Reset() {
    for (size_t i = 0; i < chunks_.size(); i++) {
      UnpoisonMemory(chunks_[i], sizeof(T) * ChunkSlots(i));
      ::operator delete(chunks_[i], std::align_val_t(alignof(T)));
    }
    chunks_.clear();
    free_ = nullptr;
    used_ = 0;
  }

 private:
  static_assert(sizeof(T) >= 2 * sizeof(void*), "slab slots hold a free-list link");
  // The free-list link sits in the last bytes of a free slot, so that the
  // rest, where the object's first fields were, stays poisoned.
  static size_t ChunkSlots(size_t chunk) { return std::min<size_t>(256, size_t{4} << std::min<size_t>(chunk, 6)); }
  static void* Link(void* p) { return static_cast<char*>(p) + sizeof(T) - sizeof(void*); }
  void Release(void* p) {
    std::memcpy(Link(p), &free_, sizeof(void*));
    free_ = p;
    PoisonMemory(p, sizeof(T) - sizeof(void*));
  }
  std::vector<void*> chunks_;
  void* free_ = nullptr;
  size_t used_ = 0;  // slots carved from the last chunk
};

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_SLAB_HPP_
