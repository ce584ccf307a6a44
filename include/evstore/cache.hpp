// evstore::TieredCache<K, V>: a concurrent, adaptive, two-tier cache.
//
// L1 holds the most recently used entries as decoded V objects; L2 holds
// more entries in a compact serialized form produced by a user codec. A hit in
// L2 decodes the entry and promotes it to L1; L1's least recently used entries
// are demoted (encoded) to L2 instead of being dropped. Each tier has a
// capacity in weigher units (bytes, or 1 per entry) and an optional TTL. Which
// entries stay in the cache at all is decided by one adaptive W-TinyLFU
// policy over both tiers: a frequency sketch admits entries into the main
// space, so one-off scans cannot flush the hot set, and the size of the
// recency window is tuned online, so recency-heavy workloads are served too.
// Every operation is O(1) amortised. See docs/cache.md.
//
// Thread safety: every method may be called concurrently from any number of
// threads. The cache is split into shards, each with its own policy. A
// lookup takes no exclusive lock: it enters its key's shard as a reader
// through a per-thread stripe, copies the value out and records the access in
// the stripe's bounded read buffer; the policy catches up when a buffer fills
// (without stopping the shard's readers) or the shard is written (writes hold
// the shard exclusively, except a put that overwrites a small trivially
// copyable value in L1 in place: it enters like a lookup and takes turns with
// other writers of the key on a per-node sequence counter).
//
// Callbacks: the loader passed to get_or_load runs with no cache lock held
// and may use this cache freely, except get_or_load of the key it is loading
// (that returns Busy instead of waiting for itself). The weighers and the
// codec's encode of a value being written run before the write holds its
// shard where they can (always, for a value that can only go to L2); the
// codec also runs while a shard is held (demotions, promotions) and decode
// also in concurrent readers, so it must be safe to call from several
// threads at once, as must V's copy constructor. They, K's hash and
// equality, and K's and V's copy and move constructors must be quick and
// must not call into this cache; destructors must not throw.
//
// Exceptions: user code above may throw, and so may allocation
// (std::bad_alloc). No exception leaves a lock held, a reader or waiter
// blocked, or the cache inconsistent: afterwards every method works as
// documented. What a method does then:
// - An exception thrown for the caller's own key (its hash, equality or
//   copy, its value's copy or weight, the codec on its value, a loader)
//   propagates to the caller, as stated per method below.
// - An exception thrown while the cache moves another entry on its own (an
//   L1 victim's encoding or L2 weight at a demotion, an L2 hit's decoding or
//   L1 weight at a promotion) is caught and that entry is evicted (counted
//   in `evictions`): the operation that made room or replayed the hits goes
//   on. The same holds for a decode that throws at a lookup: the lookup
//   throws, and the entry is evicted then or at its shard's next drain.
// - A lookup that throws is counted as neither hit nor miss.
#ifndef EVSTORE_CACHE_HPP_
#define EVSTORE_CACHE_HPP_

#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "evstore/cache_policy.hpp"
#include "evstore/status.hpp"

namespace evstore {

// Capacity and TTL of one tier.
struct CacheTierOptions {
  // Weight the tier may hold, in weigher units. Default 0: the tier is
  // disabled (with both tiers disabled nothing is cached).
  uint64_t capacity = 0;
  // Default 0 (no TTL): otherwise an entry found in this tier more than `ttl`
  // after its last write (put or load) is expired, i.e. never returned.
  std::chrono::nanoseconds ttl{0};
};

struct CacheOptions {
  // --- behaviour ---
  CacheTierOptions l1;  // decoded tier
  CacheTierOptions l2;  // encoded tier; needs a codec
  // Monotonic clock in nanoseconds used for TTLs. Default empty:
  // std::chrono::steady_clock. Tests inject a fake clock here.
  std::function<int64_t()> clock;

  // --- performance ---
  // Number of shards, rounded down to a power of two (max 256). Default 0:
  // automatic, min(64, total capacity / 4096), at least 1, so that small
  // caches keep one precise policy. Each shard gets an equal share of every
  // tier's capacity; an entry heavier than its shard's share of a tier is not
  // kept in that tier.
  uint32_t shards = 0;
  // Default false: each tier keeps its capacity. If true (and both tiers are
  // on), the cache moves capacity between the tiers, their sum fixed, by how
  // much lighter entries are in L2 than in L1, measured on the entries it
  // moves between them. While encoded entries weigh more than 7/8 of their
  // decoded weight, L2 would hold barely more entries than L1 in the same
  // budget and only add a decode to each of its hits, so L1 takes 15/16 of
  // the capacity (unit weights always do this); once they weigh less than
  // 3/4, the tiers go back to the capacities above. Decided per shard every
  // 64 moves; stats() reports each tier's current capacity.
  bool adaptive_split = false;

  // Preset: `total` weigher units split between the tiers by the cache: an
  // eighth for L1 (at least 1 unit) and the rest for L2, adaptive_split on,
  // no TTL.
  static CacheOptions WithTotalCapacity(uint64_t total) {
    CacheOptions o;
    o.l1.capacity = total >= 2 ? std::max<uint64_t>(1, total / 8) : total;
    o.l2.capacity = total - o.l1.capacity;
    o.adaptive_split = true;
    return o;
  }
};

// Converts values to and from L2's serialized form. encode must produce bytes
// that decode turns back into an equal value; decode returns an error for
// bytes it cannot read (the entry is then dropped and the lookup misses).
template <typename V>
struct CacheCodec {
  std::function<std::string(const V&)> encode;
  std::function<Result<V>(std::string_view)> decode;
  bool valid() const { return encode && decode; }
};

// A codec for trivially copyable values (their object bytes).
template <typename V>
CacheCodec<V> TrivialCacheCodec() {
  static_assert(std::is_trivially_copyable_v<V>, "TrivialCacheCodec needs a trivially copyable V");
  CacheCodec<V> c;
  c.encode = [](const V& v) { return std::string(reinterpret_cast<const char*>(&v), sizeof(V)); };
  c.decode = [](std::string_view b) -> Result<V> {
    if (b.size() != sizeof(V)) return Status::Corruption("cache entry has the wrong size");
    V v;
    std::memcpy(&v, b.data(), sizeof(V));
    return v;
  };
  return c;
}

// Weight of an entry in each tier. An empty function weighs every entry 1
// (capacity then counts entries); a weight of 0 is counted as 1.
template <typename K, typename V>
struct CacheWeighers {
  std::function<uint64_t(const K&, const V&)> decoded;               // L1
  std::function<uint64_t(const K&, std::string_view)> encoded;       // L2
};

namespace cache_internal {

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

// An L2 entry's encoded bytes in 16 bytes (std::string takes 32): up to 15
// bytes inline, longer ones in one heap block of exactly their size. The
// last byte holds the inline length, or kHeap with the block's address in
// the first eight bytes and its size in the next seven. Move-only.
class CompactBytes {
 public:
  CompactBytes() { raw_[kTag] = 0; }
  explicit CompactBytes(std::string_view b) {
    if (b.size() <= kTag) {
      if (!b.empty()) std::memcpy(raw_, b.data(), b.size());
      raw_[kTag] = static_cast<unsigned char>(b.size());
      return;
    }
    char* p = static_cast<char*>(::operator new(b.size()));
    std::memcpy(p, b.data(), b.size());
    std::memcpy(raw_, &p, sizeof p);
    for (size_t i = 0; i < kTag - sizeof p; i++) raw_[sizeof p + i] = static_cast<unsigned char>(b.size() >> (8 * i));
    raw_[kTag] = kHeap;
  }
  CompactBytes(CompactBytes&& o) noexcept {
    std::memcpy(raw_, o.raw_, sizeof raw_);
    o.raw_[kTag] = 0;
  }
  CompactBytes& operator=(CompactBytes&& o) noexcept {
    if (this != &o) {
      Free();
      std::memcpy(raw_, o.raw_, sizeof raw_);
      o.raw_[kTag] = 0;
    }
    return *this;
  }
  CompactBytes(const CompactBytes&) = delete;
  CompactBytes& operator=(const CompactBytes&) = delete;
  ~CompactBytes() { Free(); }

  std::string_view view() const {
    if (raw_[kTag] != kHeap) return {reinterpret_cast<const char*>(raw_), raw_[kTag]};
    size_t n = 0;
    for (size_t i = kTag - sizeof(char*); i-- > 0;) n = (n << 8) | raw_[sizeof(char*) + i];
    return {heap_data(), n};
  }

 private:
  static constexpr size_t kTag = 15;
  static constexpr unsigned char kHeap = 0xFF;
  char* heap_data() const {
    char* p;
    std::memcpy(&p, raw_, sizeof p);
    return p;
  }
  void Free() {
    if (raw_[kTag] == kHeap) ::operator delete(heap_data());
    raw_[kTag] = 0;
  }
  alignas(8) unsigned char raw_[16];
};
static_assert(sizeof(CompactBytes) == 16);

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

// Defined by tests that check a cache's internal invariants.
struct TestPeer;

}  // namespace cache_internal

template <typename K, typename V, typename Hash = std::hash<K>, typename KeyEq = std::equal_to<K>>
class TieredCache {
 public:
  using Codec = CacheCodec<V>;
  using Weighers = CacheWeighers<K, V>;

  // REQUIRES: K and V are copyable; V is move-assignable. Without a valid
  // codec L2 is disabled whatever options.l2.capacity says.
  explicit TieredCache(CacheOptions options, Codec codec = Codec(), Weighers weighers = Weighers());
  TieredCache(const TieredCache&) = delete;
  TieredCache& operator=(const TieredCache&) = delete;
  // REQUIRES: no other thread is using the cache.
  ~TieredCache();

  // A copy of the value cached for `key`, or nullopt if there is none or it
  // has expired. The policy sees every hit when the shard's read buffers are
  // replayed: by the lookup that fills a buffer (under the shard mutex, which
  // it skips if the mutex is busy, without stopping other lookups), by the
  // next write to the shard, or by stats() and cleanup(). An L2 hit decodes
  // the value; its promotion to L1 follows at the next exclusive hold of the
  // shard: a write, stats(), cleanup(), or a replay that has queued 32
  // promotions or removals (only then does a lookup stop the shard's other
  // lookups). Throws what K's hash or equality, V's copy or move, the clock
  // or (for an L2 entry) the codec's decode throws; the entry stays (after a
  // throwing decode: until evicted, as stated above).
  std::optional<V> get(const K& key);

  // Caches `value` for `key`, replacing any previous value, with an optional
  // per-entry TTL (0 = none; the tier TTL still applies, whichever is
  // shorter). A value goes to L1 if it fits, else encoded to L2. Afterwards
  // get(key) returns `value` (until evicted or expired), and a get_or_load of
  // `key` that was already running when put was called will not cache its
  // possibly older result (nor hand it to get_or_load calls made after put).
  // Returns InvalidArgument if the value is heavier than the shard's share of
  // both tiers; the key is then no longer cached. Throws what a weigher, the
  // codec, the clock, K's hash, equality or copy, V's move or an allocation
  // throws; then, too, the key is no longer cached (unless K's hash or
  // equality threw: then the old value may stay) and no running load of it
  // will cache its result.
  Status put(const K& key, V value, std::chrono::nanoseconds ttl = std::chrono::nanoseconds(0));

  // Removes `key`; true if it was cached. A get_or_load of `key` already
  // running will not cache its result, and later calls start a new load.
  // Throws only what K's hash or equality throws, changing nothing.
  bool erase(const K& key);

  // Removes every entry (statistics are kept). Loads already running will not
  // cache their results. Does not throw.
  void clear();

  // The cached value for `key`; on a miss calls `loader()` (a callable
  // returning Result<V>) and caches a successful result with `ttl`.
  // Concurrent misses on one key run the loader once: the other callers wait
  // and receive a copy of the same result. An error is returned to every
  // waiter and is not cached; if the loader throws, every waiter receives the
  // exception. If caching a loaded value throws (a weigher, the codec, V's
  // copy, an allocation, the clock), that exception likewise reaches the
  // caller and every waiter and nothing is cached; a waiter whose copy of
  // the result throws gets that exception. In every case all waiters return,
  // and the next call for the key runs a new load. Lookups throw as for get.
  // Returns Busy if called from inside the loader of the same key.
  template <typename Loader>
  Result<V> get_or_load(const K& key, Loader&& loader,
                        std::chrono::nanoseconds ttl = std::chrono::nanoseconds(0));

  // Removes every expired entry now. Without it, expired entries are removed
  // when looked up, when evicted, or during later writes up to ~1.07 s after
  // their deadline; either way an expired entry is never returned. Throws
  // only what the clock throws.
  void cleanup();

  // Per-tier statistics summed over the shards (a consistent snapshot of each
  // shard, not of the whole cache). Replays buffered lookups first, so every
  // lookup that returned before the call is counted. Does not throw.
  CacheStats stats() const;
  // Zeroes the event counters; entries and bytes keep describing the
  // contents. Does not throw.
  void reset_stats();

  uint32_t shard_count() const { return nshards_; }

 private:
  friend struct cache_internal::TestPeer;

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
        cache_internal::CpuRelax(spins);
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
        cache_internal::CpuRelax(spins);
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
    std::variant<std::monostate, Decoded, cache_internal::CompactBytes> value;  // index 1 in L1, 2 in L2
  };
  // Cache-line aligned, so that for small keys and values what a lookup
  // reads (key, value, deadline) is one line that drains do not write; with
  // 8-byte keys and values a node is 128 bytes.
  struct alignas(64) Node : NodeData, cache_internal::PolicyNode {
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
      cache_internal::BackwardShiftErase(slots_, SlotOf(n), [](const Slot& s) { return !s.node; });
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
    std::atomic<uint64_t> lost_l2_hits{0}, lost_misses{0}, lost_other{0};
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
    std::unique_ptr<cache_internal::CachePolicy> policy;
    cache_internal::Slab<Node> nodes;  // every node of the shard
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
      cache_internal::Pause();
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
    Exclusive(TieredCache& c, Shard& s, Graveyard* g, const uint64_t* insert_hash = nullptr)
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
    TieredCache& c_;
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
    return s.stripes[cache_internal::ThreadSlot() & (nstripes_ - 1)];
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
    cache_internal::CompactBytes bytes;
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
  void MoveToTier(Shard& s, Node* n, cache_internal::Tier tier, uint64_t charge);
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
  void Evict(Shard& s, cache_internal::PolicyNode* n, Graveyard* g) noexcept;
  void Expire(Shard& s, cache_internal::PolicyNode* n, Graveyard* g) noexcept;
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

}  // namespace evstore

#include "evstore/cache_impl.hpp"

#endif  // EVSTORE_CACHE_HPP_
