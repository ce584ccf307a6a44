// evstore::cache_internal: the non-template core of evstore::TieredCache.
//
// Not part of the stable API: these types are public only because the
// TieredCache template (cache.hpp) drives them from a header. CachePolicy is
// the replacement and tiering policy of one cache shard: an adaptive
// W-TinyLFU (a recency window in front of a frequency-admitted segmented LRU,
// with the window size tuned online from ghost lists), a count-min frequency
// sketch with a doorkeeper, a second-chance order of the decoded tier (L1),
// a hierarchical timer wheel for expiry, and the shard's statistics. Every
// method is O(1) amortised.
//
// Thread safety: none. A CachePolicy belongs to one shard and is used only
// under that shard's mutex (readers record their hits in buffers that the
// mutex holder replays through Touch, which writes only policy fields).
#ifndef EVSTORE_CACHE_POLICY_HPP_
#define EVSTORE_CACHE_POLICY_HPP_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "evstore/export.hpp"

namespace evstore {

// Counters of one tier. Counters (hits .. demotions) count events since the
// last reset_stats(); entries and bytes are the current contents, capacity
// the current budget.
struct CacheTierStats {
  uint64_t hits = 0;         // lookups answered by this tier
  uint64_t misses = 0;       // lookups that reached this tier and did not find the key
  uint64_t evictions = 0;    // entries dropped from the cache while in this tier (capacity)
  uint64_t expirations = 0;  // entries dropped while in this tier because their TTL passed
  uint64_t promotions = 0;   // L2 -> L1 moves (same figure on both tiers)
  uint64_t demotions = 0;    // L1 -> L2 moves (same figure on both tiers)
  uint64_t entries = 0;      // entries now in this tier
  uint64_t bytes = 0;        // weight now in this tier (weigher units)
  uint64_t capacity = 0;     // weight this tier may now hold (moves with adaptive_split)
};

// Statistics of a whole cache: one CacheTierStats per tier.
struct CacheStats {
  CacheTierStats l1;
  CacheTierStats l2;
  uint64_t misses = 0;       // lookups found in neither tier
  uint64_t loads = 0;        // loader calls made by get_or_load
  uint64_t load_errors = 0;  // loader calls that returned an error (or threw)
  uint64_t rejections = 0;   // puts and loads not cached because the value is too heavy

  // Fraction of lookups answered by either tier; 0 when there were none.
  double hit_ratio() const {
    uint64_t hits = l1.hits + l2.hits;
    uint64_t lookups = hits + misses;
    return lookups ? static_cast<double>(hits) / static_cast<double>(lookups) : 0.0;
  }
};

namespace cache_internal {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

enum class Queue : uint8_t { kNone, kWindow, kProbation, kProtected };
enum class Tier : uint8_t { kNone, kL1, kL2 };

// Policy bookkeeping embedded in every cache entry (intrusive links, so no
// allocation happens in the policy).
struct PolicyNode {
  // First, next to the key and value of the cache node that precedes it: the
  // fields a lookup reads and those changed only while the shard is held
  // exclusively. The rest (from `tier`) is written by read-buffer drains
  // while lookups run, so it is kept off the lookup's cache line (the cache
  // aligns its nodes; for 8-byte keys and values a node is 128 bytes, one
  // line of each kind).
  int64_t deadline_ns = kNever;    // expiry in the current tier
  uint64_t hash = 0;
  uint64_t charge = 0;             // weight in the current tier
  int64_t write_ns = 0;            // clock at the last write
  Tier tier = Tier::kNone;
  Queue queue = Queue::kNone;
  bool pending = false;            // queued for promotion or removal by a buffer drain
  int16_t bucket = -1;             // timer wheel bucket, -1 = not scheduled
  PolicyNode* qprev = nullptr;  // window / probation / protected queue
  PolicyNode* qnext = nullptr;
  uint32_t l1_pos = 0;             // in L1: position in the shard's L1Clock
  PolicyNode* tprev = nullptr;  // timer wheel bucket
  PolicyNode* tnext = nullptr;
  int64_t ttl_ns = 0;              // per-entry TTL; 0 = none
};

// A doubly linked, null-terminated list over one pair of PolicyNode links.
// front = most recently used, back = least recently used.
template <PolicyNode* PolicyNode::*Prev, PolicyNode* PolicyNode::*Next>
struct NodeList {
  PolicyNode* head = nullptr;
  PolicyNode* tail = nullptr;

  bool empty() const { return head == nullptr; }
  void push_front(PolicyNode* n) {
    n->*Prev = nullptr;
    n->*Next = head;
    if (head) head->*Prev = n; else tail = n;
    head = n;
  }
  void remove(PolicyNode* n) {
    if (n->*Prev) (n->*Prev)->*Next = n->*Next; else head = n->*Next;
    if (n->*Next) (n->*Next)->*Prev = n->*Prev; else tail = n->*Prev;
    n->*Prev = n->*Next = nullptr;
  }
  void move_to_front(PolicyNode* n) {
    if (head == n) return;
    remove(n);
    push_front(n);
  }
};

using QueueList = NodeList<&PolicyNode::qprev, &PolicyNode::qnext>;
using TimerList = NodeList<&PolicyNode::tprev, &PolicyNode::tnext>;

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

// Count-min sketch of 4-bit counters (four per key) with periodic halving
// ("aging"), fronted by a doorkeeper bit set that absorbs first occurrences
// so that one-hit wonders do not pollute the counters.
class EVSTORE_EXPORT FrequencySketch {
 public:
  // Sizes the sketch for about `entries` distinct hot keys; drops history.
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

// Hierarchical timer wheel (levels of 64 buckets spanning ~1.07 s, ~1.15 min,
// ~1.22 h and ~3.3 d). Nodes due within one level-0 bucket are found at most
// one bucket late (~1.07 s); lookups compare exact deadlines.
class EVSTORE_EXPORT TimerWheel {
 public:
  static constexpr int kLevels = 4;
  static constexpr int kBuckets = 64;
  explicit TimerWheel(int64_t now = 0) : now_(now) {}
  void Schedule(PolicyNode* n);    // REQUIRES: n->deadline_ns != kNever, not scheduled
  void Unschedule(PolicyNode* n);  // no-op if not scheduled
  // Moves nodes due at `now` to `due` (whose links it reuses, bucket=-2):
  // all of them with include_current, else those in buckets whose whole time
  // range has passed (found at most one bucket span late, O(1) amortised).
  void Advance(int64_t now, bool include_current, TimerList* due);
  bool empty() const { return scheduled_ == 0; }

 private:
  TimerList* BucketFor(int64_t deadline, int16_t* index);
  TimerList buckets_[kLevels * kBuckets];
  int64_t now_;
  uint64_t scheduled_ = 0;
};

// A bounded FIFO of key hashes recently evicted from one part of the policy,
// with O(1) membership (ghost entries: no key, no value).
class EVSTORE_EXPORT GhostList {
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

// L1's demotion order: second chance (CLOCK) over a ring of L1's entries,
// with the "hit since last passed" bits in a bitset beside it. A hit sets a
// bit; the hand clears set bits as it passes and stops at the first entry
// whose bit is clear. New entries go just behind the hand, so they are
// examined last. The ring and bits are dense (8 entries and 64 bits per
// cache line), so the hand reads no entry it passes, only the one it stops
// at; this is the order of a list with moves to the front, without the moves.
class EVSTORE_EXPORT L1Clock {
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

// Tuning constants of the default policy; fixed (no per-workload tuning).
struct PolicyParams {
  double initial_window = 0.01;  // window share of the capacity at start
  double protected_share = 0.80; // protected share of the main space
  double ghost_share = 0.05;     // each ghost list's size, share of the entries
};

// The replacement, tiering and expiry policy of one shard. See the header
// comment. Capacities are in weigher units; a tier of capacity 0 is disabled.
class EVSTORE_EXPORT CachePolicy {
 public:
  CachePolicy(uint64_t l1_capacity, uint64_t l2_capacity, int64_t l1_ttl_ns, int64_t l2_ttl_ns,
              int64_t now_ns, PolicyParams params = PolicyParams());
  CachePolicy(const CachePolicy&) = delete;
  CachePolicy& operator=(const CachePolicy&) = delete;

  uint64_t l1_capacity() const { return l1_cap_; }
  uint64_t l2_capacity() const { return l2_cap_; }

  // Exceptions: Reserve, Insert, Rewrite and MoveToTier may throw
  // std::bad_alloc, with nothing changed (the policy's other allocations,
  // growing the sketch and the ghosts, are skipped when memory runs out);
  // every other method allocates nothing and does not throw.
  //
  // Makes room so that the next Insert, Rewrite or MoveToTier into `tier`
  // cannot throw.
  void Reserve(Tier tier) {
    if (tier == Tier::kL1) l1_clock_.Reserve();
  }
  // Adds a new entry in `tier` with weight `charge`, written at `now`; its
  // ttl_ns (0 = none) is set before the call, as for Rewrite.
  void Insert(PolicyNode* n, Tier tier, uint64_t charge, int64_t now);
  // Records an overwrite of an existing entry: new weight, new write time.
  void Rewrite(PolicyNode* n, Tier tier, uint64_t charge, int64_t now);
  // Moves an entry between tiers (promotion or demotion) with its new weight.
  void MoveToTier(PolicyNode* n, Tier tier, uint64_t charge);
  // Forgets the entry (erase, eviction, expiry).
  void Remove(PolicyNode* n);
  // Records a hit on `n`: statistics and Touch.
  void RecordHit(PolicyNode* n);
  // Counts a hit in `tier` without touching the policy order.
  void CountHit(Tier tier);
  // The policy side of a hit: frequency and recency updates, no statistics.
  // Writes only policy fields (links, queue, flags), never the deadline or
  // tier, so lookups may run while it does.
  void Touch(PolicyNode* n);
  // Starts loading what Touch(n) will use beyond n itself (the sketch's
  // counters, the queue neighbours), so that a drain replaying many hits
  // waits for their cache misses together rather than one after another.
  void PrefetchTouch(const PolicyNode* n) const;
  // Loads what inserting an entry with `hash` and making room for it will
  // read: the key's sketch counters and ghost slots, the queue tails that
  // compete for eviction with their counters, and L1's next demotion
  // candidates. For a writer to call before it stops the shard's readers,
  // so that they do not wait through these cache misses.
  void WarmForInsert(uint64_t hash) const;
  // Records a lookup that found nothing.
  void RecordMiss();

  bool Expired(const PolicyNode* n, int64_t now) const { return now >= n->deadline_ns; }
  // Advances the timer wheel and returns one entry due at `now`, or nullptr.
  // The caller removes it (Remove) before asking for the next one. `exact`
  // also finds entries in the current wheel bucket (used by cleanup()).
  PolicyNode* NextExpired(int64_t now, bool exact);
  bool has_timers() const { return !wheel_.empty() || !due_.empty(); }

  // The entry to evict next to make room, or nullptr if the shard is empty.
  // May move entries between queues (admission contest).
  PolicyNode* SelectVictim();
  // Records that `n`, chosen by SelectVictim, is being evicted.
  void OnEvict(PolicyNode* n);
  // The next L1 entry to demote: second chance over L1's insertion order
  // (see L1Clock). REQUIRES: L1 is not empty.
  PolicyNode* L1Victim() { return l1_clock_.Victim(&hand_steps_); }

  // Policy updates so far (Insert, Rewrite, Touch); never reset.
  uint64_t touches() const { return touches_; }
  // Entries L1Victim has passed (bits cleared and victims chosen); never
  // reset. An entry passed at one count comes round again only after about
  // L1's entries more.
  uint64_t hand_steps() const { return hand_steps_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t total_charge() const { return window_charge_ + probation_charge_ + protected_charge_; }
  uint64_t l1_charge() const { return tier_[0].bytes; }
  uint64_t l2_charge() const { return tier_[1].bytes; }
  uint64_t window_max() const { return window_max_; }

  CacheTierStats& stats(Tier t) { return tier_[t == Tier::kL1 ? 0 : 1]; }
  const CacheTierStats& stats(Tier t) const { return tier_[t == Tier::kL1 ? 0 : 1]; }

 private:
  void Enqueue(PolicyNode* n, Queue q);
  void CountAccess(const PolicyNode* n);  // the sketch's increment and touches_
  void Dequeue(PolicyNode* n);
  QueueList& QueueOf(Queue q);
  uint64_t& ChargeOf(Queue q);
  void Schedule(PolicyNode* n);
  void SetLimits();
  void Adapt(PolicyNode* inserted);
  bool Admit(uint64_t candidate, uint64_t victim);
  void EnsureSketch();
  [[gnu::noinline]] void GrowSketch();  // rare: kept out of Insert

  PolicyParams params_;
  uint64_t l1_cap_, l2_cap_, capacity_;
  int64_t l1_ttl_, l2_ttl_;
  bool any_ttl_;  // a tier TTL, or some entry was given one

  QueueList window_, probation_, protected_;
  uint64_t window_charge_ = 0, probation_charge_ = 0, protected_charge_ = 0;
  uint64_t window_max_ = 0, protected_max_ = 0;
  L1Clock l1_clock_;
  uint64_t entries_ = 0;

  FrequencySketch sketch_;
  uint64_t touches_ = 0;
  uint64_t hand_steps_ = 0;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;

  double window_target_ = 0;  // adapted window size, weigher units
  // Recent ghost hits of each side, halved as they add up (see Adapt).
  double window_evidence_ = 0, main_evidence_ = 0;

  TimerWheel wheel_;
  TimerList due_;

  GhostList window_ghost_, main_ghost_;
  uint64_t ghost_sized_for_ = 0;

  CacheTierStats tier_[2];
};

}  // namespace cache_internal
}  // namespace evstore

#endif  // EVSTORE_CACHE_POLICY_HPP_
