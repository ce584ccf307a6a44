// BackwardShiftErase: deletion from the open-addressing tables of the cache
// (the shard index and the ghost lists).
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_OPEN_ADDRESSING_HPP_
#define EVSTORE_DETAIL_OPEN_ADDRESSING_HPP_

#include <cstddef>
#include <vector>

namespace evstore::cache_internal {

// Removes slots[i] from an open-addressing table with linear probing, whose
// slots have a `hash` (the home index, masked) and whose default value is a
// free slot that `empty` recognises. Backward-shift deletion: later entries
// of the probe run move back, so probe sequences stay unbroken without
// tombstones. REQUIRES: slots.size() is a power of two, with a free slot.
template <typename Slot, typename Empty>
void BackwardShiftErase(std::vector<Slot>& slots, size_t i, Empty empty) {
  size_t mask = slots.size() - 1;
  for (size_t j = i;;) {
    slots[i] = Slot();
    for (;;) {
      j = (j + 1) & mask;
      if (empty(slots[j])) return;
      size_t ideal = slots[j].hash & mask;
      if (((j - ideal) & mask) >= ((j - i) & mask)) break;
    }
    slots[i] = slots[j];
    i = j;
  }
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_OPEN_ADDRESSING_HPP_
