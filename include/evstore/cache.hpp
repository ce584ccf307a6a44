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
// Every operation is O(1) amortised. See docs/cache.md. This header is the
// contract; the implementation is in evstore/detail/, which is not API.
//
// Thread safety: every method may be called concurrently from any number of
// threads. The cache is split into shards (CacheOptions::shards). Lookups
// take no exclusive lock and do not stop each other; a write holds its key's
// shard exclusively for O(1) work (a put that overwrites a small trivially
// copyable value in L1 in place does not stop lookups either). Hits reach
// the policy in batches, as get() describes.
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

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "evstore/cache_stats.hpp"
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
template <typename K, typename V, typename Hash, typename KeyEq>
class TieredCacheCore;  // evstore/detail/tiered_cache_core.hpp
struct TestPeer;
}  // namespace cache_internal

template <typename K, typename V, typename Hash = std::hash<K>, typename KeyEq = std::equal_to<K>>
class TieredCache : private cache_internal::TieredCacheCore<K, V, Hash, KeyEq> {
  using Core = cache_internal::TieredCacheCore<K, V, Hash, KeyEq>;

 public:
  using Codec = CacheCodec<V>;
  using Weighers = CacheWeighers<K, V>;

  // REQUIRES: K and V are copyable; V is move-assignable. Without a valid
  // codec L2 is disabled whatever options.l2.capacity says.
  explicit TieredCache(CacheOptions options, Codec codec = Codec(), Weighers weighers = Weighers())
      : Core(std::move(options), std::move(codec), std::move(weighers)) {}
  TieredCache(const TieredCache&) = delete;
  TieredCache& operator=(const TieredCache&) = delete;
  // REQUIRES: no other thread is using the cache.
  ~TieredCache() = default;

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
  std::optional<V> get(const K& key) { return Core::get(key); }

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
  Status put(const K& key, V value, std::chrono::nanoseconds ttl = std::chrono::nanoseconds(0)) {
    return Core::put(key, std::move(value), ttl);
  }

  // Removes `key`; true if it was cached. A get_or_load of `key` already
  // running will not cache its result, and later calls start a new load.
  // Throws only what K's hash or equality throws, changing nothing.
  bool erase(const K& key) { return Core::erase(key); }

  // Removes every entry (statistics are kept). Loads already running will not
  // cache their results. Does not throw.
  void clear() { Core::clear(); }

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
                        std::chrono::nanoseconds ttl = std::chrono::nanoseconds(0)) {
    return Core::get_or_load(key, std::forward<Loader>(loader), ttl);
  }

  // Removes every expired entry now. Without it, expired entries are removed
  // when looked up, when evicted, or during later writes up to ~1.07 s after
  // their deadline; either way an expired entry is never returned. Throws
  // only what the clock throws.
  void cleanup() { Core::cleanup(); }

  // Per-tier statistics summed over the shards (a consistent snapshot of each
  // shard, not of the whole cache). Replays buffered lookups first, so every
  // lookup that returned before the call is counted. Does not throw.
  CacheStats stats() const { return Core::stats(); }
  // Zeroes the event counters; entries and bytes keep describing the
  // contents. Does not throw.
  void reset_stats() { Core::reset_stats(); }

  // The number of shards (CacheOptions::shards as resolved).
  uint32_t shard_count() const { return Core::shard_count(); }

 private:
  friend struct cache_internal::TestPeer;
};

}  // namespace evstore

// The implementation: not API (see the files).
#include "evstore/detail/tiered_cache_core.hpp"

#endif  // EVSTORE_CACHE_HPP_
