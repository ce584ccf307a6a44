// A C++ host of the cache linked against the shared library, the way an
// application links it. TieredCache is a header template, so every library
// symbol its inline code calls must be exported: a missing export fails to
// link here (the other suites link the static library and would not notice).
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <string>

#include "evstore/cache.hpp"

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "cache_export_test: FAILED: %s\n", what);
    failures++;
  }
}

}  // namespace

int main() {
  using evstore::CacheOptions;
  // Small tiers, so that puts demote from L1 (the L1 clock) and evict
  // (admission, ghosts, the sketch), and lookups promote from L2.
  CacheOptions o;
  o.l1.capacity = 8;
  o.l2.capacity = 56;
  o.shards = 1;
  evstore::TieredCache<uint64_t, uint64_t> c(o, evstore::TrivialCacheCodec<uint64_t>());
  Check(c.put(1001, 9, std::chrono::seconds(60)).ok(), "put with a TTL");
  Check(c.get(1001) == std::optional<uint64_t>(9), "a fresh TTL entry is returned");
  Check(c.erase(1001), "erase");
  Check(!c.get(1001).has_value(), "an erased entry is gone");
  for (uint64_t k = 0; k < 200; k++) Check(c.put(k, k * 3).ok(), "put");
  uint64_t hits = 0;
  for (uint64_t k = 0; k < 200; k++) {
    if (auto v = c.get(k)) {
      hits++;
      Check(*v == k * 3, "a hit returns the value put");
    }
  }
  Check(hits > 0 && hits <= 64, "the cache keeps at most its capacity");
  auto loaded = c.get_or_load(1000, [] { return evstore::Result<uint64_t>(uint64_t{7}); });
  Check(loaded.ok() && loaded.value() == 7, "get_or_load loads");
  c.cleanup();
  evstore::CacheStats s = c.stats();
  Check(s.l1.entries + s.l2.entries <= 64, "stats count what is kept");
  Check(s.l1.demotions > 0, "L1 demoted");
  c.clear();
  Check(!c.get(1000).has_value(), "clear empties the cache");
  if (failures == 0) std::printf("cache_export_test: OK\n");
  return failures == 0 ? 0 : 1;
}
