// evstore::CacheStats: the statistics of one TieredCache (cache.hpp), also
// reported for the store's own caches (Store::cache_stats in store.hpp).
//
// Thread safety: plain values, copied out of the cache.
#ifndef EVSTORE_CACHE_STATS_HPP_
#define EVSTORE_CACHE_STATS_HPP_

#include <cstdint>

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

}  // namespace evstore

#endif  // EVSTORE_CACHE_STATS_HPP_
