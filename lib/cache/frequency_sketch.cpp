// Count-min sketch with conservative update, periodic halving and a
// doorkeeper. Sized like Caffeine's: one 64-bit word (16 counters) per
// expected entry, so four counters per key stay mostly collision free.
#include <algorithm>
#include <bit>

#include "evstore/cache_policy.hpp"

namespace evstore::cache_internal {
namespace {

constexpr uint64_t kSeeds[4] = {0xc3a5c85c97cb3127ull, 0xb492b66fbe98f273ull,
                                0x9ae16a3b2f90404full, 0xcbf29ce484222325ull};

inline uint64_t Rehash(uint64_t h, int i) {
  h = (h + kSeeds[i]) * kSeeds[(i + 1) & 3];
  return h ^ (h >> 29);
}

}  // namespace

// The four counters of a key sit in one 64-byte block of the table (one in
// each pair of its words), so an update or estimate touches one cache line
// instead of four; the block and the counters come from independent bits of
// the hash.
inline void FrequencySketch::Locate(uint64_t hash, uint64_t idx[4], int shift[4]) const {
  uint64_t block = Block(hash);
  for (int i = 0; i < 4; i++) {
    uint64_t h = Rehash(hash, i);
    idx[i] = block + static_cast<uint64_t>(2 * i) + ((h >> 32) & 1);
    shift[i] = static_cast<int>(h >> 60) << 2;
  }
}

void FrequencySketch::Resize(uint64_t entries) {
  entries = std::max<uint64_t>(entries, 16);
  uint64_t words = std::bit_ceil(entries);
  // About 8 doorkeeper bits per expected entry keep its false positives low
  // for the keys seen within one sample period.
  uint64_t bits = std::bit_ceil(entries * 8);
  // Both allocations first: if either throws, the sketch is as it was.
  std::vector<uint64_t> table(words, 0), door(bits / 64, 0);
  table_.swap(table);
  door_.swap(door);
  block_mask_ = words / 8 - 1;
  door_mask_ = bits / 64 - 1;
  sized_for_ = entries;
  sample_size_ = 10 * entries;
  additions_ = 0;
}

void FrequencySketch::Increment(uint64_t hash) {
  if (table_.empty()) return;
  if (++additions_ >= sample_size_) Age();
  uint64_t& door = door_[DoorWord(hash)];
  uint64_t m = DoorMask(hash);
  if ((door & m) != m) {
    door |= m;
    return;
  }
  // Conservative update: raise only the counters at the current minimum,
  // which keeps over-estimates from colliding keys small.
  uint64_t idx[4];
  int shift[4];
  Locate(hash, idx, shift);
  int min = 15;
  for (int i = 0; i < 4; i++) min = std::min(min, static_cast<int>((table_[idx[i]] >> shift[i]) & 15));
  if (min == 15) return;
  for (int i = 0; i < 4; i++) {
    if (static_cast<int>((table_[idx[i]] >> shift[i]) & 15) == min) {
      table_[idx[i]] += 1ull << shift[i];
    }
  }
}

int FrequencySketch::Frequency(uint64_t hash) const {
  if (table_.empty()) return 0;
  uint64_t idx[4];
  int shift[4];
  Locate(hash, idx, shift);
  int min = 15;
  for (int i = 0; i < 4; i++) min = std::min(min, static_cast<int>((table_[idx[i]] >> shift[i]) & 15));
  uint64_t m = DoorMask(hash);
  return min + ((door_[DoorWord(hash)] & m) == m ? 1 : 0);
}

void FrequencySketch::Prefetch(uint64_t hash) const {
  if (table_.empty()) return;
  __builtin_prefetch(&door_[DoorWord(hash)]);
  __builtin_prefetch(&table_[Block(hash)]);
}

void FrequencySketch::Age() {
  for (auto& w : table_) w = (w >> 1) & 0x7777777777777777ull;
  std::fill(door_.begin(), door_.end(), 0);
  additions_ /= 2;
}

}  // namespace evstore::cache_internal
