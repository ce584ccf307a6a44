// FrequencySketch: the cache policy's estimate of how often each key was
// used recently. A count-min sketch of 4-bit counters with conservative
// update and periodic halving, fronted by a doorkeeper, sized like
// Caffeine's: one 64-bit word (16 counters) per expected entry, so four
// counters per key stay mostly collision free.
//
// Thread safety: none; one sketch belongs to one cache shard's policy.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_FREQUENCY_SKETCH_HPP_
#define EVSTORE_DETAIL_FREQUENCY_SKETCH_HPP_

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace evstore::cache_internal {

// Count-min sketch of 4-bit counters (four per key) with periodic halving
// ("aging"), fronted by a doorkeeper bit set that absorbs first occurrences
// so that one-hit wonders do not pollute the counters.
class FrequencySketch {
 public:
  // Sizes the sketch for about `entries` distinct hot keys; drops history.
  // May throw std::bad_alloc, changing nothing.
  void Resize(uint64_t entries);
  // Records one occurrence of the key whose mixed hash is `hash`.
  void Increment(uint64_t hash);
  // Estimated recent frequency, 0..16.
  int Frequency(uint64_t hash) const;
  // Starts loading the memory Increment(hash) will use.
  void Prefetch(uint64_t hash) const;
  uint64_t sized_for() const { return sized_for_; }
  uint64_t sample_size() const { return sample_size_; }

 private:
  static constexpr uint64_t kSeeds[4] = {0xc3a5c85c97cb3127ull, 0xb492b66fbe98f273ull,
                                         0x9ae16a3b2f90404full, 0xcbf29ce484222325ull};
  static uint64_t Rehash(uint64_t h, int i) {
    h = (h + kSeeds[i]) * kSeeds[(i + 1) & 3];
    return h ^ (h >> 29);
  }
  void Age();
  // First word of the key's 64-byte block of counters.
  uint64_t Block(uint64_t hash) const { return (((hash * 0x9E3779B97F4A7C15ull) >> 32) & block_mask_) << 3; }
  void Locate(uint64_t hash, uint64_t idx[4], int shift[4]) const;
  std::vector<uint64_t> table_;  // 16 counters per word, 8 words per block
  std::vector<uint64_t> door_;   // doorkeeper bits
  uint64_t block_mask_ = 0;
  // The doorkeeper is a blocked Bloom filter: a key's two bits sit in one
  // word, so a lookup or update reads one cache line.
  uint64_t DoorWord(uint64_t hash) const { return hash & door_mask_; }
  static uint64_t DoorMask(uint64_t hash) {
    return (uint64_t{1} << ((hash >> 32) & 63)) | (uint64_t{1} << ((hash >> 38) & 63));
  }
  uint64_t door_mask_ = 0;  // word index mask
  uint64_t sized_for_ = 0;
  uint64_t sample_size_ = 0;
  uint64_t additions_ = 0;
};

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

inline void FrequencySketch::Resize(uint64_t entries) {
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

inline void FrequencySketch::Increment(uint64_t hash) {
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

inline int FrequencySketch::Frequency(uint64_t hash) const {
  if (table_.empty()) return 0;
  uint64_t idx[4];
  int shift[4];
  Locate(hash, idx, shift);
  int min = 15;
  for (int i = 0; i < 4; i++) min = std::min(min, static_cast<int>((table_[idx[i]] >> shift[i]) & 15));
  uint64_t m = DoorMask(hash);
  return min + ((door_[DoorWord(hash)] & m) == m ? 1 : 0);
}

inline void FrequencySketch::Prefetch(uint64_t hash) const {
  if (table_.empty()) return;
  __builtin_prefetch(&door_[DoorWord(hash)]);
  __builtin_prefetch(&table_[Block(hash)]);
}

inline void FrequencySketch::Age() {
  for (auto& w : table_) w = (w >> 1) & 0x7777777777777777ull;
  std::fill(door_.begin(), door_.end(), 0);
  additions_ /= 2;
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_FREQUENCY_SKETCH_HPP_
