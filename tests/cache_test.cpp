#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <list>
#include <map>
#include <new>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "evstore/cache.hpp"

using evstore::CacheCodec;
using evstore::CacheOptions;
using evstore::CacheStats;
using evstore::CacheTierStats;
using evstore::CacheWeighers;
using evstore::Result;
using evstore::Status;
using evstore::TieredCache;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

using IntCache = TieredCache<uint64_t, uint64_t>;
using StrCache = TieredCache<uint64_t, std::string>;

// A clock the test moves by hand.
struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> t = std::make_shared<std::atomic<int64_t>>(1'000'000'000);
  std::function<int64_t()> fn() const {
    auto p = t;
    return [p] { return p->load(); };
  }
  void advance(nanoseconds d) { t->fetch_add(d.count()); }
};

CacheOptions Tiers(uint64_t l1, uint64_t l2) {
  CacheOptions o;
  o.l1.capacity = l1;
  o.l2.capacity = l2;
  o.shards = 1;
  return o;
}

CacheCodec<std::string> StringCodec() {
  CacheCodec<std::string> c;
  c.encode = [](const std::string& v) { return v; };
  c.decode = [](std::string_view b) -> Result<std::string> { return std::string(b); };
  return c;
}

// Weights are the value's length in both tiers.
CacheWeighers<uint64_t, std::string> LengthWeighers() {
  CacheWeighers<uint64_t, std::string> w;
  w.decoded = [](const uint64_t&, const std::string& v) { return v.size(); };
  w.encoded = [](const uint64_t&, std::string_view b) { return b.size(); };
  return w;
}

// A 64-byte value, the largest a put overwrites in place: every word is
// derived from (key, version), so a torn copy shows.
struct Wide {
  uint64_t key, ver, check[6];
};

uint64_t WideCheck(uint64_t k, uint64_t ver, uint64_t i) {
  return (k * 1000003 + ver) ^ (i * 0x9E3779B97F4A7C15ull);
}

Wide MakeWide(uint64_t k, uint64_t ver) {
  Wide w{k, ver, {}};
  for (uint64_t i = 0; i < 6; i++) w.check[i] = WideCheck(k, ver, i);
  return w;
}

bool Intact(const Wide& w) {
  for (uint64_t i = 0; i < 6; i++) {
    if (w.check[i] != WideCheck(w.key, w.ver, i)) return false;
  }
  return true;
}

// Two writers each overwrite their own half of `keys` keys `writes` times
// (a new version per put, recorded in `truth` first, then read back by the
// writer) while three readers look up random keys until the writers finish.
// write(k, ver) puts and checks the read-back; read(k, &ver) looks k up,
// checks the value and sets the version it holds, which must not be newer
// than the newest written. False if any check ever failed.
template <typename Write, typename Read>
bool OverwriteRace(uint64_t keys, int writes, std::vector<std::atomic<uint64_t>>& truth, Write write,
                   Read read) {
  std::atomic<bool> bad{false}, stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; w++) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < writes; i++) {
        uint64_t k = (static_cast<uint64_t>(i) * 2 + static_cast<uint64_t>(w)) % keys;
        uint64_t ver = truth[k].load() + 1;
        truth[k].store(ver);
        if (!write(k, ver)) bad = true;
      }
    });
  }
  for (int r = 0; r < 3; r++) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(static_cast<uint64_t>(r));
      while (!stop.load()) {
        uint64_t k = rng() % keys, ver = 0;
        if (!read(k, &ver) || ver > truth[k].load()) bad = true;
      }
    });
  }
  for (int w = 0; w < 2; w++) threads[static_cast<size_t>(w)].join();
  stop = true;
  for (size_t t = 2; t < threads.size(); t++) threads[t].join();
  return !bad.load();
}

// The statistics tests' cache: two shards, keys 0-39 cached with themselves
// as values, counters zeroed.
constexpr uint64_t kStatsCached = 40, kStatsKeys = 50;
std::unique_ptr<IntCache> StatsCache() {
  CacheOptions o = Tiers(64, 64);
  o.shards = 2;
  auto c = std::make_unique<IntCache>(o, evstore::TrivialCacheCodec<uint64_t>());
  for (uint64_t k = 0; k < kStatsCached; k++) REQUIRE(c->put(k, k).ok());
  c->reset_stats();
  return c;
}

// Thread t's n lookups of keys 0-49 in a StatsCache: 40 of every 50 hit
// (each must return its key), 10 miss. Returns how many answers were wrong.
int LookUpStatsKeys(IntCache& c, int t, int n) {
  int wrong = 0;
  for (int i = 0; i < n; i++) {
    uint64_t k = static_cast<uint64_t>(i * 7 + t) % kStatsKeys;
    std::optional<uint64_t> v = c.get(k);
    if (k < kStatsCached ? !v || *v != k : v.has_value()) wrong++;
  }
  return wrong;
}

// --- exception safety: throwing callbacks and values, failing allocations ---

// What the test callbacks throw when armed.
struct Injected : std::runtime_error {
  Injected() : std::runtime_error("injected by the test") {}
};

// Switches that make the callbacks of FaultyCodec and FaultyWeighers throw,
// for values (or their bytes) that start with '!' only, so that the rest of
// the cache keeps working while they are armed.
struct Faults {
  std::atomic<bool> encode{false}, decode{false}, weigh_decoded{false}, weigh_encoded{false};
  static bool Marked(std::string_view v) { return !v.empty() && v[0] == '!'; }
};

// StringCodec, throwing when armed.
CacheCodec<std::string> FaultyCodec(Faults& f) {
  CacheCodec<std::string> c;
  c.encode = [&f](const std::string& v) {
    if (f.encode && Faults::Marked(v)) throw Injected();
    return v;
  };
  c.decode = [&f](std::string_view b) -> Result<std::string> {
    if (f.decode && Faults::Marked(b)) throw Injected();
    return std::string(b);
  };
  return c;
}

// LengthWeighers, throwing when armed.
CacheWeighers<uint64_t, std::string> FaultyWeighers(Faults& f) {
  CacheWeighers<uint64_t, std::string> w;
  w.decoded = [&f](const uint64_t&, const std::string& v) -> uint64_t {
    if (f.weigh_decoded && Faults::Marked(v)) throw Injected();
    return v.size();
  };
  w.encoded = [&f](const uint64_t&, std::string_view b) -> uint64_t {
    if (f.weigh_encoded && Faults::Marked(b)) throw Injected();
    return b.size();
  };
  return w;
}

// A value whose copy constructor throws while g_fragile_armed is set and
// its text starts with '!'. Moves never throw.
std::atomic<bool> g_fragile_armed{false};
struct Fragile {
  std::string text;
  Fragile() = default;
  explicit Fragile(std::string t) : text(std::move(t)) {}
  Fragile(const Fragile& o) : text(o.text) {
    if (g_fragile_armed && Faults::Marked(text)) throw Injected();
  }
  Fragile(Fragile&&) noexcept = default;
  Fragile& operator=(const Fragile&) = default;
  Fragile& operator=(Fragile&&) noexcept = default;
  friend bool operator==(const Fragile& a, const Fragile& b) { return a.text == b.text; }
};
using FragileCache = TieredCache<uint64_t, Fragile>;
Fragile FragileOf(uint64_t k) { return Fragile(std::to_string(k)); }

CacheCodec<Fragile> FragileCodec() {
  CacheCodec<Fragile> c;
  c.encode = [](const Fragile& v) { return v.text; };
  c.decode = [](std::string_view b) -> Result<Fragile> { return Fragile(std::string(b)); };
  return c;
}

// Runs f on another thread and waits for it to return: a cache operation
// that never returns (a lock left held, a reader left counted inside its
// shard, a waiter never woken) fails the test instead of hanging it. The
// limit only bounds a hang; it measures nothing. The process must exit
// then: the stuck thread still uses the test's objects.
constexpr auto kHangLimit = std::chrono::seconds(120);
template <typename F>
void MustReturn(const char* what, F f) {
  auto done = std::async(std::launch::async, std::move(f));
  if (done.wait_for(kHangLimit) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not return within %lld s: something was left blocked\n",
                 what, static_cast<long long>(kHangLimit.count()));
    std::fflush(stderr);
    std::_Exit(EXIT_FAILURE);
  }
  done.get();  // rethrows what f threw
}

// Four threads at once put, look up, load and erase their own keys from
// `base` on (one shard: the one an exception was thrown in). Each result
// must be what the call promises: a lookup finds nothing or the value
// last put, a load returns the loaded value. Returns the wrong results.
template <typename Cache, typename Make>
int WrongResultsFromThreads(Cache& c, uint64_t base, Make make) {
  std::atomic<int> wrong{0};
  MustReturn("using the cache from four threads", [&] {
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < 4; t++) {
      threads.emplace_back([&, t] {
        for (uint64_t i = 0; i < 8; i++) {
          uint64_t k = base + t * 100 + i;
          if (!c.put(k, make(k)).ok()) wrong++;
          auto got = c.get(k);
          if (got && !(*got == make(k))) wrong++;
          using V = decltype(make(k));
          auto loaded = c.get_or_load(k + 50, [&] { return Result<V>(make(k + 50)); });
          if (!loaded.ok() || !(*loaded == make(k + 50))) wrong++;
          (void)c.erase(k);
          if (c.get(k)) wrong++;
        }
      });
    }
    for (auto& th : threads) th.join();
  });
  return wrong.load();
}

// Runs get_or_load(key) on `threads` threads at once with a loader that
// returns make() after a pause, so that the others wait for the first.
// Returns how many callers got Injected; every other outcome (a value, an
// error status, a hang) counts against it.
template <typename Cache, typename Make>
int LoadersThatGetInjected(Cache& c, uint64_t key, Make make, int threads) {
  using V = decltype(make());
  std::atomic<int> injected{0};
  MustReturn("get_or_load with waiters", [&] {
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) {
      ts.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        try {
          (void)c.get_or_load(key, [&]() -> Result<V> {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            return make();
          });
        } catch (const Injected&) {
          injected++;
        }
      });
    }
    go = true;
    for (auto& th : ts) th.join();
  });
  return injected.load();
}

}  // namespace

// Checks a cache's invariants from inside: every indexed node has the
// value of its tier and is found by its key; the policy's per-tier entries
// and weights and its queues' weight equal the nodes'; each tier is within
// its capacity; no drain work or finished load is left behind. Returns
// what is wrong ("" if nothing). REQUIRES: no other thread uses the cache.
struct evstore::cache_internal::TestPeer {
  template <typename C>
  static std::string Check(C& c) {
    std::string err;
    c.ForEachShardHeld([&](auto& s, auto*) {
      uint64_t n[3] = {}, w[3] = {};
      s.index.ForEach([&](auto* node) {
        size_t t = node->tier == Tier::kL1 ? 1 : node->tier == Tier::kL2 ? 2 : 0;
        if (t == 0 || node->value.index() != t) err += "a node's tier and value disagree; ";
        if (node->pending) err += "a node is still marked pending; ";
        if (node->queue == Queue::kNone) err += "a node is in no queue; ";
        if (s.index.Find(node->hash, node->key, c.eq_) != node) {
          err += "a node is not found by its key; ";
        }
        n[t]++;
        w[t] += node->charge;
      });
      const CacheTierStats& l1 = s.policy->stats(Tier::kL1);
      const CacheTierStats& l2 = s.policy->stats(Tier::kL2);
      if (n[0] != 0 || l1.entries != n[1] || l2.entries != n[2]) err += "entry counts disagree; ";
      if (l1.bytes != w[1] || l2.bytes != w[2]) err += "tier weights disagree; ";
      if (s.policy->total_charge() != w[1] + w[2]) err += "queue weights disagree; ";
      if (l1.bytes > s.l1_cap || l2.bytes > s.l2_cap) err += "a tier is over its capacity; ";
      if (!s.pending.empty()) err += "drain work is left queued; ";
      for (const auto& f : s.flights) {
        if (f.second->finished) err += "a finished load is still registered; ";
      }
    });
    return err;
  }
};

namespace {

template <typename C>
std::string CheckCache(C& c) {
  return evstore::cache_internal::TestPeer::Check(c);
}

}  // namespace

// Allocation failure on demand: the thread that sets g_fail_allocation_in
// to n has its n-th operator new from then on throw std::bad_alloc, once.
// Other threads, and this one otherwise, allocate normally.
namespace {
thread_local int64_t g_fail_allocation_in = -1;

void* Allocate(size_t n, size_t align) {
  if (g_fail_allocation_in >= 0 && g_fail_allocation_in-- == 0) throw std::bad_alloc();
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n)
                : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t n) { return Allocate(n, 0); }
void* operator new[](size_t n) { return Allocate(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

// Runs op with its first allocation failing, then its second, and so on
// until it runs without a failure. Before each run, prepare() sets up op's
// arguments; after it, check(threw) checks the cache (threw: op ended in
// std::bad_alloc; it may also have absorbed the failure). Only op runs
// with failures armed: no test assertion may run inside it. Returns the
// number of failures injected.
template <typename Prepare, typename Op, typename Check>
int EachAllocationFailing(Prepare prepare, Op op, Check check) {
  for (int64_t n = 0;; n++) {
    prepare();
    bool threw = false;
    g_fail_allocation_in = n;
    try {
      op();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    bool failed = g_fail_allocation_in < 0;
    g_fail_allocation_in = -1;
    check(threw);
    if (!failed) return static_cast<int>(n);
  }
}

}  // namespace

TEST_SUITE("cache") {
  TEST_CASE("the node slab aligns, reuses freed slots and constructs and destroys objects") {
    struct alignas(64) Obj {
      explicit Obj(std::string v, int* live) : value(std::move(v)), live(live) { ++*live; }
      ~Obj() { --*live; }
      std::string value;
      int* live;
    };
    int live = 0;
    evstore::cache_internal::Slab<Obj> slab;
    std::vector<Obj*> objs;
    for (int i = 0; i < 600; i++) {  // past several chunks
      objs.push_back(slab.New(std::string(40, static_cast<char>('a' + i % 26)), &live));
      CHECK(reinterpret_cast<uintptr_t>(objs.back()) % 64 == 0);
    }
    CHECK(live == 600);
    for (int i = 0; i < 600; i++) CHECK(objs[static_cast<size_t>(i)]->value[0] == 'a' + i % 26);
    Obj* freed = objs[17];
    slab.Delete(freed);
    CHECK(live == 599);
    Obj* again = slab.New(std::string("x"), &live);
    CHECK(again == freed);  // the freed slot is reused first
    CHECK(again->value == "x");
    objs[17] = again;
    for (Obj* o : objs) slab.Delete(o);
    CHECK(live == 0);
    slab.Reset();
    Obj* fresh = slab.New(std::string("y"), &live);
    CHECK(fresh->value == "y");
    slab.Delete(fresh);
    CHECK(live == 0);
  }

  TEST_CASE("L2's compact bytes keep every length, inline up to 15 bytes and on the heap beyond") {
    using evstore::cache_internal::CompactBytes;
    CHECK(sizeof(CompactBytes) == 16);
    CHECK(CompactBytes().view().empty());
    for (size_t len : {0, 1, 8, 14, 15, 16, 17, 255, 256, 70000}) {
      std::string b(len, '\0');
      for (size_t i = 0; i < len; i++) b[i] = static_cast<char>(i * 131 + len);
      CompactBytes c(b);
      CHECK(c.view() == b);
      CompactBytes moved(std::move(c));
      CHECK(moved.view() == b);
      CHECK(c.view().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
      CompactBytes assigned(std::string_view("short"));
      assigned = std::move(moved);  // frees the old contents, takes the new
      CHECK(assigned.view() == b);
      CompactBytes& self = assigned;
      assigned = std::move(self);
      CHECK(assigned.view() == b);
    }
    // Inline bytes live in the object, heap bytes in an exact block.
    CompactBytes inl(std::string(15, 'i'));
    CHECK(reinterpret_cast<uintptr_t>(inl.view().data()) == reinterpret_cast<uintptr_t>(&inl));
    CompactBytes heap(std::string(16, 'h'));
    CHECK(reinterpret_cast<uintptr_t>(heap.view().data()) != reinterpret_cast<uintptr_t>(&heap));
  }

  TEST_CASE("a cached value is returned until it is erased or replaced") {
    IntCache c(Tiers(4, 16), evstore::TrivialCacheCodec<uint64_t>());
    CHECK_FALSE(c.get(1).has_value());
    CHECK(c.put(1, 100).ok());
    REQUIRE(c.get(1).has_value());
    CHECK(*c.get(1) == 100);
    CHECK(c.put(1, 101).ok());
    CHECK(*c.get(1) == 101);
    CHECK(c.erase(1));
    CHECK_FALSE(c.erase(1));
    CHECK_FALSE(c.get(1).has_value());
    for (uint64_t k = 0; k < 10; k++) CHECK(c.put(k, k * 10).ok());
    c.clear();
    for (uint64_t k = 0; k < 10; k++) CHECK_FALSE(c.get(k).has_value());
    CacheStats s = c.stats();
    CHECK(s.l1.entries == 0);
    CHECK(s.l2.entries == 0);
    CHECK(s.l1.bytes + s.l2.bytes == 0);
  }

  TEST_CASE("expired entries are never returned") {
    FakeClock clock;
    CacheOptions o = Tiers(2, 8);
    o.clock = clock.fn();

    SUBCASE("the L1 TTL applies to entries found in L1") {
      o.l1.ttl = seconds(10);
      IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
      CHECK(c.put(1, 1).ok());
      clock.advance(seconds(9));
      CHECK(c.get(1).has_value());
      clock.advance(seconds(1));
      CHECK_FALSE(c.get(1).has_value());
      CHECK(c.stats().l1.expirations == 1);
    }
    SUBCASE("the L2 TTL applies once an entry is demoted") {
      o.l2.ttl = seconds(5);
      IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
      CHECK(c.put(1, 1).ok());
      CHECK(c.put(2, 2).ok());
      clock.advance(seconds(6));
      CHECK(c.get(2).has_value());  // still in L1, which has no TTL
      CHECK(c.put(3, 3).ok());  // demotes 1 (not hit in L1), whose write was 6 s ago
      CHECK(c.stats().l2.entries == 1);
      CHECK_FALSE(c.get(1).has_value());
      CHECK(c.stats().l2.expirations == 1);
    }
    SUBCASE("a per-entry TTL shorter than the tier's wins") {
      o.l1.ttl = seconds(100);
      IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
      CHECK(c.put(1, 1, seconds(3)).ok());
      CHECK(c.put(2, 2).ok());
      clock.advance(seconds(3));
      CHECK_FALSE(c.get(1).has_value());
      CHECK(c.get(2).has_value());
    }
    SUBCASE("a per-entry TTL works without tier TTLs and a rewrite restarts it") {
      IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
      CHECK(c.put(1, 1, seconds(2)).ok());
      clock.advance(seconds(1));
      CHECK(c.put(1, 11, seconds(2)).ok());
      clock.advance(seconds(1));
      REQUIRE(c.get(1).has_value());
      CHECK(*c.get(1) == 11);
      clock.advance(nanoseconds(seconds(1)) - nanoseconds(1));
      CHECK(c.get(1).has_value());
      clock.advance(nanoseconds(1));
      CHECK_FALSE(c.get(1).has_value());
    }
    SUBCASE("cleanup removes expired entries without lookups") {
      CacheOptions o2 = Tiers(20, 200);
      o2.clock = clock.fn();
      IntCache d(o2, evstore::TrivialCacheCodec<uint64_t>());
      for (uint64_t k = 0; k < 100; k++) CHECK(d.put(k, k, seconds(k < 50 ? 1 : 1000)).ok());
      clock.advance(std::chrono::milliseconds(1500));
      d.cleanup();
      CacheStats s = d.stats();
      CHECK(s.l1.expirations + s.l2.expirations == 50);
      CHECK(s.l1.entries + s.l2.entries == 50);
      clock.advance(seconds(2000));
      d.cleanup();
      s = d.stats();
      CHECK(s.l1.entries + s.l2.entries == 0);
      CHECK(s.l1.expirations + s.l2.expirations == 100);
    }
    SUBCASE("writes remove entries whose wheel bucket has passed") {
      IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
      CHECK(c.put(1, 1, seconds(1)).ok());
      clock.advance(seconds(3));
      CHECK(c.put(2, 2).ok());
      CHECK(c.stats().l1.expirations == 1);
    }
  }

  TEST_CASE("L2 hits promote to L1 and L1 victims demote to L2") {
    IntCache c(Tiers(2, 8), evstore::TrivialCacheCodec<uint64_t>());
    CHECK(c.put(1, 10).ok());
    CHECK(c.put(2, 20).ok());
    CHECK(c.put(3, 30).ok());
    CacheStats s = c.stats();
    CHECK(s.l1.entries == 2);
    CHECK(s.l2.entries == 1);
    CHECK(s.l1.demotions == 1);
    REQUIRE(c.get(1).has_value());  // 1 was the L1 LRU, so it is in L2
    s = c.stats();
    CHECK(s.l2.hits == 1);
    CHECK(s.l1.misses == 1);
    CHECK(s.l1.promotions == 1);
    CHECK(s.l1.demotions == 2);  // promoting 1 pushed 2 down
    CHECK(s.l1.entries == 2);
    CHECK(s.l2.entries == 1);
    CHECK(*c.get(1) == 10);
    CHECK(c.stats().l1.hits == 1);
    CHECK(*c.get(2) == 20);
    CHECK(c.stats().l2.hits == 2);
  }

  TEST_CASE("a one-off scan does not flush the hot set") {
    for (uint32_t shards : {1u, 4u}) {
      CAPTURE(shards);
      CacheOptions o = CacheOptions::WithTotalCapacity(400);
      o.shards = shards;
      IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
      auto access = [&](uint64_t k) {
        if (!c.get(k)) (void)c.put(k, k);
      };
      std::mt19937_64 rng(7);
      for (int i = 0; i < 40000; i++) access(rng() % 200);
      // A scan five times the capacity, every key seen once.
      for (uint64_t k = 1'000'000; k < 1'002'000; k++) access(k);
      c.reset_stats();
      for (uint64_t k = 0; k < 200; k++) access(k);
      CHECK(c.stats().hit_ratio() >= 0.9);
    }
  }

  TEST_CASE("one default configuration serves both loops and recency") {
    CacheOptions o = CacheOptions::WithTotalCapacity(500);
    IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
    uint64_t hits = 0, requests = 0;
    auto access = [&](uint64_t k) {
      requests++;
      if (c.get(k)) hits++; else (void)c.put(k, k);
    };
    SUBCASE("a loop twice the capacity, where LRU never hits") {
      for (int pass = 0; pass < 60; pass++)
        for (uint64_t k = 0; k < 1000; k++) access(k);
      CHECK(static_cast<double>(hits) / static_cast<double>(requests) >= 0.4);
    }
    SUBCASE("a drifting working set, where LRU is close to ideal") {
      // Compared with an exact LRU of the same capacity on the same keys.
      std::list<uint64_t> lru;
      std::unordered_map<uint64_t, std::list<uint64_t>::iterator> pos;
      uint64_t lru_hits = 0;
      std::mt19937_64 rng(3);
      for (uint64_t i = 0; i < 200000; i++) {
        uint64_t k = i / 20 + rng() % 400;
        access(k);
        auto it = pos.find(k);
        if (it != pos.end()) {
          lru_hits++;
          lru.erase(it->second);
        } else if (lru.size() == 500) {
          pos.erase(lru.back());
          lru.pop_back();
        }
        lru.push_front(k);
        pos[k] = lru.begin();
      }
      double ours = static_cast<double>(hits) / static_cast<double>(requests);
      double theirs = static_cast<double>(lru_hits) / static_cast<double>(requests);
      CAPTURE(ours);
      CAPTURE(theirs);
      CHECK(ours >= theirs - 0.01);
    }
  }

  TEST_CASE("L1's clock examines a new entry last and passes a hit entry once") {
    using evstore::cache_internal::L1Clock;
    using evstore::cache_internal::PolicyNode;
    std::vector<PolicyNode> nodes(400);
    std::mt19937_64 rng(11);
    L1Clock c;
    std::vector<PolicyNode*> live;
    std::unordered_map<PolicyNode*, bool> hit;  // hit since last passed
    auto remove_at = [&](size_t i) {
      c.Remove(live[i]);
      hit.erase(live[i]);
      live[i] = live.back();
      live.pop_back();
    };
    size_t next = 0;
    for (int round = 0; round < 40; round++) {
      // Churn: pushes, removals anywhere (holes; in round 3, most of a large
      // ring, so that it is compacted), hits.
      for (int k = 0; k < (round == 3 ? 150 : 30) && next < nodes.size() - 1; k++) {
        c.Push(&nodes[next]);
        live.push_back(&nodes[next]);
        hit[&nodes[next++]] = false;
      }
      size_t removals = round == 3 ? live.size() - 20 : rng() % (live.size() + 1);
      for (size_t k = 0; k < removals && live.size() > 1; k++) remove_at(rng() % live.size());
      for (PolicyNode* n : live) {
        if (rng() % 3 == 0) {
          c.Hit(n);
          hit[n] = true;
        }
      }
      // A new entry comes out only after every entry not hit at its arrival;
      // the hit ones are passed over once, their bits cleared.
      if (next == nodes.size()) break;
      PolicyNode* m = &nodes[next++];
      c.Push(m);
      std::unordered_map<PolicyNode*, bool> before = hit;
      live.push_back(m);
      hit[m] = false;
      const size_t at_push = live.size();
      uint64_t steps = 0;
      for (;;) {
        PolicyNode* v = c.Victim(&steps);
        auto it = std::find(live.begin(), live.end(), v);
        REQUIRE(it != live.end());
        CHECK_FALSE(hit[v]);
        if (v == m) break;
        CHECK_FALSE(before[v]);
        remove_at(static_cast<size_t>(it - live.begin()));
      }
      for (PolicyNode* n : live) {
        if (n != m) CHECK(before[n]);  // what is left was hit: passed once
        hit[n] = false;  // the hand has passed every entry now
      }
      CHECK(steps == at_push);  // each entry examined once
      remove_at(static_cast<size_t>(std::find(live.begin(), live.end(), m) - live.begin()));
      if (next + 31 >= nodes.size()) break;
    }
    CHECK(next > 250);
  }

  TEST_CASE("L1's clock holds a bounded number of slots through long churn") {
    using evstore::cache_internal::L1Clock;
    using evstore::cache_internal::PolicyNode;
    std::vector<PolicyNode> nodes(1100);
    L1Clock c;
    uint64_t steps = 0;
    for (size_t i = 0; i < 1000; i++) c.Push(&nodes[i]);
    // Demote, then promote another entry: the hole the demotion leaves
    // behind the hand is the one the promotion fills.
    std::vector<PolicyNode*> out;  // not in the clock
    for (size_t i = 1000; i < nodes.size(); i++) out.push_back(&nodes[i]);
    for (int r = 0; r < 100000; r++) {
      PolicyNode* v = c.Victim(&steps);
      c.Remove(v);
      c.Push(out[static_cast<size_t>(r) % 100]);
      out[static_cast<size_t>(r) % 100] = v;
    }
    CHECK(c.slots_held() == 1000);
    // With removals elsewhere too (erasures), holes are reused or compacted.
    std::mt19937_64 rng(5);
    std::vector<PolicyNode*> in;
    for (PolicyNode& n : nodes) {
      if (std::find(out.begin(), out.end(), &n) == out.end()) in.push_back(&n);
    }
    for (int r = 0; r < 100000; r++) {
      if (rng() % 2 == 0) {
        size_t i = rng() % in.size();
        c.Remove(in[i]);
        out.push_back(in[i]);
        in[i] = in.back();
        in.pop_back();
      }
      if (!out.empty() && (in.size() < 10 || rng() % 2 == 0)) {
        c.Push(out.back());
        in.push_back(out.back());
        out.pop_back();
      }
    }
    CAPTURE(c.slots_held());
    CHECK(c.slots_held() <= 3 * nodes.size() + 128);
  }

  TEST_CASE("window-ghost hits grow the window, by more while the main ghost is not hit") {
    using evstore::cache_internal::CachePolicy;
    using evstore::cache_internal::PolicyNode;
    using evstore::cache_internal::Queue;
    using evstore::cache_internal::Tier;
    CachePolicy p(0, 1000, 0, 0, 0);
    std::vector<std::unique_ptr<PolicyNode>> nodes;
    std::vector<uint64_t> evicted_from_window;
    auto insert = [&](uint64_t h) {
      nodes.push_back(std::make_unique<PolicyNode>());
      nodes.back()->hash = h;
      p.Insert(nodes.back().get(), Tier::kL2, 1, 0);
      // As the cache's maintenance does: evict down to the capacity.
      while (p.total_charge() > p.capacity()) {
        PolicyNode* v = p.SelectVictim();
        REQUIRE(v != nullptr);
        if (v->queue == Queue::kWindow) evicted_from_window.push_back(v->hash);
        p.OnEvict(v);
        p.Remove(v);
      }
    };
    auto hash = [](uint64_t i) { return (i + 1) * 0x9E3779B97F4A7C15ull; };
    for (uint64_t i = 0; i < 1100; i++) insert(hash(i));
    // Newcomers without history lose the admission contest against the main
    // space, so the last ones left from the window and sit in its ghost.
    REQUIRE(evicted_from_window.size() >= 8);
    std::vector<uint64_t> ghosts(evicted_from_window.end() - 8, evicted_from_window.end());
    std::vector<uint64_t> steps;
    for (uint64_t h : ghosts) {
      uint64_t before = p.window_max();
      insert(h);
      steps.push_back(p.window_max() - before);
    }
    // Unit weights: 1, 2, 3, then at most 4 per hit, as the window ghost's
    // hits outnumber the main ghost's.
    CHECK(steps == std::vector<uint64_t>{1, 2, 3, 4, 4, 4, 4, 4});
  }

  TEST_CASE("weights bound the bytes held by each tier") {
    SUBCASE("each tier stays within its byte budget") {
      StrCache c(Tiers(100, 1000), StringCodec(), LengthWeighers());
      for (uint64_t k = 0; k < 500; k++) {
        CHECK(c.put(k, std::string(1 + k % 60, 'a' + k % 26)).ok());
        CacheStats s = c.stats();
        REQUIRE(s.l1.bytes <= 100);
        REQUIRE(s.l2.bytes <= 1000);
      }
      CacheStats s = c.stats();
      CHECK(s.l1.bytes > 50);
      CHECK(s.l2.bytes > 900);
    }
    SUBCASE("a value heavier than L1 goes to L2") {
      StrCache c(Tiers(100, 1000), StringCodec(), LengthWeighers());
      CHECK(c.put(1, std::string(300, 'x')).ok());
      CacheStats s = c.stats();
      CHECK(s.l1.entries == 0);
      CHECK(s.l2.entries == 1);
      CHECK(s.l2.bytes == 300);
      CHECK(c.get(1)->size() == 300);
      CHECK(c.stats().l1.promotions == 0);  // too heavy for L1
    }
    SUBCASE("a value heavier than both tiers is rejected and drops the old value") {
      StrCache c(Tiers(100, 1000), StringCodec(), LengthWeighers());
      CHECK(c.put(1, "small").ok());
      Status st = c.put(1, std::string(2000, 'x'));
      CHECK(st.IsInvalidArgument());
      CHECK_FALSE(c.get(1).has_value());
      CHECK(c.stats().rejections == 1);
    }
    SUBCASE("a zero L1 capacity keeps every value encoded") {
      StrCache c(Tiers(0, 1000), StringCodec(), LengthWeighers());
      CHECK(c.put(1, "one").ok());
      CHECK(*c.get(1) == "one");
      CacheStats s = c.stats();
      CHECK(s.l1.entries == 0);
      CHECK(s.l2.hits == 1);
      CHECK(s.l1.promotions == 0);
    }
    SUBCASE("a zero L2 capacity drops L1 victims") {
      StrCache c(Tiers(10, 0), StringCodec(), LengthWeighers());
      CHECK(c.put(1, "aaaa").ok());
      CHECK(c.put(2, "bbbb").ok());
      CHECK(c.put(3, "cccc").ok());
      CacheStats s = c.stats();
      CHECK(s.l1.bytes <= 10);
      CHECK(s.l1.evictions == 1);
      CHECK(s.l2.entries == 0);
      CHECK(s.l1.demotions == 0);
    }
    SUBCASE("a missing codec disables L2") {
      StrCache c(Tiers(10, 1000), CacheCodec<std::string>(), LengthWeighers());
      CHECK(c.put(1, "aaaaaaaa").ok());
      CHECK(c.put(2, "bbbbbbbb").ok());
      CHECK(c.stats().l2.entries == 0);
      CHECK(c.stats().l1.entries == 1);
    }
    SUBCASE("zero capacities disable caching") {
      StrCache c(Tiers(0, 0), StringCodec(), LengthWeighers());
      CHECK(c.put(1, "a").ok());
      CHECK_FALSE(c.get(1).has_value());
      int calls = 0;
      for (int i = 0; i < 2; i++) {
        Result<std::string> r = c.get_or_load(1, [&]() -> Result<std::string> {
          calls++;
          return std::string("v");
        });
        CHECK(*r == "v");
      }
      CHECK(calls == 2);
    }
    SUBCASE("bytes the codec cannot decode make a miss") {
      CacheCodec<std::string> bad = StringCodec();
      bad.decode = [](std::string_view) -> Result<std::string> {
        return Status::Corruption("unreadable");
      };
      StrCache c(Tiers(0, 1000), bad, LengthWeighers());
      CHECK(c.put(1, "one").ok());
      CHECK_FALSE(c.get(1).has_value());
      CHECK(c.stats().l2.entries == 0);
    }
  }

  TEST_CASE("get_or_load runs the loader once for concurrent misses") {
    IntCache c(CacheOptions::WithTotalCapacity(1000), evstore::TrivialCacheCodec<uint64_t>());
    std::atomic<int> calls{0};
    std::atomic<bool> go{false};
    constexpr int kThreads = 16;
    std::vector<uint64_t> seen(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        Result<uint64_t> r = c.get_or_load(42, [&]() -> Result<uint64_t> {
          calls++;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          return uint64_t{4242};
        });
        seen[t] = r.ok() ? *r : 0;
      });
    }
    go = true;
    for (auto& th : threads) th.join();
    CHECK(calls.load() == 1);
    for (uint64_t v : seen) CHECK(v == 4242);
    CHECK(c.stats().loads == 1);
    CHECK(*c.get(42) == 4242);
  }

  TEST_CASE("a loader error reaches every waiter and is not cached") {
    IntCache c(CacheOptions::WithTotalCapacity(1000), evstore::TrivialCacheCodec<uint64_t>());

    SUBCASE("an error status") {
      std::atomic<int> calls{0};
      std::atomic<bool> go{false};
      std::vector<Status> seen(8);
      std::vector<std::thread> threads;
      for (int t = 0; t < 8; t++) {
        threads.emplace_back([&, t] {
          while (!go.load()) std::this_thread::yield();
          Result<uint64_t> r = c.get_or_load(7, [&]() -> Result<uint64_t> {
            calls++;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return Status::IOError("disk on fire");
          });
          seen[t] = r.status();
        });
      }
      go = true;
      for (auto& th : threads) th.join();
      CHECK(calls.load() == 1);
      for (const Status& s : seen) CHECK(s.IsIOError());
      CHECK_FALSE(c.get(7).has_value());
      CHECK(c.stats().load_errors == 1);
      Result<uint64_t> r = c.get_or_load(7, [] { return Result<uint64_t>(uint64_t{8}); });
      CHECK(*r == 8);
      CHECK(*c.get(7) == 8);
    }
    SUBCASE("an exception") {
      std::atomic<bool> go{false};
      std::atomic<int> caught{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; t++) {
        threads.emplace_back([&] {
          while (!go.load()) std::this_thread::yield();
          try {
            (void)c.get_or_load(9, []() -> Result<uint64_t> {
              std::this_thread::sleep_for(std::chrono::milliseconds(50));
              throw std::runtime_error("boom");
            });
          } catch (const std::runtime_error&) {
            caught++;
          }
        });
      }
      go = true;
      for (auto& th : threads) th.join();
      CHECK(caught.load() == 4);
      CHECK_FALSE(c.get(9).has_value());
    }
    SUBCASE("loading the same key from inside its loader is refused") {
      Result<uint64_t> r = c.get_or_load(5, [&]() -> Result<uint64_t> {
        Result<uint64_t> inner = c.get_or_load(5, [] { return Result<uint64_t>(uint64_t{1}); });
        CHECK(inner.status().IsBusy());
        Result<uint64_t> other = c.get_or_load(6, [] { return Result<uint64_t>(uint64_t{6}); });
        CHECK(*other == 6);
        return uint64_t{5};
      });
      CHECK(*r == 5);
      CHECK(*c.get(6) == 6);
    }
  }

  TEST_CASE("a write or erase during a load keeps the loaded value out of the cache") {
    IntCache c(CacheOptions::WithTotalCapacity(1000), evstore::TrivialCacheCodec<uint64_t>());
    SUBCASE("erase") {
      Result<uint64_t> r = c.get_or_load(1, [&]() -> Result<uint64_t> {
        (void)c.erase(1);
        return uint64_t{10};
      });
      CHECK(*r == 10);
      CHECK_FALSE(c.get(1).has_value());
    }
    SUBCASE("put") {
      Result<uint64_t> r = c.get_or_load(1, [&]() -> Result<uint64_t> {
        CHECK(c.put(1, 11).ok());
        return uint64_t{10};
      });
      CHECK(*r == 10);
      CHECK(*c.get(1) == 11);
    }
  }

  TEST_CASE("a get_or_load after an erase does not wait for an older load") {
    IntCache c(CacheOptions::WithTotalCapacity(1000), evstore::TrivialCacheCodec<uint64_t>());
    std::atomic<bool> started{false}, release{false};
    std::thread old_load([&] {
      Result<uint64_t> r = c.get_or_load(3, [&]() -> Result<uint64_t> {
        started = true;
        for (int i = 0; i < 2000 && !release.load(); i++) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return uint64_t{1};  // read before the erase
      });
      CHECK(*r == 1);
    });
    while (!started.load()) std::this_thread::yield();
    (void)c.erase(3);
    Result<uint64_t> r = c.get_or_load(3, [] { return Result<uint64_t>(uint64_t{2}); });
    release = true;
    old_load.join();
    CHECK(*r == 2);
    CHECK(*c.get(3) == 2);
  }

  TEST_CASE("stats count events per tier and reset keeps the contents") {
    IntCache c(Tiers(2, 4), evstore::TrivialCacheCodec<uint64_t>());
    for (uint64_t k = 0; k < 10; k++) CHECK(c.put(k, k).ok());
    CacheStats s = c.stats();
    CHECK(s.l1.entries == 2);
    CHECK(s.l2.entries == 4);
    CHECK(s.l1.bytes == 2);
    CHECK(s.l2.bytes == 4);
    CHECK(s.l1.evictions + s.l2.evictions == 4);
    CHECK(s.l1.demotions >= 4);
    CHECK_FALSE(c.get(1000).has_value());
    s = c.stats();
    CHECK(s.misses == 1);
    CHECK(s.l1.misses == 1);
    CHECK(s.l2.misses == 1);
    c.reset_stats();
    s = c.stats();
    CHECK(s.misses == 0);
    CHECK(s.l1.demotions == 0);
    CHECK(s.l1.evictions + s.l2.evictions == 0);
    CHECK(s.l1.entries == 2);
    CHECK(s.l2.entries == 4);
    CHECK(s.hit_ratio() == 0.0);
  }

  TEST_CASE("concurrent readers, writers and loaders keep the cache consistent") {
    FakeClock clock;
    CacheOptions o = CacheOptions::WithTotalCapacity(4000);
    o.shards = 4;
    o.l2.ttl = seconds(5);
    o.clock = clock.fn();
    StrCache c(o, StringCodec(), LengthWeighers());
    // Every value is the decimal key, so any value read can be checked.
    auto value_of = [](uint64_t k) { return std::to_string(k); };
    std::atomic<bool> bad{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(t);
        for (int i = 0; i < 20000; i++) {
          uint64_t k = rng() % 3000;
          switch (rng() % 8) {
            case 0:
              (void)c.put(k, value_of(k), seconds(rng() % 10));
              break;
            case 1:
              (void)c.erase(k);
              break;
            case 2: {
              Result<std::string> r = c.get_or_load(k, [&]() -> Result<std::string> {
                if (k % 13 == 0) return Status::IOError("flaky");
                return value_of(k);
              });
              if (r.ok() && *r != value_of(k)) bad = true;
              break;
            }
            case 3:
              if (i % 1000 == 0) c.cleanup();
              if (i % 5000 == 0) c.clear();
              if (t == 0 && i % 100 == 0) clock.advance(std::chrono::milliseconds(700));
              break;
            default: {
              std::optional<std::string> v = c.get(k);
              if (v && *v != value_of(k)) bad = true;
            }
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK_FALSE(bad.load());
    CacheStats s = c.stats();
    // Encoded values weigh what decoded ones do, so the adaptive split gave
    // L1 most of the capacity; the total holds.
    CHECK(s.l1.capacity + s.l2.capacity >= 4000);
    CHECK(s.l1.capacity > 500);
    CHECK(s.l1.bytes <= s.l1.capacity);
    CHECK(s.l2.bytes <= s.l2.capacity);
    CHECK(s.l1.bytes + s.l2.bytes <= 4000);
    c.clear();
    s = c.stats();
    CHECK(s.l1.entries + s.l2.entries == 0);
    CHECK(s.l1.bytes + s.l2.bytes == 0);
  }

  TEST_CASE("concurrent lookups never see another key's value or a stale value after a write") {
    // Each key has one owning thread that writes it: the source of truth is
    // `truth[k]`, a version only the owner raises, then caches with put (or
    // drops with erase). Loaders read the truth. So every value seen for k
    // names k and a version no newer than the truth, and the owner, after
    // its own write, sees exactly the truth or nothing.
    constexpr int kThreads = 6;
    constexpr uint64_t kKeys = 600;
    for (uint32_t shards : {1u, 4u}) {
      CAPTURE(shards);
      CacheOptions o = CacheOptions::WithTotalCapacity(400);  // keys overflow the cache
      o.shards = shards;
      StrCache c(o, StringCodec(), LengthWeighers());
      std::vector<std::atomic<uint64_t>> truth(kKeys);
      auto value_of = [](uint64_t k, uint64_t v) { return std::to_string(k) + ":" + std::to_string(v); };
      auto parse = [](const std::string& s, uint64_t* k, uint64_t* v) {
        size_t colon = s.find(':');
        if (colon == std::string::npos) return false;
        *k = std::stoull(s.substr(0, colon));
        *v = std::stoull(s.substr(colon + 1));
        return true;
      };
      std::atomic<int> bad{0};
      std::atomic<bool> go{false};
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
          while (!go.load()) std::this_thread::yield();
          std::mt19937_64 rng(100 + t);
          auto check = [&](uint64_t k, const std::string& s, bool owner) {
            uint64_t rk = 0, rv = 0;
            if (!parse(s, &rk, &rv) || rk != k || rv > truth[k].load()) bad++;
            if (owner && rv != truth[k].load()) bad++;
          };
          for (int i = 0; i < 30000; i++) {
            // Skewed keys, so that some are hot and stay cached.
            uint64_t k = (rng() % kKeys) * (rng() % kKeys) / kKeys;
            bool owner = k % kThreads == static_cast<uint64_t>(t);
            int op = static_cast<int>(rng() % 10);
            if (owner && op == 0) {
              uint64_t v = truth[k].load() + 1;
              truth[k].store(v);
              (void)c.put(k, value_of(k, v));
            } else if (owner && op == 1) {
              truth[k].fetch_add(1);
              (void)c.erase(k);
            } else if (op <= 3) {
              Result<std::string> r = c.get_or_load(k, [&]() -> Result<std::string> {
                if (k % 17 == 0) return Status::IOError("flaky");
                return value_of(k, truth[k].load());
              });
              if (r.ok()) check(k, *r, owner);
            } else {
              std::optional<std::string> v = c.get(k);
              if (v) check(k, *v, owner);
            }
          }
        });
      }
      go = true;
      for (auto& th : threads) th.join();
      CHECK(bad.load() == 0);
      CacheStats s = c.stats();
      CHECK(s.l1.bytes <= s.l1.capacity);
      CHECK(s.l2.bytes <= s.l2.capacity);
      CHECK(s.l1.bytes + s.l2.bytes <= 400);
      CHECK(s.l1.entries + s.l2.entries > 0);
    }
  }

  TEST_CASE("statistics count every concurrent lookup exactly") {
    // Far more lookups than the read buffers hold, so some accesses are not
    // replayed into the policy; the counts must still be exact.
    std::unique_ptr<IntCache> cache = StatsCache();
    IntCache& c = *cache;
    constexpr int kThreads = 4, kLookups = 20000;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] { wrong += LookUpStatsKeys(c, t, kLookups); });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong.load() == 0);
    CacheStats s = c.stats();
    CHECK(s.l1.hits + s.l2.hits == kThreads * kLookups / 50 * 40);
    CHECK(s.misses == kThreads * kLookups / 50 * 10);
    CHECK(s.l1.entries + s.l2.entries == 40);
  }

  TEST_CASE("statistics stay exact beside in-place puts, exclusive writers, loads and stats()") {
    // L1 hits are counted by their buffer claims alone; everything else that
    // claims (misses, in-place puts, lookups that back off from a writer,
    // get_or_load's first look) must not pass for one, at the end or in any
    // snapshot taken meanwhile.
    std::unique_ptr<IntCache> cache = StatsCache();
    IntCache& c = *cache;
    constexpr int kReaders = 3, kLookups = 20000, kLoads = 2000;
    std::atomic<uint64_t> hits{0}, misses{0};
    std::atomic<bool> done{false}, bad{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kReaders; t++) {
      threads.emplace_back([&, t] {
        if (LookUpStatsKeys(c, t, kLookups) != 0) bad = true;  // in-place puts keep k -> k
        hits += kLookups / 50 * 40;
        misses += kLookups / 50 * 10;
      });
    }
    threads.emplace_back([&] {  // in-place puts of cached keys
      for (uint64_t i = 0; !done.load(); i++) {
        if (!c.put(i % 40, i % 40).ok()) bad = true;
      }
    });
    threads.emplace_back([&] {  // exclusive holds: inserts and erases of other keys
      for (uint64_t i = 0; !done.load(); i++) {
        if (!c.put(1000 + i % 8, i).ok()) bad = true;
        c.erase(1000 + i % 8);
      }
    });
    threads.emplace_back([&] {  // loads: a hit, then a miss that loads
      for (uint64_t i = 0; i < kLoads; i++) {
        auto v = c.get_or_load(i % 40, [] { return Result<uint64_t>(uint64_t{7}); });
        if (!v.ok() || *v != i % 40) bad = true;
        auto w = c.get_or_load(2000 + i, [i] { return Result<uint64_t>(i); });
        if (!w.ok() || *w != i) bad = true;
        c.erase(2000 + i);
      }
      hits += kLoads;
      misses += kLoads;
    });
    threads.emplace_back([&] {  // snapshots: never above what was looked up so far
      uint64_t last = 0;
      while (!done.load()) {
        CacheStats s = c.stats();
        uint64_t h = s.l1.hits + s.l2.hits;
        if (h < last || h > uint64_t{kReaders} * kLookups + kLoads) bad = true;
        last = h;
      }
    });
    for (int t = 0; t < kReaders; t++) threads[t].join();
    threads[kReaders + 2].join();  // the loads
    done = true;
    for (auto& th : threads) {
      if (th.joinable()) th.join();
    }
    CHECK_FALSE(bad.load());
    CacheStats s = c.stats();
    CHECK(s.l1.hits + s.l2.hits == hits.load());
    CHECK(s.misses == misses.load());
    CHECK(s.loads == kLoads);
  }

  TEST_CASE("read-only traffic promotes L2 hits while lookups go on") {
    // No writes during the reads: promotions come only from drains run by the
    // readers themselves (in batches, holding the shard), beside other
    // readers. Every value read must name its key, and the tiers must stay
    // within their budgets.
    CacheOptions o;
    o.l1.capacity = 64;
    o.l2.capacity = 2000;
    o.shards = 2;
    StrCache c(o, StringCodec());
    constexpr uint64_t kKeys = 1500;
    for (uint64_t k = 0; k < kKeys; k++) REQUIRE(c.put(k, std::to_string(k)).ok());
    c.reset_stats();
    std::atomic<bool> bad{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(t);
        for (int i = 0; i < 30000; i++) {
          uint64_t k = rng() % kKeys;
          std::optional<std::string> v = c.get(k);
          if (!v || *v != std::to_string(k)) bad = true;
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK_FALSE(bad.load());
    CacheStats s = c.stats();
    CHECK(s.l1.hits + s.l2.hits == 4 * 30000);
    CHECK(s.misses == 0);
    CHECK(s.l1.promotions > 0);
    CHECK(s.l1.promotions == s.l1.demotions);
    CHECK(s.l1.entries <= 64);
    CHECK(s.l1.entries + s.l2.entries == kKeys);
  }

  TEST_CASE("overwrites of cached values beside lookups: no stale or foreign value") {
    // Unit weights, no TTL, every key in L1, so every put rewrites a cached
    // value while lookups of it run. Each key has one owning writer.
    CacheOptions o;
    o.l1.capacity = 512;
    o.shards = 2;
    StrCache c(o);
    constexpr uint64_t kKeys = 200;
    std::vector<std::atomic<uint64_t>> truth(kKeys);
    for (uint64_t k = 0; k < kKeys; k++) REQUIRE(c.put(k, std::to_string(k) + ":0").ok());
    auto parse = [](const std::string& v, uint64_t* k, uint64_t* ver) {
      size_t colon = v.find(':');
      if (colon == std::string::npos) return false;
      *k = std::stoull(v.substr(0, colon));
      *ver = std::stoull(v.substr(colon + 1));
      return true;
    };
    auto value = [](uint64_t k, uint64_t ver) { return std::to_string(k) + ":" + std::to_string(ver); };
    CHECK(OverwriteRace(
        kKeys, 20000, truth,
        [&](uint64_t k, uint64_t ver) {
          if (!c.put(k, value(k, ver)).ok()) return false;
          std::optional<std::string> v = c.get(k);  // the owner sees its own write
          return v && *v == value(k, ver);
        },
        [&](uint64_t k, uint64_t* ver) {
          uint64_t got_k;
          std::optional<std::string> v = c.get(k);
          return v && parse(*v, &got_k, ver) && got_k == k;
        }));
    CacheStats s = c.stats();
    CHECK(s.l1.entries == kKeys);
    CHECK(s.l1.bytes == kKeys);
    CHECK(s.misses == 0);
    for (uint64_t k = 0; k < kKeys; k++) {
      CHECK(*c.get(k) == std::to_string(k) + ":" + std::to_string(truth[k].load()));
    }
  }

  TEST_CASE("in-place overwrites of small trivially copyable values are never torn") {
    CacheOptions o;
    o.l1.capacity = 512;
    o.l2.capacity = 512;
    o.shards = 2;
    TieredCache<uint64_t, Wide> c(o, evstore::TrivialCacheCodec<Wide>());
    constexpr uint64_t kKeys = 100;
    std::vector<std::atomic<uint64_t>> truth(kKeys);
    for (uint64_t k = 0; k < kKeys; k++) REQUIRE(c.put(k, MakeWide(k, 0)).ok());
    CHECK(OverwriteRace(
        kKeys, 30000, truth,
        [&](uint64_t k, uint64_t ver) {
          if (!c.put(k, MakeWide(k, ver)).ok()) return false;
          std::optional<Wide> v = c.get(k);  // the owner sees its own write
          return v && v->key == k && v->ver == ver && Intact(*v);
        },
        [&](uint64_t k, uint64_t* ver) {
          std::optional<Wide> v = c.get(k);
          if (!v || v->key != k || !Intact(*v)) return false;
          *ver = v->ver;
          return true;
        }));
    CacheStats s = c.stats();
    CHECK(s.l1.entries == kKeys);
    CHECK(s.misses == 0);
    for (uint64_t k = 0; k < kKeys; k++) {
      std::optional<Wide> v = c.get(k);
      REQUIRE(v.has_value());
      CHECK(v->ver == truth[k].load());
      CHECK(Intact(*v));
    }
  }

  TEST_CASE("concurrent in-place overwrites of one key by several writers are never torn") {
    // Several threads overwrite the same few keys at once (the in-place path
    // admits writers without a lock): every copy a lookup returns, and every
    // final value, must be one whole write.
    CacheOptions o;
    o.l1.capacity = 64;
    TieredCache<uint64_t, Wide> c(o, evstore::TrivialCacheCodec<Wide>());
    constexpr uint64_t kKeys = 3;
    constexpr int kWriters = 4, kWrites = 40000;
    for (uint64_t k = 0; k < kKeys; k++) REQUIRE(c.put(k, MakeWide(k, 0)).ok());
    // last[w][k]: the last version writer w wrote to key k (0: none).
    std::vector<std::vector<uint64_t>> last(kWriters, std::vector<uint64_t>(kKeys, 0));
    std::atomic<bool> bad{false}, stop{false};
    std::vector<std::thread> readers, writers;
    for (int r = 0; r < 2; r++) {
      readers.emplace_back([&] {
        while (!stop.load()) {
          for (uint64_t k = 0; k < kKeys; k++) {
            std::optional<Wide> v = c.get(k);
            if (!v || v->key != k || !Intact(*v)) bad = true;
          }
        }
      });
    }
    for (int w = 0; w < kWriters; w++) {
      writers.emplace_back([&, w] {
        for (int i = 1; i <= kWrites; i++) {
          uint64_t k = static_cast<uint64_t>(i) % kKeys;
          uint64_t ver = (static_cast<uint64_t>(w + 1) << 32) | static_cast<uint64_t>(i);
          if (!c.put(k, MakeWide(k, ver)).ok()) bad = true;
          last[static_cast<size_t>(w)][k] = ver;
        }
      });
    }
    for (auto& t : writers) t.join();
    stop = true;
    for (auto& t : readers) t.join();
    CHECK_FALSE(bad.load());
    for (uint64_t k = 0; k < kKeys; k++) {
      std::optional<Wide> v = c.get(k);
      REQUIRE(v.has_value());
      CHECK(Intact(*v));
      bool some_last = false;
      for (int w = 0; w < kWriters; w++) some_last |= v->ver == last[static_cast<size_t>(w)][k];
      CHECK(some_last);
    }
    CacheStats s = c.stats();
    CHECK(s.l1.entries == kKeys);
    CHECK(s.l1.evictions == 0);
  }

  TEST_CASE("small values overwritten in place keep their latest value through demotion") {
    // With 8-byte keys and values an L1 entry's value lives in its index
    // slot, which in-place puts write (the node keeps the value it was
    // inserted with). Demoted to L2 after concurrent overwrites, each entry
    // must be encoded from the value lookups saw last, not the node's.
    CacheOptions o = Tiers(16, 256);
    o.adaptive_split = false;
    IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
    constexpr uint64_t kKeys = 2;
    constexpr int kWriters = 4, kWrites = 30000, kRounds = 5;
    for (int round = 0; round < kRounds; round++) {
      for (uint64_t k = 0; k < kKeys; k++) REQUIRE(c.put(k, k << 32).ok());
      std::atomic<bool> bad{false}, stop{false};
      std::vector<std::thread> threads;
      threads.emplace_back([&] {  // every value read names its key
        while (!stop.load()) {
          for (uint64_t k = 0; k < kKeys; k++) {
            std::optional<uint64_t> v = c.get(k);
            if (!v || *v >> 32 != k) bad = true;
          }
        }
      });
      for (int w = 0; w < kWriters; w++) {
        threads.emplace_back([&, w] {
          for (int i = 1; i <= kWrites; i++) {
            uint64_t k = static_cast<uint64_t>(i) % kKeys;
            uint64_t v = (k << 32) | (static_cast<uint64_t>(w) << 24) | static_cast<uint64_t>(i);
            if (!c.put(k, v).ok()) bad = true;
          }
        });
      }
      for (size_t t = 1; t < threads.size(); t++) threads[t].join();
      stop = true;
      threads[0].join();
      CHECK_FALSE(bad.load());
      std::vector<uint64_t> from_slot(kKeys);
      for (uint64_t k = 0; k < kKeys; k++) {
        std::optional<uint64_t> v = c.get(k);
        REQUIRE(v.has_value());
        from_slot[k] = *v;
      }
      // Push both keys out of L1 (no lookups of them meanwhile).
      for (uint64_t j = 0; j < 64; j++) REQUIRE(c.put(1000 + j, j).ok());
      c.reset_stats();
      for (uint64_t k = 0; k < kKeys; k++) {
        std::optional<uint64_t> v = c.get(k);  // an L2 hit: decoded from the demoted value
        REQUIRE(v.has_value());
        CHECK(*v == from_slot[k]);
      }
      CHECK(c.stats().l2.hits == kKeys);
      c.clear();
    }
  }

  TEST_CASE("a put without a TTL clears the deadline a put with one gave, also in L1 in place") {
    FakeClock clock;
    CacheOptions o = Tiers(8, 64);
    o.clock = clock.fn();
    IntCache c(o, evstore::TrivialCacheCodec<uint64_t>());
    REQUIRE(c.put(1, 10).ok());
    REQUIRE(c.put(2, 20).ok());
    REQUIRE(c.put(1, 11, seconds(1)).ok());  // the first TTL in the cache
    REQUIRE(c.put(1, 12).ok());              // same weight, in L1: must clear the deadline
    REQUIRE(c.put(2, 21).ok());
    clock.advance(seconds(2));
    CHECK(c.get(1) == std::optional<uint64_t>(12));
    CHECK(c.get(2) == std::optional<uint64_t>(21));
    REQUIRE(c.put(2, 22, seconds(1)).ok());
    clock.advance(seconds(2));
    CHECK_FALSE(c.get(2).has_value());
  }

  TEST_CASE("an overwrite that changes the weight, or is in L2, is not done in place") {
    CacheOptions o = Tiers(8, 64);
    CacheWeighers<uint64_t, uint64_t> w;
    w.decoded = [](const uint64_t&, const uint64_t& v) { return v % 4 + 1; };
    IntCache c(o, evstore::TrivialCacheCodec<uint64_t>(), w);
    REQUIRE(c.put(1, 0).ok());  // weight 1
    CHECK(c.stats().l1.bytes == 1);
    REQUIRE(c.put(1, 4).ok());  // weight 1 again: in place
    CHECK(*c.get(1) == 4);
    CHECK(c.stats().l1.bytes == 1);
    REQUIRE(c.put(1, 2).ok());  // weight 3
    CHECK(*c.get(1) == 2);
    CacheStats s = c.stats();
    CHECK(s.l1.bytes == 3);
    CHECK(s.l1.entries == 1);
    REQUIRE(c.put(1, 8).ok());  // weight 1 over weight 3: not in place either
    CHECK(*c.get(1) == 8);
    CHECK(c.stats().l1.bytes == 1);
    REQUIRE(c.put(1, 2).ok());
    // Fill L1 so that key 1 is demoted to L2; a put there re-enters L1.
    for (uint64_t k = 10; k < 20; k++) REQUIRE(c.put(k, 0).ok());
    REQUIRE(c.stats().l2.entries >= 1);
    REQUIRE(c.put(1, 5).ok());
    CHECK(*c.get(1) == 5);
    s = c.stats();
    CHECK(s.l1.bytes <= 8);
    CHECK(s.l1.entries + s.l2.entries == 11);
  }

  TEST_CASE("an L1 hit buys the entry one pass before it is demoted") {
    IntCache c(Tiers(2, 8), evstore::TrivialCacheCodec<uint64_t>());
    CHECK(c.put(1, 10).ok());
    CHECK(c.put(2, 20).ok());
    CHECK(*c.get(1) == 10);   // 1 is the oldest in L1 but was hit
    CHECK(c.put(3, 30).ok());  // so 2 is demoted instead
    CHECK(c.stats().l1.demotions == 1);
    CHECK(*c.get(1) == 10);
    CHECK(*c.get(2) == 20);
    CacheStats s = c.stats();
    CHECK(s.l1.hits == 2);
    CHECK(s.l2.hits == 1);
    // Promoting 2 demoted 3 (never hit in L1); 1 was hit again, so the next
    // insertion passes over 1 once more and demotes 2, not hit since its
    // promotion.
    CHECK(c.put(4, 40).ok());
    s = c.stats();
    CHECK(s.l1.entries == 2);
    CHECK(s.l2.entries == 2);
    CHECK(s.l1.demotions == 3);
    CHECK(*c.get(1) == 10);
    CHECK(c.stats().l1.hits == 3);
    CHECK(*c.get(2) == 20);
    CHECK(c.stats().l2.hits == 2);
  }

  TEST_CASE("repeated L1 hits are all counted, and a hot entry stays in L1 while others churn") {
    // L1 holds 16 of 256 entries; eight hot keys are read three times a
    // round while eight cold keys a round come up from L2, each promotion
    // demoting an L1 entry. Hits after the first in an epoch are not
    // replayed into the policy, but they are counted, and the epoch is short
    // enough that a hot entry is marked again before L1's second-chance hand
    // comes back to it.
    IntCache c(Tiers(16, 240), evstore::TrivialCacheCodec<uint64_t>());
    for (uint64_t k = 0; k < 256; k++) CHECK(c.put(k, k).ok());
    uint64_t hot_gets = 0, hot_l2_hits = 0, gets = 0;
    for (int round = 0; round < 300; round++) {
      for (uint64_t k = 0; k < 8; k++) {
        for (int rep = 0; rep < 3; rep++) {
          uint64_t before = c.stats().l2.hits;
          REQUIRE(c.get(k) == std::optional<uint64_t>(k));
          gets++;
          if (round < 20) continue;  // warm-up: the hot keys come up to L1
          hot_gets++;
          hot_l2_hits += c.stats().l2.hits - before;
        }
      }
      for (uint64_t j = 0; j < 8; j++) {
        uint64_t k = 8 + (static_cast<uint64_t>(round) * 8 + j) % 248;
        REQUIRE(c.get(k) == std::optional<uint64_t>(k));
        gets++;
      }
    }
    CacheStats s = c.stats();
    CHECK(s.l1.hits + s.l2.hits == gets);
    CHECK(s.misses == 0);
    CHECK(s.l1.promotions > 1000);  // the cold keys did churn L1
    CAPTURE(hot_l2_hits);
    CHECK(hot_l2_hits * 100 <= hot_gets);
  }

  TEST_CASE("the adaptive split gives L1 the capacity while L2 is no denser, and gives it back") {
    // Decoded weight: the length, times 4 while `dense` (as if decoding
    // inflated the value); encoded weight: the length.
    auto dense = std::make_shared<std::atomic<bool>>(false);
    CacheWeighers<uint64_t, std::string> w;
    w.decoded = [dense](const uint64_t&, const std::string& v) { return v.size() * (dense->load() ? 4 : 1); };
    w.encoded = [](const uint64_t&, std::string_view b) { return b.size(); };
    CacheOptions o = CacheOptions::WithTotalCapacity(16000);
    o.shards = 1;
    CHECK(o.adaptive_split);
    StrCache c(o, StringCodec(), w);
    std::mt19937_64 rng(3);
    auto churn = [&](int n) {
      for (int i = 0; i < n; i++) {
        uint64_t k = (rng() % 400) * (rng() % 400) / 40;  // skewed over 4000 keys
        if (!c.get(k)) CHECK(c.put(k, std::string(8, static_cast<char>('a' + k % 26))).ok());
      }
    };
    CacheStats s = c.stats();
    CHECK(s.l1.capacity == 2000);
    CHECK(s.l2.capacity == 14000);
    churn(40000);
    s = c.stats();
    CHECK(s.l1.capacity == 15000);
    CHECK(s.l2.capacity >= 1000);
    CHECK(s.l1.bytes <= s.l1.capacity);
    CHECK(s.l2.bytes <= s.l2.capacity);
    CHECK(s.l1.bytes + s.l2.bytes <= 16000);
    CHECK(s.l1.bytes + s.l2.bytes >= 15000);  // still full
    churn(40000);
    s = c.stats();
    CHECK(s.l2.capacity == 1000);  // L2 gave its capacity up as it emptied
    CHECK(s.l2.bytes <= 1000);
    *dense = true;  // now L2 holds four times the entries per unit
    churn(40000);
    s = c.stats();
    CHECK(s.l1.capacity == 2000);
    CHECK(s.l2.capacity == 14000);
    CHECK(s.l1.bytes <= 2000);
    CHECK(s.l1.bytes + s.l2.bytes <= 16000);
  }

  TEST_CASE("without the adaptive split each tier keeps its configured capacity") {
    IntCache c(Tiers(100, 1500), evstore::TrivialCacheCodec<uint64_t>());
    for (uint64_t i = 0; i < 20000; i++) {
      uint64_t k = (i * 7919) % 3000;
      if (!c.get(k)) CHECK(c.put(k, k).ok());
    }
    CacheStats s = c.stats();
    CHECK(s.l1.capacity == 100);
    CHECK(s.l2.capacity == 1500);
    CHECK(s.l1.bytes == 100);
    CHECK(s.l1.demotions > 0);
  }

  TEST_CASE("an L2 hit returns the value at once and is promoted by the next write or drain") {
    IntCache c(Tiers(2, 8), evstore::TrivialCacheCodec<uint64_t>());
    for (uint64_t k = 1; k <= 3; k++) CHECK(c.put(k, k * 10).ok());  // 1 is demoted
    CHECK(*c.get(1) == 10);
    CHECK(c.put(4, 40).ok());  // the write replays the hit first: 1 is promoted
    CacheStats s = c.stats();
    CHECK(s.l1.promotions == 1);
    CHECK(s.l2.hits == 1);
    CHECK(*c.get(1) == 10);
    CHECK(c.stats().l1.hits == 1);
  }

  TEST_CASE("a loader that throws wakes every waiter, and the next load of the key runs") {
    Faults f;
    StrCache c(Tiers(1000, 1000), FaultyCodec(f), FaultyWeighers(f));
    std::atomic<int> calls{0}, caught{0};
    MustReturn("get_or_load with a throwing loader", [&] {
      std::vector<std::thread> threads;
      for (int t = 0; t < 6; t++) {
        threads.emplace_back([&] {
          try {
            (void)c.get_or_load(9, [&]() -> Result<std::string> {
              calls++;
              std::this_thread::sleep_for(std::chrono::milliseconds(100));
              throw Injected();
            });
          } catch (const Injected&) {
            caught++;
          }
        });
      }
      for (auto& th : threads) th.join();
    });
    CHECK(caught.load() == 6);
    CHECK(c.stats().load_errors == static_cast<uint64_t>(calls.load()));
    Result<std::string> r = c.get_or_load(9, [] { return Result<std::string>("nine"); });
    CHECK(*r == "nine");
    CHECK(*c.get(9) == "nine");
    CHECK(CheckCache(c) == "");
    CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
  }

  TEST_CASE("when caching a loaded value throws, every waiter gets it and the next load runs") {
    Faults f;
    SUBCASE("the weigher throws for the loaded value") {
      StrCache c(Tiers(1000, 1000), FaultyCodec(f), FaultyWeighers(f));
      f.weigh_decoded = true;
      CHECK(LoadersThatGetInjected(c, 7, [] { return std::string("!seven"); }, 6) == 6);
      CHECK_FALSE(c.get(7).has_value());
      CHECK(CheckCache(c) == "");  // the failed load is out of the shard
      f.weigh_decoded = false;
      CHECK(*c.get_or_load(7, [] { return Result<std::string>("!again"); }) == "!again");
      CHECK(*c.get(7) == "!again");
      CHECK(CheckCache(c) == "");
      CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
    }
    SUBCASE("the codec's encode throws for a value that can only go to L2") {
      StrCache c(Tiers(0, 1000), FaultyCodec(f), FaultyWeighers(f));
      f.encode = true;
      CHECK(LoadersThatGetInjected(c, 7, [] { return std::string("!seven"); }, 6) == 6);
      CHECK_FALSE(c.get(7).has_value());
      CHECK(CheckCache(c) == "");  // the failed load is out of the shard
      f.encode = false;
      CHECK(*c.get_or_load(7, [] { return Result<std::string>("!again"); }) == "!again");
      CHECK(*c.get(7) == "!again");
      CHECK(CheckCache(c) == "");
      CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
    }
    SUBCASE("the clock throws before the load is taken out of the shard") {
      // With a TTL in use the owner reads the clock again after its loader:
      // the load stays registered, finished, and the next call replaces it.
      std::atomic<bool> clock_throws{false};
      CacheOptions o = Tiers(1000, 1000);
      o.clock = [&clock_throws]() -> int64_t {
        if (clock_throws) throw Injected();
        return 1'000'000'000;
      };
      o.l1.ttl = seconds(100);
      StrCache c(o, FaultyCodec(f), FaultyWeighers(f));
      std::atomic<int> caught{0};
      MustReturn("get_or_load with waiters", [&] {
        std::vector<std::thread> threads;
        for (int t = 0; t < 6; t++) {
          threads.emplace_back([&] {
            try {
              (void)c.get_or_load(7, [&]() -> Result<std::string> {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                clock_throws = true;
                return std::string("seven");
              });
            } catch (const Injected&) {
              caught++;
            }
          });
        }
        for (auto& th : threads) th.join();
      });
      CHECK(caught.load() == 6);
      clock_throws = false;
      MustReturn("the next get_or_load", [&] {
        Result<std::string> r = c.get_or_load(7, [] { return Result<std::string>("again"); });
        CHECK(*r == "again");
      });
      CHECK(*c.get(7) == "again");
      CHECK(CheckCache(c) == "");
      CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
    }
    SUBCASE("copying the loaded value throws") {
      FragileCache c(Tiers(1000, 1000), FragileCodec());
      g_fragile_armed = true;
      CHECK(LoadersThatGetInjected(c, 7, [] { return Fragile("!seven"); }, 6) == 6);
      g_fragile_armed = false;
      CHECK_FALSE(c.get(7).has_value());
      CHECK(CheckCache(c) == "");  // the failed load is out of the shard
      CHECK(c.get_or_load(7, [] { return Result<Fragile>(Fragile("!again")); })->text == "!again");
      CHECK(c.get(7)->text == "!again");
      CHECK(CheckCache(c) == "");
      CHECK(WrongResultsFromThreads(c, 1000, FragileOf) == 0);
    }
  }

  TEST_CASE("an encode that throws during a demotion evicts that entry and the write goes on") {
    Faults f;
    // L1 holds one 4-byte value: each new one demotes the last.
    StrCache c(Tiers(4, 1000), FaultyCodec(f), FaultyWeighers(f));
    SUBCASE("demoted by a put") {
      CHECK(c.put(1, "!abc").ok());
      f.encode = true;
      CHECK(c.put(2, "defg").ok());  // demotes 1, whose encode throws
      CHECK_FALSE(c.get(1).has_value());
    }
    SUBCASE("demoted after a promotion at a drain") {
      CHECK(c.put(1, "abcd").ok());
      CHECK(c.put(2, "!efg").ok());  // demotes 1
      CHECK(*c.get(1) == "abcd");    // queues 1's promotion
      f.encode = true;
      // The put's exclusive hold replays the hit first: 1 is promoted, which
      // demotes 2, whose encode throws.
      MustReturn("a put whose drain demotes, and lookups after it", [&] {
        CHECK(c.put(3, "hijk").ok());
        CHECK_FALSE(c.get(2).has_value());
        CHECK(*c.get(1) == "abcd");
      });
    }
    MustReturn("the checks after a demotion threw", [&] {
      CacheStats s = c.stats();
      CHECK(s.l1.evictions == 1);
      CHECK(s.l1.bytes <= s.l1.capacity);
      CHECK(CheckCache(c) == "");
    });
    f.encode = false;
    CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
    CHECK(CheckCache(c) == "");
  }

  TEST_CASE("a decode that throws fails its lookup, evicts the entry and leaves the shard usable") {
    Faults f;
    SUBCASE("at a lookup of an L2 entry") {
      StrCache c(Tiers(0, 1000), FaultyCodec(f), FaultyWeighers(f));
      CHECK(c.put(1, "!one").ok());
      CHECK(c.put(2, "two").ok());
      f.decode = true;
      CHECK_THROWS_AS(c.get(1), Injected);
      CHECK_THROWS_AS((void)c.get_or_load(1, [] { return Result<std::string>(std::string("x")); }),
                      Injected);
      // Writers of the shard must not wait for the lookups that threw.
      MustReturn("a put after a throwing lookup, and the checks after it", [&] {
        CHECK(c.put(3, "three").ok());
        CHECK(*c.get(2) == "two");
        f.decode = false;
        CHECK_FALSE(c.get(1).has_value());  // the drain decoded it again, which threw: evicted
        CacheStats s = c.stats();
        CHECK(s.l2.evictions == 1);
        CHECK(s.l2.hits + s.misses == 2);  // the throwing lookups count as neither
        CHECK(CheckCache(c) == "");
      });
      CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
    }
    SUBCASE("at a promotion by a drain") {
      StrCache c(Tiers(4, 1000), FaultyCodec(f), FaultyWeighers(f));
      CHECK(c.put(1, "!abc").ok());
      CHECK(c.put(2, "defg").ok());  // demotes 1
      CHECK(*c.get(1) == "!abc");    // queues 1's promotion
      f.decode = true;
      MustReturn("a put whose drain promotes, and the checks after it", [&] {
        CHECK(c.put(3, "hijk").ok());
        CHECK_FALSE(c.get(1).has_value());
        CHECK(c.stats().l2.evictions == 1);
        CHECK(CheckCache(c) == "");
      });
      CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
    }
  }

  TEST_CASE("a weigher that throws fails its put or evicts the entry it was moving") {
    Faults f;
    StrCache c(Tiers(4, 1000), FaultyCodec(f), FaultyWeighers(f));
    SUBCASE("weighing the value of a put: the put throws and the old value is gone") {
      CHECK(c.put(1, "old").ok());
      f.weigh_decoded = true;
      CHECK_THROWS_AS((void)c.put(1, "!new"), Injected);
      CHECK_FALSE(c.get(1).has_value());
    }
    SUBCASE("weighing an L2 entry being promoted at a drain") {
      CHECK(c.put(1, "!abc").ok());
      CHECK(c.put(2, "defg").ok());  // demotes 1
      CHECK(*c.get(1) == "!abc");    // queues 1's promotion
      f.weigh_decoded = true;
      MustReturn("a put whose drain promotes, and the checks after it", [&] {
        CHECK(c.put(3, "hijk").ok());
        CHECK_FALSE(c.get(1).has_value());
        CHECK(c.stats().l2.evictions == 1);
      });
    }
    SUBCASE("weighing the encoding of an entry being demoted") {
      CHECK(c.put(1, "!abc").ok());
      f.weigh_encoded = true;
      CHECK(c.put(2, "defg").ok());  // demotes 1, whose L2 weight throws
      CHECK_FALSE(c.get(1).has_value());
      CHECK(c.stats().l1.evictions == 1);
    }
    MustReturn("the checks after a weigher threw", [&] { CHECK(CheckCache(c) == ""); });
    f.weigh_decoded = f.weigh_encoded = false;
    CHECK(WrongResultsFromThreads(c, 1000, [](uint64_t k) { return std::to_string(k); }) == 0);
    CHECK(CheckCache(c) == "");
  }

  TEST_CASE("a value whose copy throws fails the lookup copying it and nothing else") {
    FragileCache c(Tiers(1000, 1000), FragileCodec());
    CHECK(c.put(1, Fragile("!one")).ok());
    CHECK(c.put(2, Fragile("two")).ok());
    g_fragile_armed = true;
    CHECK_THROWS_AS(c.get(1), Injected);
    CHECK_THROWS_AS((void)c.get_or_load(1, [] { return Result<Fragile>(Fragile("x")); }), Injected);
    // Writers of the shard must not wait for the lookups that threw.
    MustReturn("a put after a throwing lookup, and the checks after it", [&] {
      CHECK(c.put(3, Fragile("three")).ok());
      CHECK(c.get(2)->text == "two");
      g_fragile_armed = false;
      CHECK(c.get(1)->text == "!one");  // the entry stays
      CHECK(c.stats().l1.hits == 2);    // the throwing lookups count as neither hit nor miss
      CHECK(CheckCache(c) == "");
    });
    CHECK(WrongResultsFromThreads(c, 1000, FragileOf) == 0);
    CHECK(CheckCache(c) == "");
  }

  TEST_CASE("an allocation that fails in a write, load or lookup leaves the cache consistent") {
    // L1 holds 8 of these 20-byte values: most writes also demote one, and
    // encodings longer than 15 bytes take a heap block of their own.
    StrCache c(Tiers(160, 100000), StringCodec(), LengthWeighers());
    auto value = [](uint64_t k, int version) {
      return std::to_string(version) + std::string(19 - std::to_string(version).size(), 'v') +
             static_cast<char>('a' + k % 26);
    };
    std::map<uint64_t, std::string> model;  // the keys cached and their values
    int failures = 0;
    // After a run: the cache is consistent and holds what the model says
    // for k; a put or load that threw left no value for k behind.
    auto consistent = [&](uint64_t k, bool threw) {
      REQUIRE(CheckCache(c) == "");
      if (threw) model.erase(k);
      std::optional<std::string> got = c.get(k);
      CHECK((got ? model.count(k) == 1 && *got == model[k] : model.count(k) == 0));
    };
    std::string arg;
    Status st;
    // New keys (the index, the node slab, L1's clock and the sketch grow),
    // then overwrites.
    for (int version : {1, 2}) {
      for (uint64_t k = 0; k < 100; k += version) {
        failures += EachAllocationFailing(
            [&] { arg = value(k, version); },
            [&] { st = c.put(k, std::move(arg)); },
            [&](bool threw) {
              if (!threw) {
                REQUIRE(st.ok());
                model[k] = value(k, version);
              }
              consistent(k, threw);
            });
      }
    }
    // Loads of new keys (the loader's own allocation failing too).
    for (uint64_t k = 100; k < 150; k++) {
      std::optional<Result<std::string>> r;
      failures += EachAllocationFailing(
          [&] { r.reset(); },
          [&] { r.emplace(c.get_or_load(k, [&] { return Result<std::string>(value(k, 3)); })); },
          [&](bool threw) {
            if (!threw) {
              REQUIRE(r->ok());
              CHECK(**r == value(k, 3));
              model[k] = value(k, 3);
            }
            consistent(k, threw);
          });
    }
    // Lookups of L2 entries (each decodes) and the promotions that an
    // exclusive hold then carries out.
    for (uint64_t k = 0; k < 150; k += 7) {
      std::optional<std::string> got;
      failures += EachAllocationFailing(
          [&] { got.reset(); },
          [&] {
            got = c.get(k);
            (void)c.stats();
          },
          [&](bool threw) {
            REQUIRE(CheckCache(c) == "");
            if (!threw && model.count(k)) CHECK((!got || *got == model[k]));
            for (auto it = model.begin(); it != model.end();) {  // evicted entries leave the model
              std::optional<std::string> now = c.get(it->first);
              if (!now) {
                it = model.erase(it);
                continue;
              }
              CHECK(*now == it->second);
              ++it;
            }
          });
    }
    // Hundreds of failures were injected: in puts, loads and lookups, and
    // in the demotions and promotions they carry out (which evict instead,
    // so the model lost most entries on the way).
    CHECK(failures > 300);
    CHECK(WrongResultsFromThreads(c, 1000, [&](uint64_t k) { return value(k, 4); }) == 0);
    CHECK(CheckCache(c) == "");
  }
}
