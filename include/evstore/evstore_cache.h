/* evstore_cache.h: evstore's tiered cache from C (the C side of
 * cache.hpp) over byte keys and values, and the statistics of a store's own
 * caches.
 *
 * Part of the C API: evstore.h includes this header, and this header
 * includes evstore.h, so either include gives the whole API. The
 * conventions numbered at the top of evstore.h (handles, buffers, status
 * codes, messages, NULL, ownership, threads, growth) hold here too; what
 * differs is stated below. */
#ifndef EVSTORE_EVSTORE_CACHE_H_
#define EVSTORE_EVSTORE_CACHE_H_

#include "evstore/evstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Cache: a standalone two-tier cache of byte strings ---- */

/* evstore's tiered cache (cache.hpp) over byte keys and values: L1 keeps the
 * hottest entries, L2 more of them in compact form; W-TinyLFU admission;
 * per-tier capacity in bytes (key + value length) and TTL; single-flight
 * loads. */
typedef struct evs_cache_options_t evs_cache_options_t;
typedef struct evs_cache_t evs_cache_t;

/* Options with both tiers disabled (capacity 0), no TTL, automatic shards.
 * NULL when out of memory. */
EVS_EXPORT evs_cache_options_t* evs_cache_options_create(void);
EVS_EXPORT void evs_cache_options_destroy(evs_cache_options_t* options);
/* Setters return EVS_OK or EVS_INVALID_ARGUMENT (NULL options, a tier other
 * than 1 or 2, a TTL over 2^63 ns). tier is 1 (L1) or 2 (L2); capacity in
 * bytes; ttl_ms 0 = none. */
EVS_EXPORT int evs_cache_options_set_capacity(evs_cache_options_t* options, int tier,
                                              uint64_t bytes, char** errmsg);
EVS_EXPORT int evs_cache_options_set_ttl_ms(evs_cache_options_t* options, int tier, uint64_t ttl_ms,
                                            char** errmsg);
/* Shards: 0 = automatic; otherwise rounded down to a power of two, at most
 * 256. */
EVS_EXPORT int evs_cache_options_set_shards(evs_cache_options_t* options, uint32_t shards,
                                            char** errmsg);
/* Adaptive split: 0 (default) keeps each tier's capacity; non-zero lets the
 * cache move capacity between the tiers, their sum fixed: L1 takes 15/16 of
 * it while L2's entries weigh about what L1's do (as with this API's
 * key + value weights), so L2 would hold no more entries and only add a copy
 * to its hits. evs_cache_capacity reports the current split. */
EVS_EXPORT int evs_cache_options_set_adaptive_split(evs_cache_options_t* options, int enabled,
                                                    char** errmsg);

/* A new cache in *cache. options: NULL for the defaults (nothing is cached:
 * puts succeed and keep nothing). options is copied. */
EVS_EXPORT int evs_cache_create(const evs_cache_options_t* options, evs_cache_t** cache,
                                char** errmsg);
/* REQUIRES: no other thread is using the cache. NULL is fine. */
EVS_EXPORT void evs_cache_destroy(evs_cache_t* cache);

/* Looks `key` up. EVS_OK: *value is a copy (free with evs_free; non-NULL
 * even when empty) and *value_len its length. EVS_NOT_FOUND: not cached or
 * expired; *value is NULL. */
EVS_EXPORT int evs_cache_get(evs_cache_t* cache, const void* key, size_t key_len, void** value,
                             size_t* value_len, char** errmsg);
/* Caches a copy of value for key, replacing any previous one, with an
 * optional per-entry TTL (0: none; the tier TTL still applies). Errors:
 * EVS_INVALID_ARGUMENT when the entry is heavier than a shard's share of
 * both tiers (the key is then no longer cached). */
EVS_EXPORT int evs_cache_put(evs_cache_t* cache, const void* key, size_t key_len,
                             const void* value, size_t value_len, uint64_t ttl_ms, char** errmsg);
/* Removes key: EVS_OK if it was cached, EVS_NOT_FOUND if not. */
EVS_EXPORT int evs_cache_erase(evs_cache_t* cache, const void* key, size_t key_len,
                               char** errmsg);
/* Removes every entry (statistics are kept). */
EVS_EXPORT int evs_cache_clear(evs_cache_t* cache, char** errmsg);
/* Removes expired entries now. */
EVS_EXPORT int evs_cache_cleanup(evs_cache_t* cache, char** errmsg);

/* Where a loader puts the value it loaded. */
typedef struct evs_cache_load_t evs_cache_load_t;
/* Sets the loaded value (copied; a later call replaces it). Without a call
 * the value is empty. Only valid inside the loader it was passed to. */
EVS_EXPORT int evs_cache_load_set_value(evs_cache_load_t* load, const void* value, size_t len,
                                        char** errmsg);

/* A loader: loads the value of key into `load` and returns EVS_OK, or
 * returns another EVS_* code for a failure (it is not cached and every
 * caller waiting for this key gets it). Every code this API defines,
 * EVS_NO_MEMORY included, reaches the callers as it is; other codes become
 * EVS_ABORTED. */
typedef int (*evs_cache_loader_fn)(void* user_data, const void* key, size_t key_len,
                                   evs_cache_load_t* load);

/* The cached value of key; on a miss calls loader(user_data, key, ...)
 * and caches a successful result with ttl_ms (0: none). Concurrent misses
 * on one key run the loader once; the other callers wait for its result.
 * Output as evs_cache_get. The loader runs on the calling thread with no
 * lock held and may call this API, including this cache, except
 * evs_cache_get_or_load of the same key (that returns EVS_BUSY instead of
 * waiting for itself). Errors: the loader's code, EVS_BUSY. */
EVS_EXPORT int evs_cache_get_or_load(evs_cache_t* cache, const void* key, size_t key_len,
                                     evs_cache_loader_fn loader, void* user_data, uint64_t ttl_ms,
                                     void** value, size_t* value_len, char** errmsg);

/* Statistics of one tier: counters since the last reset, and contents. */
typedef struct evs_cache_tier_stats_t {
  uint64_t hits;
  uint64_t misses;      /* lookups that reached this tier and missed */
  uint64_t evictions;   /* dropped for capacity while in this tier */
  uint64_t expirations; /* dropped for TTL while in this tier */
  uint64_t promotions;  /* L2 -> L1 */
  uint64_t demotions;   /* L1 -> L2 */
  uint64_t entries;     /* now in this tier */
  uint64_t bytes;       /* now in this tier */
} evs_cache_tier_stats_t;

typedef struct evs_cache_stats_t {
  evs_cache_tier_stats_t l1;
  evs_cache_tier_stats_t l2;
  uint64_t misses;      /* lookups found in neither tier */
  uint64_t loads;       /* loader calls */
  uint64_t load_errors; /* loader calls that failed */
  uint64_t rejections;  /* values not cached because too heavy */
} evs_cache_stats_t;

EVS_EXPORT int evs_cache_stats(const evs_cache_t* cache, evs_cache_stats_t* stats, char** errmsg);
/* Zeroes the counters; entries and bytes keep describing the contents. */
EVS_EXPORT int evs_cache_reset_stats(evs_cache_t* cache, char** errmsg);
/* The tiers' current capacities in bytes (the configured ones unless the
 * adaptive split moved them); either output pointer may be NULL. */
EVS_EXPORT int evs_cache_capacity(const evs_cache_t* cache, uint64_t* l1_bytes, uint64_t* l2_bytes,
                                  char** errmsg);

/* The statistics of a store's own caches: event records (*events) and stream
 * heads (*heads); either pointer may be NULL when not wanted. EVS_CLOSED after
 * close. */
EVS_EXPORT int evs_store_cache_stats(evs_store_t* store, evs_cache_stats_t* events,
                                     evs_cache_stats_t* heads, char** errmsg);
/* Zeroes the counters of the store's caches. */
EVS_EXPORT int evs_store_reset_cache_stats(evs_store_t* store, char** errmsg);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EVSTORE_EVSTORE_CACHE_H_ */
