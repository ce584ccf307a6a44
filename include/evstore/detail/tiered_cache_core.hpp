// TieredCacheCore<K, V>: the implementation of evstore::TieredCache
// (evstore/cache.hpp states the contract; docs/cache.md the design).
//
// The cache is split into shards, each with its own policy (CachePolicy). A
// lookup takes no exclusive lock: it enters its key's shard as a reader
// through a per-thread stripe, copies the value out and records the access
// in the stripe's bounded read buffer; the policy catches up when a buffer
// fills (without stopping the shard's readers) or the shard is written
// (writes hold the shard exclusively, except a put that overwrites a small
// trivially copyable value in L1 in place: it enters like a lookup and takes
// turns with other writers of the key on a per-node sequence counter).
//
// Thread safety: as TieredCache.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_TIERED_CACHE_CORE_HPP_
#define EVSTORE_DETAIL_TIERED_CACHE_CORE_HPP_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "evstore/cache.hpp"
#include "evstore/cache_stats.hpp"
#include "evstore/detail/cache_policy.hpp"
#include "evstore/detail/compact_bytes.hpp"
#include "evstore/detail/open_addressing.hpp"
#include "evstore/detail/slab.hpp"
#include "evstore/detail/spin.hpp"
#include "evstore/status.hpp"

namespace evstore::cache_internal {

// Defined by tests that check a cache's internal invariants.
struct TestPeer;

template <typename K, typename V, typename Hash, typename KeyEq>
class TieredCacheCore {
 public:
  using Codec = CacheCodec<V>;
  using Weighers = CacheWeighers<K, V>;

  // TieredCache's operations, with the contracts cache.hpp states.
  TieredCacheCore(CacheOptions options, Codec codec, Weighers weighers);
  TieredCacheCore(const TieredCacheCore&) = delete;
  TieredCacheCore& operator=(const TieredCacheCore&) = delete;
  ~TieredCacheCore();
  std::optional<V> get(const K& key);
  Status put(const K& key, V&& value, std::chrono::nanoseconds ttl);
  bool erase(const K& key);
  void clear();
  template <typename Loader>
  Result<V> get_or_load(const K& key, Loader&& loader, std::chrono::nanoseconds ttl);
  void cleanup();
  CacheStats stats() const;
  void reset_stats();
  uint32_t shard_count() const { return nshards_; }

 private:
  friend struct TestPeer;

  // Trivially copyable values of up to 64 bytes are kept in L1 as atomic
  // words under a sequence counter (a seqlock), so that a put of a new value
  // for a key in L1 overwrites it in place while lookups go on, instead of
  // stopping the shard's lookups. A lookup that overlaps such a write reads
  // again.
  static constexpr bool kInPlace = std::is_trivially_copyable_v<V> &&
                                   std::is_default_constructible_v<V> && sizeof(V) <= 64;
  class AtomicValue {
   public:
    explicit AtomicValue(const V& v) { Store(v); }
    // A consistent copy, also while Write runs on another thread. The
    // words are read with acquire and written with release (plain moves on
    // x86) instead of fences, which ThreadSanitizer does not model: a word
    // read from a Write makes that Write's odd counter visible to the
    // counter's second read, so a torn copy is always retried.
    V Read() const {
      for (int spins = 0;; spins++) {
        uint32_t before = seq_.load(std::memory_order_acquire);
        if ((before & 1) == 0) {
          V v = Load();
          if (seq_.load(std::memory_order_relaxed) == before) return v;
        }
        CpuRelax(spins);
      }
    }
    // Safe against concurrent Reads and Writes: a writer makes the counter
    // odd with a compare-and-swap from even, so writers take turns.
    void Write(const V& v) {
      uint32_t s = seq_.load(std::memory_order_relaxed);
      for (int spins = 0;; spins++) {
        if ((s & 1) == 0 &&
            seq_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
          break;
        }
        CpuRelax(spins);
        s = seq_.load(std::memory_order_relaxed);
      }
      Store(v);  // release: the odd counter is visible before any new word
      seq_.store(s + 2, std::memory_order_release);
    }

   private:
    static constexpr size_t kWords = (sizeof(V) + 7) / 8;
    V Load() const {
      uint64_t w[kWords];
      for (size_t i = 0; i < kWords; i++) w[i] = words_[i].load(std::memory_order_acquire);
      V v;
      std::memcpy(static_cast<void*>(&v), w, sizeof(V));
      return v;
    }
    void Store(const V& v) {
      uint64_t w[kWords] = {};
      std::memcpy(w, static_cast<const void*>(&v), sizeof(V));
      for (size_t i = 0; i < kWords; i++) words_[i].store(w[i], std::memory_order_release);
    }
    std::atomic<uint32_t> seq_{0};
    std::atomic<uint64_t> words_[kWords];
  };
  using Decoded = std::conditional_t<kInPlace, AtomicValue, V>;
  // Keys and values of up to 8 trivially copyable bytes are also kept in
  // the index slot: the key, and while the entry is in L1 its value, as one
  // atomic word that in-place puts write (the node keeps the value it was
  // given under an exclusive hold; see Index::SlotValue). An L1 hit then
  // reads one cache line, the slot's, instead of the slot's and the node's.
  static constexpr bool kInlineSlot = kInPlace && sizeof(V) <= 8 &&
                                      std::is_trivially_copyable_v<K> && sizeof(K) <= 8;
  template <int>
  struct Absent {};
  using SlotKey = std::conditional_t<kInlineSlot, K, Absent<0>>;
  using SlotWord = std::conditional_t<kInlineSlot, uint64_t, Absent<1>>;
  static uint64_t ValueWord(const V& v) {
    uint64_t w = 0;
    std::memcpy(&w, static_cast<const void*>(&v), sizeof(V));
    return w;
  }
  static V WordValue(uint64_t w) {
    V v;
    std::memcpy(static_cast<void*>(&v), &w, sizeof(V));
    return v;
  }

  // What a lookup reads comes first: key, value, then the policy node's
  // deadline, so a hit usually touches one cache line of the node.
  struct NodeData {
    explicit NodeData(const K& k) : key(k) {}
    K key;
    std::variant<std::monostate, Decoded, CompactBytes> value;  // index 1 in L1, 2 in L2
  };
  // Cache-line aligned, so that for small keys and values what a lookup
  // reads (key, value, deadline) is one line that drains do not write; with
  // 8-byte keys and values a node is 128 bytes.
  struct alignas(64) Node : NodeData, PolicyNode {
    explicit Node(const K& k) : NodeData(k) {}
  };

  // Open-addressing (linear probing) index of a shard's nodes by mixed hash:
  // one probe usually touches one cache line of slots, then the node.
  class Index {
   public:
    Index() : slots_(16) {}
    // With kInlineSlot, bit 31 of Slot::hash tells that the node is in L1
    // (and `word` holds its value); the home index uses the bits below, so
    // an index holds at most 2^31 slots.
    static constexpr uint32_t kInL1 = uint32_t{1} << 31;
    struct Slot {
      uint32_t hash = 0;  // low half of the node's mixed hash (the home index)
      // Epoch of the node's last recorded L1 hit (see ReadLookup): written by
      // lookups through std::atomic_ref, otherwise only while no lookup runs.
      uint32_t seen = 0;
      Node* node = nullptr;
      // With kInlineSlot: the node's key, and its value while in L1 (written
      // by in-place puts through std::atomic_ref, otherwise only while no
      // lookup runs).
      [[no_unique_address]] SlotKey key{};
      [[no_unique_address]] SlotWord word{};
    };
    static_assert(sizeof(Slot) == (kInlineSlot ? 32 : 16), "index slots are 16 or 32 bytes");
    Node* Find(uint64_t h, const K& key, const KeyEq& eq) const {
      size_t i = Probe(h, key, eq);
      return i == kAbsent ? nullptr : slots_[i].node;
    }
    // Starts loading the slot where a probe for h begins.
    void PrefetchHome(uint64_t h) const { __builtin_prefetch(&slots_[h & mask()]); }
    Slot* FindSlot(uint64_t h, const K& key, const KeyEq& eq) {
      size_t i = Probe(h, key, eq);
      return i == kAbsent ? nullptr : &slots_[i];
    }
    // Makes room for one Insert. May throw std::bad_alloc, changing nothing.
    void Reserve() {
      if ((count_ + 1) * 8 > slots_.size() * 5) Grow();
    }
    // Does not throw. REQUIRES: no node with an equal key is indexed;
    // Reserve was called after the last Insert.
    void Insert(Node* n) {
      Place(n->hash, n);
      count_++;
    }
    // REQUIRES: n is indexed.
    void Erase(Node* n) {
      BackwardShiftErase(slots_, SlotOf(n), [](const Slot& s) { return !s.node; });
      count_--;
    }
    // Brings n's slot up to date after n's tier or value was set from the
    // node (with kInlineSlot; otherwise there is nothing to do). REQUIRES: n
    // is indexed, no lookup inside.
    void Sync(Node* n) {
      if constexpr (kInlineSlot) Fill(slots_[SlotOf(n)], n);
    }
    // With kInlineSlot, the value of n, in L1: its slot's word, which
    // in-place puts write (the node's copy is the value it was given under
    // an exclusive hold). REQUIRES: n in L1, no in-place put inside.
    V SlotValue(const Node* n) const { return WordValue(slots_[SlotOf(n)].word); }
    template <typename F>
    void ForEach(F f) const {
      for (const Slot& s : slots_)
        if (s.node) f(s.node);
    }
    void Clear() {
      slots_.assign(16, Slot());
      count_ = 0;
    }

   private:
    static constexpr size_t kAbsent = ~size_t{0};
    // The slot holding key, or kAbsent.
    size_t Probe(uint64_t h, const K& key, const KeyEq& eq) const {
      if constexpr (kInlineSlot) {
        for (size_t i = h & mask(); slots_[i].node; i = (i + 1) & mask()) {
          if (eq(slots_[i].key, key)) return i;
        }
      } else {
        uint32_t tag = static_cast<uint32_t>(h);
        for (size_t i = h & mask(); slots_[i].node; i = (i + 1) & mask()) {
          if (slots_[i].hash == tag && eq(slots_[i].node->key, key)) return i;
        }
      }
      return kAbsent;
    }
    size_t SlotOf(const Node* n) const {
      size_t i = n->hash & mask();
      while (slots_[i].node != n) i = (i + 1) & mask();
      return i;
    }
    size_t mask() const { return slots_.size() - 1; }
    // Places a new node's slot (filled from the node), or an old slot as it
    // is (its word may be newer than the node's value).
    void Place(uint64_t h, Node* n) {
      Slot& slot = slots_[FreeFor(h)];
      slot = Slot{static_cast<uint32_t>(h), 0, n};
      if constexpr (kInlineSlot) Fill(slot, n);
    }
    void Place(const Slot& old) {
      Slot& slot = slots_[FreeFor(old.hash)];
      slot = old;
      slot.seen = 0;  // as for a new slot: the next hit is recorded
    }
    size_t FreeFor(uint64_t h) const {
      size_t i = h & mask();
      while (slots_[i].node) i = (i + 1) & mask();
      return i;
    }
    // Sets the key, the tier bit and the value of n's slot from n.
    static void Fill(Slot& slot, const Node* n) {
      slot.key = n->key;
      slot.hash = static_cast<uint32_t>(n->hash) & ~kInL1;
      slot.word = 0;
      if (n->value.index() == 1) {
        slot.hash |= kInL1;
        slot.word = ValueWord(std::get<1>(n->value).Read());
      }
    }
    [[gnu::noinline]] void Grow() {  // rare: kept out of Reserve's callers
      std::vector<Slot> old(slots_.size() * 2);  // may throw: before any change
      old.swap(slots_);
      for (const Slot& s : old)
        if (s.node) Place(s);
    }
    std::vector<Slot> slots_;
    size_t count_ = 0;
  };

  // A running load of one key (see get_or_load). Every path of its owner
  // ends in Publish, which wakes the waiters.
  struct Flight {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;  // guarded by mu
    // Set by Publish. A finished flight still in the shard's `flights` was
    // left there by an owner that failed before taking it out (K's hash or
    // equality, or the clock, threw): the next load of the key replaces it.
    std::atomic<bool> finished{false};
    bool invalidated = false;  // guarded by the shard mutex
    std::thread::id owner;
    // Written by the owner before done is set, read by waiters after.
    std::optional<Result<V>> result;
    std::exception_ptr error;
    Result<V> Wait();
    // Hands the waiters a copy of *r, or `e` (also if the copy throws).
    void Publish(const Result<V>* r, std::exception_ptr e);
  };

  // Entries of a read buffer: a node pointer tagged in its low bits (nodes
  // are at least 8-byte aligned), or a bare tag.
  static constexpr uintptr_t kHitL1 = 0;   // node | kHitL1: found in L1
  static constexpr uintptr_t kHitL2 = 1;   // node | kHitL2: found in L2, decoded
  static constexpr uintptr_t kBadMiss = 2; // node | kBadMiss: expired or undecodable, a miss
  static constexpr uintptr_t kMissTag = 3; // alone: a miss; node | 3: as kBadMiss, not counted
  static constexpr uint32_t kReadBuffer = 64;
  // Promotions and removals found by drains that do not exclude readers wait
  // in Shard::pending until this many are queued or the shard is next held
  // exclusively, so a read-mostly shard rarely stops its readers.
  static constexpr size_t kPendingBatch = 32;
  // An exclusive holder replays, before stopping readers, the stripes with at
  // least this many claims; fewer records replay quickly enough while
  // readers wait, and a second pass would cost more than it saves.
  static constexpr uint64_t kPreDrainClaims = 16;

  // One reader stripe of a shard, used by the threads whose slot maps to it.
  // `word` counts the readers inside the shard (bits 0-30), holds the writer
  // bit (31, set while a thread holds the shard exclusively) and counts the
  // buffer slots claimed since the last drain (bits 32-63). Entering the
  // shard, checking for a writer and claiming a slot is one atomic add on a
  // line no other stripe touches; a writer sets its bit in every stripe.
  static constexpr uint64_t kWriterBit = uint64_t{1} << 31;
  static constexpr uint64_t kReaderMask = kWriterBit - 1;
  struct alignas(64) Stripe {
    std::atomic<uint64_t> word{0};
    // Outcomes of the claims since the last drain other than L1 hits: L2
    // hits, counted misses, and claims that are not counted lookups (misses
    // a caller counts itself, in-place puts). A drain adds them to the
    // statistics and counts the rest of the claims it took as L1 hits, so
    // the commonest outcome costs no atomic of its own. Exact whenever the
    // shard is held exclusively (every claim taken then belongs to a lookup
    // that has finished and counted); a drain that lets readers on may see
    // a claim before its count, which the next drain makes up.
    std::atomic<uint64_t> l2_hit_claims{0}, miss_claims{0}, uncounted_claims{0};
    uint64_t drain_claims = 0;     // claims seen on entry; exclusive holder only
    // Slots below this may hold records written late, after a drain that let
    // readers on had read them: the most claims such a drain took since the
    // last exclusive one (whose claimants may still be writing). Mutex
    // holders only.
    uint64_t dirty = 0;
    // Written by claimants, read and cleared by drainers. A drain that does
    // not exclude readers may miss a record written late; that record is
    // replayed by a later drain or overwritten (lossy, like a full buffer).
    std::atomic<uintptr_t> buf[kReadBuffer] = {};
  };

  struct alignas(64) Shard {
    // Read by every lookup, changed only while the shard is held exclusively.
    Index index;  // indexes the nodes, which live in `nodes`
    uint64_t l1_cap = 0, l2_cap = 0;  // current capacities (see SplitAfterMove)
    std::unique_ptr<Stripe[]> stripes;
    // Advanced by drains (AdvanceEpoch); an L1 hit on a node already
    // recorded in the current epoch is not recorded again.
    std::atomic<uint32_t> epoch{1};
    // Everything below is used only under `mu`, on lines lookups do not read.
    alignas(64) std::mutex mu;  // serializes drains and exclusive holders
    std::unordered_map<K, std::shared_ptr<Flight>, Hash, KeyEq> flights;
    std::unique_ptr<CachePolicy> policy;
    Slab<Node> nodes;  // every node of the shard
    std::vector<Node*> pending;  // nodes to promote or drop (see kPendingBatch)
    uint64_t epoch_start = 0;  // policy->touches() when the epoch began
    uint64_t epoch_hand = 0;   // policy->hand_steps() when the epoch began
    // A value this heavy in L1 can only go to L2 (PreEncode): fixed at
    // construction, so read without `mu`.
    uint64_t encode_from = 0;
    // Adaptive split: the configured capacities, L2's capacity to shrink to
    // (as promotions empty it), and the weights of recent tier moves.
    uint64_t l1_base = 0, l2_base = 0, l2_goal = 0;
    bool l1_heavy = false;
    uint64_t moved_l1 = 0, moved_l2 = 0;
    uint32_t moves = 0;
    uint64_t misses = 0, loads = 0, load_errors = 0, rejections = 0;
  };

  // Values displaced under a shard lock, destroyed after it is released.
  struct Graveyard {
    std::vector<V> values;
    // Does not throw: without memory (or if V's move throws) the value
    // stays where it is and is destroyed there, under the lock.
    void Bury(V&& v) noexcept {
      if constexpr (!std::is_trivially_destructible_v<V>) {
        try {
          values.push_back(std::move(v));
        } catch (...) {
        }
      }
    }
    // Takes n's decoded value, if it has one.
    void BuryDecoded(Node* n) noexcept {
      if constexpr (!kInPlace) {
        if (n->value.index() == 1) Bury(std::move(std::get<1>(n->value)));
      }
    }
  };

  // n's value, n in L1: from its index slot with kInlineSlot, else as
  // DecodedValue. REQUIRES: s held exclusively.
  decltype(auto) L1Value(Shard& s, const Node* n) const {
    if constexpr (kInlineSlot) {
      return s.index.SlotValue(n);
    } else {
      return DecodedValue(n);
    }
  }
  // n's decoded value: a consistent copy when kept in place, else a
  // reference to it. REQUIRES: n is in L1.
  static decltype(auto) DecodedValue(const Node* n) {
    if constexpr (kInPlace) {
      return std::get<1>(n->value).Read();
    } else {
      return std::get<1>(n->value);
    }
  }

  // Locks a shard's mutex. Holders are brief (a write or a drain): spin a
  // little before the mutex puts this thread to sleep, which costs far more
  // than the wait.
  static void LockShard(Shard& s) {
    for (int spins = 0; !s.mu.try_lock(); spins++) {
      if (spins == 256) {
        s.mu.lock();
        return;
      }
      Pause();
    }
  }

  // Holds a shard exclusively (its mutex, then no readers inside) and first
  // replays the read buffers into the policy: most records before readers
  // are stopped (while they go on, as TryDrain does), the rest after, so
  // readers wait only for the holder's own work. Declare the Graveyard
  // before it. The constructor does not throw once it holds the mutex (the
  // drains are noexcept), so the destructor always releases what it took.
  class Exclusive {
   public:
    // A writer about to insert the key with mixed hash `*insert_hash` also
    // warms what the insertion will read, before readers are stopped.
    Exclusive(TieredCacheCore& c, Shard& s, Graveyard* g, const uint64_t* insert_hash = nullptr)
        : c_(c), s_(s) {
      LockShard(s);
      // Lookups have been busy in this shard: replay their records now, and
      // load what an insertion reads, while they go on. (Alone in the
      // shard, either is a second pass for nothing.)
      if (c.DrainBuffers(s, false, kPreDrainClaims) && insert_hash) {
        s.index.PrefetchHome(*insert_hash);
        s.policy->WarmForInsert(*insert_hash);
      }
      c.Enter(s);
      c.Drain(s, g);
    }
    ~Exclusive() {
      c_.Leave(s_);
      s_.mu.unlock();
    }
    Exclusive(const Exclusive&) = delete;
    Exclusive& operator=(const Exclusive&) = delete;

   private:
    TieredCacheCore& c_;
    Shard& s_;
  };

  static uint64_t Mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
  }
  Shard& ShardFor(uint64_t h) { return shards_[(h >> 56) & (nshards_ - 1)]; }
  Stripe& StripeOf(Shard& s) const {
    return s.stripes[ThreadSlot() & (nstripes_ - 1)];
  }
  int64_t Now() const;
  bool ttl_used() const { return ttl_used_.load(std::memory_order_relaxed); }
  void NoteTtl(std::chrono::nanoseconds ttl);
  uint64_t WeighDecoded(const K& key, const V& v) const;
  uint64_t WeighEncoded(const K& key, std::string_view b) const;
  // A value's L2 form and weight, made by a write before its exclusive
  // hold when the value can only go to L2 (PreEncode), so that the codec,
  // the weigher and the allocation run without the shard held; else by
  // Store, under the hold, if the value turns out not to fit L1.
  struct Encoded {
    bool ready = false;
    uint64_t charge = 0;
    CompactBytes bytes;
  };
  void Encode(const K& key, const V& value, Encoded* out) const;
  // Encode, if no L1 capacity the shard can have holds weight w1 (see
  // Shard::encode_from; no lock needed).
  void PreEncode(const Shard& s, const K& key, const V& value, uint64_t w1, Encoded* out) const {
    if (w1 >= s.encode_from) Encode(key, value, out);
  }

  // The shared-read hit path: no exclusive lock; the outcome goes to the
  // stripe's read buffer. With count_miss false a miss is left uncounted
  // (the caller goes on to an exclusive lookup that counts it).
  bool ReadLookup(Shard& s, const K& key, uint64_t h, bool count_miss, std::optional<V>* out);
  // ReadLookup's rare outcomes (n expired, or in L2), out of line so that
  // the common ones (L1 hit, miss) stay small.
  bool ReadLookupRare(Shard& s, Stripe& st, Node* n, int64_t now, uint32_t claim, bool count_miss,
                      std::optional<V>* out);
  // Drains the shard's read buffers if no other thread holds its mutex; else
  // leaves them. Readers go on meanwhile: the replay only touches the
  // policy's fields, which lookups do not read. Holds the shard exclusively
  // only once kPendingBatch promotions or removals are queued.
  void TryDrain(Shard& s) noexcept;
  // Leaves a shard whose lookup is ending in an exception (from K's
  // equality, V's copy or the codec): counted as neither hit nor miss.
  void LeaveThrowing(Shard& s, Stripe& st, uint32_t claim) noexcept;
  // Repeated accesses to an L1 entry within one epoch of its shard are one
  // correlated reference: the first is replayed into the policy, the others
  // are counted but not replayed. This keeps a hot entry's accesses off the
  // policy (most of its cost) and keeps a burst from inflating the entry's
  // frequency. True for the first access in the current epoch, which marks
  // the slot; two threads may both see true.
  static bool FirstInEpoch(Shard& s, typename Index::Slot* slot) {
    std::atomic_ref<uint32_t> seen(slot->seen);
    uint32_t epoch = s.epoch.load(std::memory_order_relaxed);
    if (seen.load(std::memory_order_relaxed) == epoch) return false;
    seen.store(epoch, std::memory_order_relaxed);
    return true;
  }
  // Starts a new epoch of s (see FirstInEpoch) once enough policy updates
  // happened in this one. REQUIRES: s.mu held.
  void AdvanceEpoch(Shard& s);
  // Moves n (its value already converted) to `tier` with its new weight,
  // and records the move for the adaptive split. REQUIRES: s held
  // exclusively.
  void MoveToTier(Shard& s, Node* n, Tier tier, uint64_t charge);
  // Records that an entry weighing w1 in L1 and w2 in L2 moved between the
  // tiers and, with adaptive_split, picks the shard's split from the recent
  // moves. REQUIRES: s held exclusively.
  void SplitAfterMove(Shard& s, uint64_t w1, uint64_t w2);
  // Enters a shard as a reader through the thread's stripe, waiting while a
  // writer holds it. `inc` is kEnterClaim (also claims a read-buffer slot,
  // returned; the claim is counted as an L1 hit unless the caller counts
  // another outcome) or kEnterOnly (returns 0).
  static constexpr uint64_t kClaim = uint64_t{1} << 32;
  static constexpr uint64_t kEnterClaim = kClaim | 1;
  static constexpr uint64_t kEnterOnly = 1;
  uint32_t EnterShared(Stripe& st, uint64_t inc) noexcept;
  // A writer was in: back off and retry.
  uint32_t EnterSharedSlow(Stripe& st, uint64_t inc) noexcept;
  // Leaves a shard entered with EnterShared, which returned `claim`, and
  // drains its buffers if that claim filled the stripe's.
  void LeaveShared(Shard& s, Stripe& st, uint32_t claim) noexcept;
  void Enter(Shard& s) noexcept;  // REQUIRES: s.mu held; waits until no reader is inside
  void Leave(Shard& s) noexcept;  // REQUIRES: entered; lets readers in again
  // Replays the read buffers into the policy and queues promotions and
  // removals in s.pending. REQUIRES: s.mu held; `exclusive`: also entered
  // (no reader inside), so every record is seen and the buffers are cleared.
  // Without `exclusive`, takes only stripes with at least `min_claims`
  // claims; returns whether it took any.
  bool DrainBuffers(Shard& s, bool exclusive, uint64_t min_claims = 1) noexcept;

  // All below REQUIRE the shard held exclusively.
  //
  // What they do when user code or an allocation throws: the moves the
  // cache makes on its own (demotions, promotions at drains and lookups)
  // catch the exception and evict the entry they were moving, so the
  // maintenance functions (noexcept) always leave the shard consistent and
  // never fail the operation that triggered them. Lookup and Store run user
  // code for their caller's own key and let its exceptions through, after
  // everything they changed is consistent again (see each).
  void Drain(Shard& s, Graveyard* g) noexcept;  // DrainBuffers, then the pending queue
  // Throws what K's equality, the codec's decode or V's copy throws; an
  // entry whose decode threw is evicted first.
  bool Lookup(Shard& s, const K& key, uint64_t h, int64_t now, std::optional<V>* out,
              Graveyard* g);
  // Caches `value` (L1 weight w1; `enc` its L2 form if ready). If anything
  // throws (the codec or a weigher, V's move, K's copy or equality, an
  // allocation) the shard is consistent and the key is no longer cached
  // (except when K's equality threw first: then nothing changed).
  Status Store(Shard& s, const K& key, uint64_t h, V&& value, uint64_t w1, Encoded* enc,
               std::chrono::nanoseconds ttl, int64_t now, Graveyard* g);
  void Maintain(Shard& s, int64_t now, Graveyard* g) noexcept;
  void Drop(Shard& s, Node* n, Graveyard* g) noexcept;  // unlinks and erases
  void Evict(Shard& s, PolicyNode* n, Graveyard* g) noexcept;
  void Expire(Shard& s, PolicyNode* n, Graveyard* g) noexcept;
  void Demote(Shard& s, Node* n, Graveyard* g) noexcept;  // evicts n if encoding throws
  // Moves n from L2 to L1 with its decoded value, if L1 can hold it; true if
  // it moved. Evicts n instead if the weigher, V's move or an allocation
  // throws.
  bool Promote(Shard& s, Node* n, V&& value, Graveyard* g) noexcept;
  // The codec's decode of b, or nothing if it fails or throws.
  std::optional<V> DecodeForMove(std::string_view b) const noexcept;
  void Invalidate(Shard& s, const K& key);
  // A put of a key whose value is in L1, with the same weight and no TTL in
  // use: overwrites the value in place, entered like a lookup (no lock;
  // lookups and other such puts go on), and records the write as an access
  // in the read buffer. False (nothing changed) when that does not apply.
  bool PutInPlace(Shard& s, const K& key, uint64_t h, const V& value, uint64_t w1);
  // Calls f(shard, graveyard) for each shard in turn, held exclusively.
  template <typename F>
  void ForEachShardHeld(F f);
  // Removes key from s (and its running load from s.flights); erase.
  bool DropKey(Shard& s, const K& key, uint64_t h);
  // A load owner's work after its loader returned `value` (null: an error,
  // or the loader threw): takes `flight` out of s.flights and caches the
  // value. Throws what the weighers, the codec, V's copy, K's hash or
  // equality, the clock or an allocation throw; the value is then not
  // cached and, unless K's hash or equality or the clock threw, the flight
  // is out of s.flights.
  void FinishLoad(Shard& s, const K& key, uint64_t h, Flight& flight, const V* value,
                  std::chrono::nanoseconds ttl);

  CacheOptions options_;
  Codec codec_;
  Weighers weighers_;
  Hash hasher_;
  KeyEq eq_;
  bool l2_enabled_;
  uint32_t nshards_;
  uint32_t nstripes_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<bool> ttl_used_{false};
};

}  // namespace evstore::cache_internal

#include "evstore/detail/tiered_cache_core_impl.hpp"

#endif  // EVSTORE_DETAIL_TIERED_CACHE_CORE_HPP_
