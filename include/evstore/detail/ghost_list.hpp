// GhostList: the cache policy's memory of keys it evicted recently (hashes
// only), which steers the size of its recency window.
//
// Thread safety: none; one list belongs to one cache shard's policy.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_GHOST_LIST_HPP_
#define EVSTORE_DETAIL_GHOST_LIST_HPP_

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "evstore/detail/open_addressing.hpp"

namespace evstore::cache_internal {

// A bounded FIFO of key hashes recently evicted from one part of the policy,
// with O(1) membership (ghost entries: no key, no value).
class GhostList {
 public:
  void Resize(uint64_t size);
  void Add(uint64_t hash);
  // True (and forgets it) if `hash` is in the list.
  bool Take(uint64_t hash);
  // Starts loading the slot where Add or Take of `hash` begins its probe.
  void Prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]);
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint64_t seq = 0;  // 1 + sequence number of the hash's latest Add; 0 = empty
  };
  size_t Find(uint64_t hash) const;  // the hash's slot, or the empty one ending its probe
  void EraseAt(size_t i);
  std::vector<uint64_t> ring_;
  uint64_t next_ = 0;  // sequence number of the next Add
  std::vector<Slot> slots_;
};

// The ring keeps the order of the last `size` additions; an open-addressing
// table (linear probing, backward-shift deletion, at most half full) maps
// each hash still in it to the sequence number of its latest addition, so
// that Add and Take cost O(1) and allocate nothing.
inline void GhostList::Resize(uint64_t size) {
  // Both allocations first: if either throws, the list is as it was.
  std::vector<uint64_t> ring(std::max<uint64_t>(size, 1), 0);
  std::vector<Slot> slots(std::bit_ceil(2 * ring.size()), Slot());
  ring_.swap(ring);
  slots_.swap(slots);
  next_ = 0;
}

inline size_t GhostList::Find(uint64_t hash) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    if (slots_[i].seq == 0 || slots_[i].hash == hash) return i;
  }
}

inline void GhostList::EraseAt(size_t i) {
  BackwardShiftErase(slots_, i, [](const Slot& s) { return s.seq == 0; });
}

inline void GhostList::Add(uint64_t hash) {
  if (slots_.empty()) return;
  uint64_t slot = next_ % ring_.size();
  if (next_ >= ring_.size()) {
    // The oldest addition leaves, unless its hash was added again since.
    size_t i = Find(ring_[slot]);
    if (slots_[i].seq == next_ - ring_.size() + 1) EraseAt(i);
  }
  ring_[slot] = hash;
  size_t i = Find(hash);
  slots_[i] = Slot{hash, ++next_};  // seq is the addition's number + 1; 0 = empty
}

inline bool GhostList::Take(uint64_t hash) {
  if (slots_.empty()) return false;
  size_t i = Find(hash);
  if (slots_[i].seq == 0) return false;
  EraseAt(i);
  return true;
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_GHOST_LIST_HPP_
