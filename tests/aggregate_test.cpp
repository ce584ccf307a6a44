// Aggregates: load equals a plain fold of the stream, from the cache, from a
// snapshot and cold, never stale under concurrent appends; snapshot schema
// changes, codec and evolve errors, single flight, and misuse.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "evstore/aggregate.hpp"
#include "evstore/store.hpp"
#include "format/snapshot_record.hpp"
#include "test_util.hpp"

using namespace evstore;
using evtest::TempDir;

namespace {

// A state whose every field depends on every event folded, in order.
struct Tally {
  uint64_t count = 0;
  uint64_t hash = 7;
  friend bool operator==(const Tally&, const Tally&) = default;
};

Tally Step(Tally t, std::string_view data, uint64_t version) {
  t.count++;
  for (char c : data) t.hash = t.hash * 131 + static_cast<uint8_t>(c);
  t.hash = t.hash * 31 + version;
  return t;
}

// The state by hand: every event of the stream read and folded.
Tally PlainFold(Store& s, const std::string& stream, int64_t up_to = INT64_MAX) {
  Tally t;
  auto it = s.read_stream(stream, 0);
  if (!it.ok()) return t;
  for (; it->Valid(); it->Next()) {
    if (static_cast<int64_t>(it->value().version) > up_to) break;
    t = Step(t, it->value().data, it->value().version);
  }
  REQUIRE(it->status().ok());
  return t;
}

StateCodec<Tally> TallyCodec() {
  StateCodec<Tally> c;
  c.encode = [](const Tally& t) { return std::string(reinterpret_cast<const char*>(&t), sizeof t); };
  c.decode = [](std::string_view b) -> Result<Tally> {
    if (b.size() != sizeof(Tally)) return Status::Corruption("tally: wrong size");
    Tally t;
    std::memcpy(&t, b.data(), sizeof t);
    return t;
  };
  return c;
}

AggregateType<Tally> TallyType(bool codec = true) {
  AggregateType<Tally> t;
  t.evolve = [](Tally s, const EventView& e) { return Step(s, e.data, e.version); };
  if (codec) t.codec = TallyCodec();
  return t;
}

Aggregate<Tally> OpenTally(Store& s, AggregateOptions o, AggregateType<Tally> t = TallyType()) {
  if (o.name.empty()) o.name = "tally";
  auto a = Aggregate<Tally>::open(s, o, std::move(t));
  REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  return std::move(a).value();
}

void AppendN(Store& s, const std::string& stream, int n, int tag = 0) {
  std::vector<EventData> evs;
  for (int i = 0; i < n; i++)
    evs.push_back(evtest::Ev("Counted", "e" + std::to_string(tag) + "." + std::to_string(i)));
  auto r = s.append(stream, ExpectedVersion::Any(), evs);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
}

AggregateOptions NoCache() {
  AggregateOptions o;
  o.cache_l1_bytes = 0;
  return o;
}

Loaded<Tally> MustLoad(Aggregate<Tally>& a, const std::string& stream) {
  auto l = a.load(stream);
  REQUIRE_MESSAGE(l.ok(), l.status().ToString());
  return std::move(l).value();
}

}  // namespace

TEST_SUITE("aggregate") {
  TEST_CASE("load equals a plain fold of the stream, from every source") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);

    SUBCASE("a stream with no events is the initial state at version -1") {
      Aggregate<Tally> a = OpenTally(s, {});
      auto l = MustLoad(a, "order-none");
      CHECK(l.version == -1);
      CHECK(l.source == LoadSource::kEmpty);
      CHECK(*l == Tally{});
      CHECK(l.expected() == ExpectedVersion::NoStream());
    }
    SUBCASE("cold: every event from the log") {
      AppendN(s, "order-1", 25);
      Aggregate<Tally> a = OpenTally(s, NoCache());
      auto l = MustLoad(a, "order-1");
      CHECK(l.source == LoadSource::kLog);
      CHECK(l.version == 24);
      CHECK(*l == PlainFold(s, "order-1"));
      CHECK(l.expected() == ExpectedVersion::Exact(24));
      CHECK(a.stats().events_folded == 25);
    }
    SUBCASE("from the cache, then the cache plus the newer events") {
      AppendN(s, "order-1", 10);
      Aggregate<Tally> a = OpenTally(s, {});
      auto first = MustLoad(a, "order-1");
      CHECK(first.source == LoadSource::kLog);
      auto again = MustLoad(a, "order-1");
      CHECK(again.source == LoadSource::kCache);
      CHECK(again.state == first.state);  // the very same cached state
      AppendN(s, "order-1", 3, 1);
      auto newer = MustLoad(a, "order-1");
      CHECK(newer.source == LoadSource::kCacheAndLog);
      CHECK(newer.version == 12);
      CHECK(*newer == PlainFold(s, "order-1"));
      CHECK(a.stats().events_folded == 13);  // 3 more, not 13 again
      CHECK(*first == PlainFold(s, "order-1", 9));  // the old state is unchanged
    }
    SUBCASE("from a snapshot, then the events after it") {
      AppendN(s, "order-1", 40);
      AggregateOptions o = NoCache();
      o.snapshots.every_events = 10;
      Aggregate<Tally> a = OpenTally(s, o);
      CHECK(MustLoad(a, "order-1").source == LoadSource::kLog);
      REQUIRE(a.flush_snapshots().ok());
      CHECK(a.stats().snapshots_written == 1);
      AppendN(s, "order-1", 5, 1);
      auto l = MustLoad(a, "order-1");
      CHECK(l.source == LoadSource::kSnapshot);
      CHECK(l.version == 44);
      CHECK(*l == PlainFold(s, "order-1"));
      CHECK(a.stats().events_folded == 45);  // 40 cold + 5 after the snapshot
      // Another aggregate of the same name (as after a restart) uses it too.
      Aggregate<Tally> b = OpenTally(s, o);
      auto lb = MustLoad(b, "order-1");
      CHECK(lb.source == LoadSource::kSnapshot);
      CHECK(*lb == *l);
    }
    SUBCASE("by bytes folded") {
      AggregateOptions o = NoCache();
      o.snapshots.every_bytes = 100;
      Aggregate<Tally> a = OpenTally(s, o);
      AppendN(s, "order-1", 5);  // "e0.0".."e0.4": 20 bytes
      MustLoad(a, "order-1");
      REQUIRE(a.flush_snapshots().ok());
      CHECK(a.stats().snapshots_written == 0);
      AppendN(s, "order-1", 30, 1);
      MustLoad(a, "order-1");
      REQUIRE(a.flush_snapshots().ok());
      CHECK(a.stats().snapshots_written == 1);
      CHECK(MustLoad(a, "order-1").source == LoadSource::kSnapshot);
    }
    SUBCASE("snapshots survive a reopen of the store") {
      AppendN(s, "order-1", 12);
      AggregateOptions o = NoCache();
      o.snapshots.every_events = 5;
      {
        Aggregate<Tally> a = OpenTally(s, o);
        MustLoad(a, "order-1");
      }  // the last handle writes what is queued
      REQUIRE(s.close().ok());
      s = evtest::OpenStore(dir);
      Aggregate<Tally> a = OpenTally(s, o);
      auto l = MustLoad(a, "order-1");
      CHECK(l.source == LoadSource::kSnapshot);
      CHECK(*l == PlainFold(s, "order-1"));
      CHECK(a.stats().events_folded == 0);
    }
  }

  TEST_CASE("load is never older than an append that returned before it began") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    struct Config {
      const char* name;
      AggregateOptions o;
    };
    AggregateOptions cold, cached, snap, both;
    cold.cache_l1_bytes = 0;
    snap.cache_l1_bytes = 0;
    snap.snapshots.every_events = 7;
    both.snapshots.every_events = 5;
    both.cache_l1_bytes = 64 << 10;  // small: evictions too
    for (const Config& c : {Config{"cold", cold}, Config{"cache", cached}, Config{"snapshots", snap},
                            Config{"both", both}}) {
      CAPTURE(c.name);
      AggregateOptions o = c.o;
      o.name = std::string("tally-") + c.name;
      Aggregate<Tally> a = OpenTally(s, o);
      const std::string stream = std::string("race-") + c.name;
      std::atomic<int64_t> acked{-1};
      std::atomic<bool> stop{false};
      std::atomic<int> failures{0};
      std::thread appender([&] {
        for (int i = 0; i < 300; i++) {
          auto r = s.append(stream, ExpectedVersion::Any(), evtest::Ev("Counted", "x" + std::to_string(i)));
          if (!r.ok()) {
            failures++;
            break;
          }
          acked.store(static_cast<int64_t>(r->last_version));
        }
        stop = true;
      });
      std::vector<std::thread> loaders;
      for (int t = 0; t < 3; t++) {
        loaders.emplace_back([&] {
          while (!stop) {
            int64_t before = acked.load();
            auto l = a.load(stream);
            if (!l.ok() || l->version < before ||
                l->state->count != static_cast<uint64_t>(l->version + 1)) {
              failures++;
              return;
            }
          }
        });
      }
      appender.join();
      for (auto& t : loaders) t.join();
      CHECK(failures == 0);
      REQUIRE(a.flush_snapshots().ok());
      auto l = MustLoad(a, stream);
      CHECK(l.version == 299);
      CHECK(*l == PlainFold(s, stream));
      // Every version a concurrent load saw is the fold of its prefix.
      for (int64_t v : {int64_t{0}, int64_t{150}, int64_t{299}})
        CHECK(PlainFold(s, stream, v).count == static_cast<uint64_t>(v + 1));
    }
  }

  TEST_CASE("concurrent loads of one stream at one version fold it once") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    for (int i = 0; i < 4; i++) AppendN(s, "order-1", 1000, i);
    Aggregate<Tally> a = OpenTally(s, {});
    std::vector<std::thread> ts;
    std::atomic<int> bad{0}, ready{0};
    for (int t = 0; t < 8; t++)
      ts.emplace_back([&] {
        ready++;
        while (ready < 8) std::this_thread::yield();  // all miss together
        auto l = a.load("order-1");
        if (!l.ok() || l->version != 3999) bad++;
      });
    for (auto& t : ts) t.join();
    CHECK(bad == 0);
    CHECK(a.stats().events_folded == 4000);
    CHECK(a.stats().from_log == 1);
    CHECK(a.stats().from_cache == 7);
  }

  TEST_CASE("a snapshot of another schema is ignored, never decoded") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AppendN(s, "order-1", 20);
    {
      Aggregate<Tally> v1 = OpenTally(s, NoCache());
      REQUIRE(v1.save_snapshot("order-1").ok());
      CHECK(MustLoad(v1, "order-1").source == LoadSource::kSnapshot);
    }
    // Schema 2 stores its state differently: decoding a schema-1 snapshot
    // with this codec would misread it.
    std::atomic<int> decodes{0};
    AggregateType<Tally> t2 = TallyType();
    t2.codec.encode = [](const Tally& t) { return "v2:" + std::to_string(t.count) + ":" + std::to_string(t.hash); };
    t2.codec.decode = [&decodes](std::string_view b) -> Result<Tally> {
      decodes++;
      if (b.substr(0, 3) != "v2:") return Status::Corruption("not a v2 state");
      Tally t;
      size_t colon = b.find(':', 3);
      t.count = std::stoull(std::string(b.substr(3, colon - 3)));
      t.hash = std::stoull(std::string(b.substr(colon + 1)));
      return t;
    };
    AggregateOptions o2 = NoCache();
    o2.snapshot_schema = 2;
    Aggregate<Tally> v2 = OpenTally(s, o2, t2);
    auto l = MustLoad(v2, "order-1");
    CHECK(l.source == LoadSource::kLog);
    CHECK(*l == PlainFold(s, "order-1"));
    CHECK(decodes == 0);
    CHECK(v2.stats().snapshots_ignored == 1);
    CHECK(v2.stats().snapshot_errors == 0);
    // Its own snapshot replaces the old one and is used.
    REQUIRE(v2.save_snapshot("order-1").ok());
    auto again = MustLoad(v2, "order-1");
    CHECK(again.source == LoadSource::kSnapshot);
    CHECK(*again == *l);
    CHECK(decodes == 1);
  }

  TEST_CASE("codec errors are reported and never change what load returns") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AppendN(s, "order-1", 30);

    SUBCASE("encode fails: no snapshot, the error is reported") {
      AggregateType<Tally> t = TallyType();
      t.codec.encode = [](const Tally&) -> std::string { throw std::runtime_error("disk full of tallies"); };
      AggregateOptions o = NoCache();
      o.snapshots.every_events = 10;
      Aggregate<Tally> a = OpenTally(s, o, t);
      auto l = MustLoad(a, "order-1");
      CHECK(*l == PlainFold(s, "order-1"));
      REQUIRE(a.flush_snapshots().ok());
      AggregateStats st = a.stats();
      CHECK(st.snapshots_written == 0);
      CHECK(st.snapshot_errors == 1);
      CHECK(st.last_snapshot_error.find("disk full of tallies") != std::string::npos);
      Status direct = a.save_snapshot("order-1");
      CHECK(direct.IsAborted());
      CHECK(direct.message().find("disk full of tallies") != std::string::npos);
      CHECK(MustLoad(a, "order-1").source == LoadSource::kLog);
    }
    SUBCASE("decode fails: the snapshot is skipped, the log folded") {
      {
        Aggregate<Tally> w = OpenTally(s, NoCache());
        REQUIRE(w.save_snapshot("order-1").ok());
      }
      AggregateType<Tally> t = TallyType();
      t.codec.decode = [](std::string_view) -> Result<Tally> { return Status::Corruption("unreadable tally"); };
      Aggregate<Tally> a = OpenTally(s, NoCache(), t);
      auto l = MustLoad(a, "order-1");
      CHECK(l.source == LoadSource::kLog);
      CHECK(*l == PlainFold(s, "order-1"));
      CHECK(a.stats().snapshot_errors == 1);
      CHECK(a.stats().last_snapshot_error.find("unreadable tally") != std::string::npos);
    }
    SUBCASE("a damaged snapshot record is skipped") {
      {
        Aggregate<Tally> w = OpenTally(s, NoCache());
        REQUIRE(w.save_snapshot("order-1").ok());
      }
      REQUIRE(s.close().ok());
      evtest::WithRawDb(dir.path(), [](rocksdb::DB* db, auto& cfs) {
        std::string key = format::SnapshotKey("tally", "order-1"), v;
        REQUIRE(db->Get(rocksdb::ReadOptions(), cfs["snapshots"], key, &v).ok());
        v[format::kSnapshotHeaderBytes] ^= 0x40;  // a bit of the state flips
        REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["snapshots"], key, v).ok());
      });
      s = evtest::OpenStore(dir);
      Aggregate<Tally> a = OpenTally(s, NoCache());
      auto l = MustLoad(a, "order-1");
      CHECK(l.source == LoadSource::kLog);
      CHECK(*l == PlainFold(s, "order-1"));
      CHECK(a.stats().last_snapshot_error.find("checksum mismatch") != std::string::npos);
    }
    SUBCASE("a state over max_snapshot_bytes is not written") {
      AggregateOptions o = NoCache();
      o.max_snapshot_bytes = 4;
      Aggregate<Tally> a = OpenTally(s, o);
      CHECK(a.save_snapshot("order-1").IsInvalidArgument());
      CHECK(a.stats().snapshots_written == 0);
    }
  }

  TEST_CASE("an evolve that fails fails the load and caches nothing") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AppendN(s, "order-1", 5);
    std::atomic<bool> fail{true};
    AggregateType<Tally> t = TallyType();
    t.evolve = [&fail](Tally st, const EventView& e) {
      if (fail && e.version == 3) throw std::runtime_error("bad event");
      return Step(st, e.data, e.version);
    };
    Aggregate<Tally> a = OpenTally(s, {}, t);
    auto l = a.load("order-1");
    REQUIRE(l.status().IsAborted());
    CHECK(l.status().message().find("order-1") != std::string::npos);
    CHECK(l.status().message().find("version 3") != std::string::npos);
    CHECK(l.status().message().find("bad event") != std::string::npos);
    fail = false;
    auto ok = MustLoad(a, "order-1");
    CHECK(ok.source == LoadSource::kLog);
    CHECK(*ok == PlainFold(s, "order-1"));
  }

  TEST_CASE("misuse gets clear errors") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AggregateOptions o;
    o.name = "";
    CHECK(Aggregate<Tally>::open(s, o, TallyType()).status().IsInvalidArgument());
    o.name = std::string(257, 'a');
    CHECK(Aggregate<Tally>::open(s, o, TallyType()).status().IsInvalidArgument());
    o.name = std::string("a\0b", 3);
    CHECK(Aggregate<Tally>::open(s, o, TallyType()).status().IsInvalidArgument());
    o.name = "tally";
    AggregateType<Tally> no_evolve;
    CHECK(Aggregate<Tally>::open(s, o, no_evolve).status().IsInvalidArgument());
    o.snapshots.every_events = 10;
    CHECK(Aggregate<Tally>::open(s, o, TallyType(false)).status().IsInvalidArgument());
    o.snapshots.every_events = 0;
    o.cache_l2_bytes = 1 << 20;
    CHECK(Aggregate<Tally>::open(s, o, TallyType(false)).status().IsInvalidArgument());
    AggregateType<Tally> half = TallyType();
    half.codec.decode = nullptr;
    o.cache_l2_bytes = 0;
    CHECK(Aggregate<Tally>::open(s, o, half).status().IsInvalidArgument());

    Aggregate<Tally> a = OpenTally(s, {}, TallyType(false));
    CHECK(a.load("").status().IsInvalidArgument());
    CHECK(a.load(std::string(2000, 's')).status().IsInvalidArgument());
    CHECK(a.save_snapshot("order-1").IsInvalidArgument());  // no codec
    Aggregate<Tally> c = OpenTally(s, {});
    CHECK(c.save_snapshot("order-none").IsNotFound());
    REQUIRE(s.close().ok());
    CHECK(a.load("order-1").status().IsClosed());
    AggregateOptions named;
    named.name = "tally";
    CHECK(Aggregate<Tally>::open(s, named, TallyType()).status().IsClosed());
  }

  TEST_CASE("the cache's L2 holds encoded states and serves them") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AggregateOptions o;
    o.cache_l1_bytes = 1;  // every state is demoted to L2 at once
    o.cache_l2_bytes = 1 << 20;
    Aggregate<Tally> a = OpenTally(s, o);
    for (int i = 0; i < 20; i++) AppendN(s, "order-" + std::to_string(i), 3, i);
    for (int i = 0; i < 20; i++) MustLoad(a, "order-" + std::to_string(i));
    for (int i = 0; i < 20; i++) {
      std::string stream = "order-" + std::to_string(i);
      auto l = MustLoad(a, stream);
      CHECK(l.source == LoadSource::kCache);
      CHECK(*l == PlainFold(s, stream));
    }
    CHECK(a.stats().cache.l2.hits > 0);
  }
}
