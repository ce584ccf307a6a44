// L1Clock: the order in which the cache demotes entries from L1 (second
// chance over a dense ring).
//
// Thread safety: none; one clock belongs to one cache shard's policy.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_L1_CLOCK_HPP_
#define EVSTORE_DETAIL_L1_CLOCK_HPP_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "evstore/detail/policy_node.hpp"

namespace evstore::cache_internal {

// L1's demotion order: second chance (CLOCK) over a ring of L1's entries,
// with the "hit since last passed" bits in a bitset beside it. A hit sets a
// bit; the hand clears set bits as it passes and stops at the first entry
// whose bit is clear. New entries go just behind the hand, so they are
// examined last. The ring and bits are dense (8 entries and 64 bits per
// cache line), so the hand reads no entry it passes, only the one it stops
// at; this is the order of a list with moves to the front, without the moves.
class L1Clock {
 public:
  // Makes room for one Push. May throw std::bad_alloc, changing nothing.
  void Reserve() {
    if (ring_.size() == ring_.capacity()) GrowRing();
  }
  // Push allocates only what Reserve would (strong guarantee); Remove never
  // allocates or throws.
  void Push(PolicyNode* n);
  void Remove(PolicyNode* n);
  void Hit(const PolicyNode* n) { SetBit(n->l1_pos, true); }
  // The entry to demote; adds the entries passed (including it) to *steps.
  // REQUIRES: an entry is in the clock. It stays there until Remove.
  PolicyNode* Victim(uint64_t* steps);
  // Loads the next entries the hand will examine (ring, bits and nodes).
  void Prefetch() const;
  // Ring slots plus listed holes: what the clock holds besides its bits.
  size_t slots_held() const { return ring_.size() + free_.size(); }

 private:
  bool Bit(uint32_t i) const { return (bits_[i / 64] >> (i % 64)) & 1; }
  void SetBit(uint32_t i, bool v) {
    uint64_t m = uint64_t{1} << (i % 64);
    bits_[i / 64] = v ? bits_[i / 64] | m : bits_[i / 64] & ~m;
  }
  void Place(PolicyNode* n, uint32_t i, bool bit) {
    ring_[i] = n;
    n->l1_pos = i;
    SetBit(i, bit);
  }
  // The position the hand examined last. REQUIRES: the ring is not empty.
  uint32_t Behind() const { return hand_ == 0 ? static_cast<uint32_t>(ring_.size() - 1) : hand_ - 1; }
  uint32_t TakeHole();  // a free slot, the ring grown by one if none
  void GrowRing();
  void Compact();
  std::vector<PolicyNode*> ring_;  // nullptr: a hole, listed once in free_
  std::vector<uint64_t> bits_;
  std::vector<uint32_t> free_;
  uint32_t hand_ = 0;  // the next position to examine
  uint64_t live_ = 0;
};

inline void L1Clock::GrowRing() {
  // The ring's capacity grows last, so that its check in Reserve also
  // covers the other two: free_ can list every ring slot (so that Remove
  // never allocates), and bits_ has a bit for each.
  size_t n = std::max<size_t>(16, 2 * ring_.capacity());
  free_.reserve(n);
  bits_.reserve((n + 63) / 64);
  ring_.reserve(n);
}

inline void L1Clock::Push(PolicyNode* n) {
  Reserve();  // the only allocation: before anything changes
  live_++;
  // Just behind the hand, so that it is examined last. Demotions leave
  // their hole there (the hole last listed, as a rule); otherwise the entry
  // there (the one the hand passed last) moves to another hole, or to a new
  // slot.
  if (!ring_.empty()) {
    uint32_t b = Behind();
    if (ring_[b] == nullptr) {
      // Unlist the hole, searching from the latest.
      auto it = std::find(free_.rbegin(), free_.rend(), b);
      *it = free_.back();
      free_.pop_back();
      Place(n, b, false);
      return;
    }
  }
  uint32_t hole = TakeHole();
  uint32_t b = Behind();  // a new slot at the end may itself be behind the hand
  if (hole != b) Place(ring_[b], hole, Bit(b));
  Place(n, b, false);
}

inline uint32_t L1Clock::TakeHole() {
  if (!free_.empty()) {
    uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }
  ring_.push_back(nullptr);
  if (bits_.size() * 64 < ring_.size()) bits_.push_back(0);
  return static_cast<uint32_t>(ring_.size() - 1);
}

inline void L1Clock::Remove(PolicyNode* n) {
  ring_[n->l1_pos] = nullptr;
  SetBit(n->l1_pos, false);
  free_.push_back(n->l1_pos);  // within the capacity GrowRing kept
  live_--;
  // Holes cost the hand a step each: once they are the majority, close them
  // (without memory for the new ring they stay, and a later Remove retries).
  uint64_t holes = ring_.size() - live_;
  if (holes > 64 && holes > live_) {
    try {
      Compact();
    } catch (const std::bad_alloc&) {
    }
  }
}

inline void L1Clock::Compact() {
  // Keeps the order as the hand will see it, starting from the hand. Both
  // allocations come before any change, so a failed one changes nothing.
  std::vector<PolicyNode*> ring;
  std::vector<uint64_t> bits((live_ + 63) / 64 + 1, 0);
  ring.reserve(live_);
  uint32_t size = static_cast<uint32_t>(ring_.size());
  for (uint32_t k = 0; k < size; k++) {
    uint32_t i = (hand_ + k) % size;
    PolicyNode* n = ring_[i];
    if (n == nullptr) continue;
    uint32_t j = static_cast<uint32_t>(ring.size());
    ring.push_back(n);
    n->l1_pos = j;
    if (Bit(i)) bits[j / 64] |= uint64_t{1} << (j % 64);
  }
  ring_.swap(ring);
  bits_.swap(bits);
  free_.clear();
  hand_ = 0;
}

inline void L1Clock::Prefetch() const {
  uint32_t size = static_cast<uint32_t>(ring_.size());
  if (size == 0) return;
  // Most entries the hand passes have their bit clear: the victim is among
  // the first few.
  for (uint32_t k = 0, i = hand_; k < 4; k++, i = i + 1 == size ? 0 : i + 1) {
    const PolicyNode* n = ring_[i];
    if (n == nullptr) continue;
    // The node's line with the value (before PolicyNode) and its policy line.
    auto a = reinterpret_cast<uintptr_t>(n) & ~uintptr_t{63};
    __builtin_prefetch(reinterpret_cast<const void*>(a));
    __builtin_prefetch(reinterpret_cast<const void*>(a + 64), 1);
  }
}

inline PolicyNode* L1Clock::Victim(uint64_t* steps) {
  // Each pass over a set bit clears it, so this is O(1) amortised over the
  // hits that set the bits.
  uint32_t size = static_cast<uint32_t>(ring_.size());
  for (;;) {
    uint32_t i = hand_;
    hand_ = hand_ + 1 == size ? 0 : hand_ + 1;
    PolicyNode* n = ring_[i];
    if (n == nullptr) continue;
    ++*steps;
    if (!Bit(i)) return n;
    SetBit(i, false);
  }
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_L1_CLOCK_HPP_
