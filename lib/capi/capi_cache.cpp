// C API: a standalone TieredCache over byte strings.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "capi/capi_internal.hpp"
#include "evstore/cache.hpp"

using evstore::CacheCodec;
using evstore::CacheOptions;
using evstore::CacheStats;
using evstore::CacheWeighers;
using evstore::Result;
using evstore::Status;
using evstore::capi::Fail;
using evstore::capi::FromStatus;
using evstore::capi::Guard;
using evstore::capi::View;

namespace {

using BytesCache = evstore::TieredCache<std::string, std::string>;

CacheCodec<std::string> IdentityCodec() {
  CacheCodec<std::string> c;
  c.encode = [](const std::string& v) { return v; };
  c.decode = [](std::string_view b) -> Result<std::string> { return std::string(b); };
  return c;
}

// Weight in both tiers: the bytes of key and value.
CacheWeighers<std::string, std::string> ByteWeighers() {
  CacheWeighers<std::string, std::string> w;
  w.decoded = [](const std::string& k, const std::string& v) { return uint64_t{k.size() + v.size()}; };
  w.encoded = [](const std::string& k, std::string_view v) { return uint64_t{k.size() + v.size()}; };
  return w;
}

constexpr uint64_t kMaxTtlMs = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 1000000;
constexpr const char* kBadTtl = "ttl_ms is too large (at most 2^63 ns)";
constexpr const char* kBadTier = "tier must be 1 (L1) or 2 (L2)";

std::chrono::nanoseconds TtlOf(uint64_t ttl_ms) {
  return std::chrono::milliseconds(static_cast<int64_t>(ttl_ms));
}

// Hands out a malloc'd copy of v (non-NULL even when empty).
int CopyOut(const std::string& v, void** value, size_t* value_len, char** errmsg) {
  void* p = std::malloc(v.size() ? v.size() : 1);
  if (!p) return Fail(errmsg, EVS_NO_MEMORY, "out of memory");
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  *value = p;
  *value_len = v.size();
  return EVS_OK;
}

}  // namespace

struct evs_cache_options_t {
  CacheOptions options;
};

struct evs_cache_t {
  explicit evs_cache_t(const CacheOptions& o) : cache(o, IdentityCodec(), ByteWeighers()) {}
  BytesCache cache;
};

struct evs_cache_load_t {
  std::string value;
};

extern "C" {

evs_cache_options_t* evs_cache_options_create(void) {
  return new (std::nothrow) evs_cache_options_t();
}

void evs_cache_options_destroy(evs_cache_options_t* options) { delete options; }

int evs_cache_options_set_capacity(evs_cache_options_t* options, int tier, uint64_t bytes,
                                   char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    if (tier != 1 && tier != 2) return Fail(errmsg, EVS_INVALID_ARGUMENT, kBadTier);
    (tier == 1 ? options->options.l1 : options->options.l2).capacity = bytes;
    return EVS_OK;
  });
}

int evs_cache_options_set_ttl_ms(evs_cache_options_t* options, int tier, uint64_t ttl_ms,
                                 char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    if (tier != 1 && tier != 2) return Fail(errmsg, EVS_INVALID_ARGUMENT, kBadTier);
    if (ttl_ms > kMaxTtlMs) return Fail(errmsg, EVS_INVALID_ARGUMENT, kBadTtl);
    (tier == 1 ? options->options.l1 : options->options.l2).ttl = TtlOf(ttl_ms);
    return EVS_OK;
  });
}

int evs_cache_options_set_shards(evs_cache_options_t* options, uint32_t shards, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.shards = shards;
    return EVS_OK;
  });
}

int evs_cache_options_set_adaptive_split(evs_cache_options_t* options, int enabled,
                                         char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.adaptive_split = enabled != 0;
    return EVS_OK;
  });
}

int evs_cache_create(const evs_cache_options_t* options, evs_cache_t** cache, char** errmsg) {
  return Guard(errmsg, [&] {
    if (cache) *cache = nullptr;
    EVS_CHECK_ARG(cache, "cache");
    *cache = new evs_cache_t(options ? options->options : CacheOptions());
    return EVS_OK;
  });
}

void evs_cache_destroy(evs_cache_t* cache) { delete cache; }

int evs_cache_get(evs_cache_t* cache, const void* key, size_t key_len, void** value,
                  size_t* value_len, char** errmsg) {
  return Guard(errmsg, [&] {
    if (value) *value = nullptr;
    if (value_len) *value_len = 0;
    EVS_CHECK_ARG(cache, "cache");
    EVS_CHECK_BUF(key, key_len, "key");
    EVS_CHECK_ARG(value, "value");
    EVS_CHECK_ARG(value_len, "value_len");
    auto v = cache->cache.get(std::string(View(key, key_len)));
    if (!v) return Fail(errmsg, EVS_NOT_FOUND, "NotFound: key is not cached");
    return CopyOut(*v, value, value_len, errmsg);
  });
}

int evs_cache_put(evs_cache_t* cache, const void* key, size_t key_len, const void* value,
                  size_t value_len, uint64_t ttl_ms, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(cache, "cache");
    EVS_CHECK_BUF(key, key_len, "key");
    EVS_CHECK_BUF(value, value_len, "value");
    if (ttl_ms > kMaxTtlMs) return Fail(errmsg, EVS_INVALID_ARGUMENT, kBadTtl);
    return FromStatus(cache->cache.put(std::string(View(key, key_len)),
                                       std::string(View(value, value_len)), TtlOf(ttl_ms)),
                      errmsg);
  });
}

int evs_cache_erase(evs_cache_t* cache, const void* key, size_t key_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(cache, "cache");
    EVS_CHECK_BUF(key, key_len, "key");
    if (!cache->cache.erase(std::string(View(key, key_len))))
      return Fail(errmsg, EVS_NOT_FOUND, "NotFound: key is not cached");
    return EVS_OK;
  });
}

int evs_cache_clear(evs_cache_t* cache, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(cache, "cache");
    cache->cache.clear();
    return EVS_OK;
  });
}

int evs_cache_cleanup(evs_cache_t* cache, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(cache, "cache");
    cache->cache.cleanup();
    return EVS_OK;
  });
}

int evs_cache_load_set_value(evs_cache_load_t* load, const void* value, size_t len,
                             char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(load, "load");
    EVS_CHECK_BUF(value, len, "value");
    load->value.assign(static_cast<const char*>(value), len);
    return EVS_OK;
  });
}

int evs_cache_get_or_load(evs_cache_t* cache, const void* key, size_t key_len,
                          evs_cache_loader_fn loader, void* user_data, uint64_t ttl_ms,
                          void** value, size_t* value_len, char** errmsg) {
  return Guard(errmsg, [&] {
    if (value) *value = nullptr;
    if (value_len) *value_len = 0;
    EVS_CHECK_ARG(cache, "cache");
    EVS_CHECK_BUF(key, key_len, "key");
    EVS_CHECK_ARG(loader, "loader");
    EVS_CHECK_ARG(value, "value");
    EVS_CHECK_ARG(value_len, "value_len");
    if (ttl_ms > kMaxTtlMs) return Fail(errmsg, EVS_INVALID_ARGUMENT, kBadTtl);
    std::string k(View(key, key_len));
    // The loader sees the caller's key bytes; the cache holds no lock while it runs.
    auto r = cache->cache.get_or_load(
        k,
        [&]() -> Result<std::string> {
          evs_cache_load_t load;
          int rc = loader(user_data, k.data(), k.size(), &load);
          if (rc == EVS_OK) return std::move(load.value);
          // A Status has no out-of-memory code. The cache hands a loader's
          // exception to every caller waiting on the load, and Guard turns
          // bad_alloc back into EVS_NO_MEMORY for each of them.
          if (rc == EVS_NO_MEMORY) throw std::bad_alloc();
          return evstore::capi::ToStatus(
              rc, std::string("cache loader failed: ") + evs_errstr(rc) + " (" + std::to_string(rc) + ")");
        },
        TtlOf(ttl_ms));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    return CopyOut(*r, value, value_len, errmsg);
  });
}

int evs_cache_stats(const evs_cache_t* cache, evs_cache_stats_t* stats, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(cache, "cache");
    EVS_CHECK_ARG(stats, "stats");
    evstore::capi::ToC(cache->cache.stats(), stats);
    return EVS_OK;
  });
}

int evs_cache_capacity(const evs_cache_t* cache, uint64_t* l1_bytes, uint64_t* l2_bytes,
                       char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(cache, "cache");
    CacheStats st = cache->cache.stats();
    if (l1_bytes) *l1_bytes = st.l1.capacity;
    if (l2_bytes) *l2_bytes = st.l2.capacity;
    return EVS_OK;
  });
}

int evs_cache_reset_stats(evs_cache_t* cache, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(cache, "cache");
    cache->cache.reset_stats();
    return EVS_OK;
  });
}

}  // extern "C"
