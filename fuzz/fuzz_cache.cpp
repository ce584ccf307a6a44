// Fuzz target: TieredCache (include/evstore/cache.hpp) operations compared
// against a model. The cache may drop any entry at any time (capacity,
// admission), so the model checks what must hold whatever it drops: a hit
// returns the value last written for the key, never an erased, cleared,
// replaced or expired one; a value dropped once never comes back without a
// write; tier weights stay within capacity; stats add up.
//
// Input: a configuration (tier capacities, TTLs, shards, adaptive split,
// codec failures)
// then operations: put (with a TTL), get, erase, clear, get_or_load (with a
// loader that succeeds, fails, or re-enters the cache), advance the clock,
// cleanup. A second cache of u64 digests of the same values, with unit
// weights, mirrors put, get, erase, clear and cleanup: its values are
// trivially copyable, so its overwrites of L1 entries are done in place.
//
// An operation byte of 0xC0 or more also makes one kind of callback throw
// during that operation (the codec's encode or decode, a weigher, the
// loader, the clock). The operation may then throw only as cache.hpp says;
// afterwards the cache's internals must be consistent (TestPeer) and the
// model still holds, with a put that threw leaving no value behind.
#include <algorithm>
#include <initializer_list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "evstore/cache.hpp"
#include "fuzz_input.hpp"

using namespace evstore;

namespace {

struct Entry {
  std::string value;
  int64_t written = 0;
  int64_t ttl = 0;  // per-entry, 0: none
};

// The callback an operation makes throw (see the header comment).
enum class Fault { kNone, kEncode, kDecode, kWeighDecoded, kWeighEncoded, kLoader, kClock };

struct Injected : std::runtime_error {
  Injected() : std::runtime_error("injected by the fuzz target") {}
};

}  // namespace

// The cache's internal invariants (the same as tests/cache_test.cpp checks):
// every indexed node has its tier's value and is found by its key; the
// policy's per-tier entries and weights and its queues' weight equal the
// nodes'; each tier is within capacity; no drain work is left queued.
struct evstore::cache_internal::TestPeer {
  template <typename C>
  static bool Consistent(C& c) {
    bool ok = true;
    c.ForEachShardHeld([&](auto& s, auto*) {
      uint64_t n[3] = {}, w[3] = {};
      s.index.ForEach([&](auto* node) {
        size_t t = node->tier == Tier::kL1 ? 1 : node->tier == Tier::kL2 ? 2 : 0;
        ok = ok && t != 0 && node->value.index() == t && !node->pending &&
             node->queue != Queue::kNone && s.index.Find(node->hash, node->key, c.eq_) == node;
        n[t]++;
        w[t] += node->charge;
      });
      const CacheTierStats& l1 = s.policy->stats(Tier::kL1);
      const CacheTierStats& l2 = s.policy->stats(Tier::kL2);
      ok = ok && n[0] == 0 && l1.entries == n[1] && l2.entries == n[2] && l1.bytes == w[1] &&
           l2.bytes == w[2] && s.policy->total_charge() == w[1] + w[2] && l1.bytes <= s.l1_cap &&
           l2.bytes <= s.l2_cap && s.pending.empty();
    });
    return ok;
  }
};

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  int64_t now = 1'000'000;
  CacheOptions o;
  uint8_t cfg = in.Byte();
  o.l1.capacity = in.Byte() % 64;
  o.l2.capacity = (cfg & 1) ? in.Byte() % 128 : 0;
  int64_t l1_ttl = (cfg & 2) ? 1 + in.Byte() * 1000 : 0;
  int64_t l2_ttl = (cfg & 4) ? 1 + in.Byte() * 1000 : 0;
  o.l1.ttl = std::chrono::nanoseconds(l1_ttl);
  o.l2.ttl = std::chrono::nanoseconds(l2_ttl);
  o.shards = (cfg >> 3) % 4;
  o.adaptive_split = cfg & 0x80;
  o.clock = [&now] { return now; };
  CacheOptions mirror_options = o;
  Fault fault = Fault::kNone;  // armed for the current operation
  o.clock = [&now, &fault] {
    if (fault == Fault::kClock) throw Injected();
    return now;
  };
  bool codec_breaks = cfg & 0x40;  // decode refuses values starting with '!'
  CacheCodec<std::string> codec;
  codec.encode = [&fault](const std::string& v) {
    if (fault == Fault::kEncode) throw Injected();
    return "e" + v;
  };
  codec.decode = [codec_breaks, &fault](std::string_view b) -> Result<std::string> {
    if (fault == Fault::kDecode) throw Injected();
    if (b.empty() || b[0] != 'e') return Status::Corruption("not encoded by this codec");
    if (codec_breaks && b.size() > 1 && b[1] == '!') return Status::Corruption("refused");
    return std::string(b.substr(1));
  };
  CacheWeighers<uint8_t, std::string> w;
  w.decoded = [&fault](const uint8_t&, const std::string& v) {
    if (fault == Fault::kWeighDecoded) throw Injected();
    return v.size();
  };
  w.encoded = [&fault](const uint8_t&, std::string_view b) {
    if (fault == Fault::kWeighEncoded) throw Injected();
    return b.size();
  };
  TieredCache<uint8_t, std::string> cache(o, codec, w);
  TieredCache<uint8_t, uint64_t> mirror(mirror_options, TrivialCacheCodec<uint64_t>());
  auto digest = [](const std::string& v) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : v) h = (h ^ c) * 1099511628211ull;
    return h;
  };

  std::map<uint8_t, Entry> model;         // keys that may be cached, with their value
  std::map<uint8_t, Entry> mirror_model;  // the same for the mirror
  // Whether a hit on `e` now would be expired (only when certainly past
  // every deadline that could apply: the rules differ per tier).
  auto expired = [&](const Entry& e) {
    int64_t age = now - e.written;
    if (e.ttl > 0 && age > e.ttl) return true;
    bool l1_limit = o.l1.capacity == 0 || l1_ttl > 0;
    bool l2_limit = o.l2.capacity == 0 || l2_ttl > 0;
    if (l1_limit && l2_limit) {
      int64_t longest = std::max(o.l1.capacity ? l1_ttl : 0, o.l2.capacity ? l2_ttl : 0);
      if (age > longest) return true;
    }
    return false;
  };
  auto check_in = [&](std::map<uint8_t, Entry>& m, uint8_t k, const auto& got, auto same) {
    auto it = m.find(k);
    if (!got) {
      if (it != m.end()) m.erase(it);  // gone: it cannot come back by itself
      return;
    }
    FUZZ_CHECK(it != m.end());
    FUZZ_CHECK(same(*got, it->second.value));
    FUZZ_CHECK(!expired(it->second));
  };
  auto check_hit = [&](uint8_t k, const std::optional<std::string>& got) {
    check_in(model, k, got, [](const std::string& a, const std::string& b) { return a == b; });
  };
  auto check_mirror = [&](uint8_t k) {
    check_in(mirror_model, k, mirror.get(k),
             [&](uint64_t a, const std::string& b) { return a == digest(b); });
  };

  // Runs one call of the main cache with the operation's fault armed: true
  // if it threw Injected, which only the callbacks in `may_throw` may cause
  // (the others' exceptions are contained by the cache, or not thrown).
  Fault op_fault = Fault::kNone;
  auto faulty = [&](std::initializer_list<Fault> may_throw, auto f) {
    bool threw = false;
    fault = op_fault;
    try {
      f();
    } catch (const Injected&) {
      threw = true;
      FUZZ_CHECK(std::find(may_throw.begin(), may_throw.end(), fault) != may_throw.end());
    }
    fault = Fault::kNone;
    return threw;
  };

  for (int op = 0; op < 200 && !in.empty(); op++) {
    uint8_t op_byte = in.Byte();
    uint8_t code = op_byte % 8;
    uint8_t k = in.Byte() % 16;
    op_fault = op_byte >= 0xC0 ? static_cast<Fault>((op_byte >> 3) % 7) : Fault::kNone;
    switch (code) {
      case 0:
      case 1: {
        std::string v = in.Bytes(24);
        int64_t ttl = (in.Byte() & 1) ? 1 + in.Byte() * 500 : 0;
        Status s;
        if (faulty({Fault::kEncode, Fault::kWeighDecoded, Fault::kWeighEncoded, Fault::kClock},
                   [&] { s = cache.put(k, v, std::chrono::nanoseconds(ttl)); })) {
          model.erase(k);  // a put that throws leaves no value behind
          FUZZ_CHECK(!cache.get(k).has_value());
        } else if (s.ok()) {
          model[k] = Entry{v, now, ttl};
        } else {
          FUZZ_CHECK(s.IsInvalidArgument());
          model.erase(k);
          FUZZ_CHECK(!cache.get(k).has_value());
        }
        // Unit weights: refused only if some tier exists but holds less than
        // one unit per shard.
        Status ms = mirror.put(k, digest(v), std::chrono::nanoseconds(ttl));
        if (ms.ok()) {
          mirror_model[k] = Entry{v, now, ttl};
        } else {
          FUZZ_CHECK(ms.IsInvalidArgument());
          mirror_model.erase(k);
        }
        check_mirror(k);
        break;
      }
      case 2: {
        std::optional<std::string> got;
        if (!faulty({Fault::kDecode, Fault::kClock}, [&] { got = cache.get(k); })) {
          check_hit(k, got);
        }
        check_mirror(k);
        break;
      }
      case 3: {
        bool was = false;
        FUZZ_CHECK(!faulty({}, [&] { was = cache.erase(k); }));
        if (was) FUZZ_CHECK(model.count(k));
        model.erase(k);
        FUZZ_CHECK(!cache.get(k).has_value());
        if (mirror.erase(k)) FUZZ_CHECK(mirror_model.count(k));
        mirror_model.erase(k);
        FUZZ_CHECK(!mirror.get(k).has_value());
        break;
      }
      case 4: {
        uint8_t b = in.Byte();
        if (b < 16) {
          FUZZ_CHECK(!faulty({}, [&] { cache.clear(); }));
          model.clear();
          mirror.clear();
          mirror_model.clear();
          for (uint8_t key = 0; key < 16; key++) {
            FUZZ_CHECK(!cache.get(key).has_value());
            FUZZ_CHECK(!mirror.get(key).has_value());
          }
        } else {
          faulty({Fault::kClock}, [&] { cache.cleanup(); });
          mirror.cleanup();
        }
        break;
      }
      case 5: {  // get_or_load
        uint8_t mode = in.Byte() % 3;
        std::string v = in.Bytes(24);
        bool called = false;
        Status inner;
        std::optional<Result<std::string>> r;
        bool threw = faulty(
            {Fault::kEncode, Fault::kDecode, Fault::kWeighDecoded, Fault::kWeighEncoded,
             Fault::kLoader, Fault::kClock},
            [&] {
              r.emplace(cache.get_or_load(k, [&]() -> Result<std::string> {
                called = true;
                if (fault == Fault::kLoader) throw Injected();
                if (mode == 1) return Status::IOError("load failed");
                if (mode == 2) {
                  // Re-entering the same key is refused, other keys are fine
                  // (unless they throw what this operation arms).
                  inner = cache.get_or_load(k, [] { return Result<std::string>(std::string("x")); })
                              .status();
                  try {
                    (void)cache.get(static_cast<uint8_t>(k + 1));
                  } catch (const Injected&) {
                  }
                }
                return v;
              }));
            });
        if (threw) {
          // Nothing new was cached for k: a later hit still returns the
          // model's value, or none if the model has none.
          check_hit(k, cache.get(k));
          break;
        }
        if (mode == 2 && called) FUZZ_CHECK(inner.IsBusy());
        // get(k+1) inside the loader may have dropped k+1 from the model's
        // view; it cannot have changed its value.
        if (!called) {
          FUZZ_CHECK(r->ok());
          check_hit(k, std::optional<std::string>(**r));
        } else if (mode == 1) {
          FUZZ_CHECK(r->status().IsIOError());
          model.erase(k);
        } else {
          FUZZ_CHECK(r->ok() && **r == v);
          model[k] = Entry{v, now, 0};
        }
        break;
      }
      case 6: now += 1 + in.Byte() * 250; break;
      case 7: {
        CacheStats cs;
        FUZZ_CHECK(!faulty({}, [&] { cs = cache.stats(); }));
        for (CacheStats st : {cs, mirror.stats()}) {
          // The adaptive split moves capacity between the tiers, never
          // beyond their sum.
          FUZZ_CHECK(st.l1.bytes <= st.l1.capacity && st.l2.bytes <= st.l2.capacity);
          FUZZ_CHECK(st.l1.bytes + st.l2.bytes <= o.l1.capacity + o.l2.capacity);
          if (!o.adaptive_split) {
            FUZZ_CHECK(st.l1.capacity == o.l1.capacity);
            FUZZ_CHECK(st.l2.capacity == o.l2.capacity);
          }
          FUZZ_CHECK(st.l1.entries + st.l2.entries <= 16);
          // Every entry weighs at least 1.
          FUZZ_CHECK(st.l1.entries <= st.l1.bytes && st.l2.entries <= st.l2.bytes);
        }
        break;
      }
    }
    if (op_fault != Fault::kNone) FUZZ_CHECK(evstore::cache_internal::TestPeer::Consistent(cache));
  }
  FUZZ_CHECK(evstore::cache_internal::TestPeer::Consistent(cache));
  FUZZ_CHECK(evstore::cache_internal::TestPeer::Consistent(mirror));
  return 0;
}
