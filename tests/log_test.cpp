#include <doctest/doctest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "evstore/cache.hpp"
#include "evstore/store.hpp"
#include "format/keys.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"
#include "test_util.hpp"

using namespace evstore;
using evtest::Collect;
using evtest::Ev;
using evtest::Evs;
using evtest::OpenOrDie;
using evtest::TempDir;
using evtest::WithRawDb;

namespace {

std::vector<uint64_t> Versions(const std::vector<RecordedEvent>& v) {
  std::vector<uint64_t> out;
  for (const auto& e : v) out.push_back(e.version);
  return out;
}

std::vector<uint64_t> Positions(const std::vector<RecordedEvent>& v) {
  std::vector<uint64_t> out;
  for (const auto& e : v) out.push_back(e.position);
  return out;
}

uint64_t NextPosition(Store& s) { return s.stats()->next_position; }

}  // namespace

TEST_SUITE("log") {
  TEST_CASE("open creates a store and reopening finds it") {
    TempDir dir;
    std::string path = dir.sub("db");
    {
      Store s = OpenOrDie(path);
      CHECK(s.path() == path);
      CHECK(s.append("order-1", ExpectedVersion::NoStream(), Evs(3)).ok());
      CHECK(s.close().ok());
      CHECK(s.close().ok());  // closing twice is fine
    }
    Store s = OpenOrDie(path);
    CHECK(NextPosition(s) == 3);
    auto h = s.stream_head("order-1");
    REQUIRE(h.ok());
    CHECK(h->last_version == 2);
    CHECK(h->last_position == 2);
  }

  TEST_CASE("creation is atomic and tolerates leftovers of an interrupted creation") {
    TempDir dir;
    // A creation killed half way leaves only this sibling directory behind.
    std::filesystem::create_directories(dir.sub("db.evstore-creating/junk"));
    std::ofstream(dir.sub("db.evstore-creating/CURRENT")) << "garbage";
    {
      Store s = OpenOrDie(dir.sub("db"));
      REQUIRE(s.append("x-1", ExpectedVersion::Any(), Evs(1)).ok());
    }
    CHECK_FALSE(std::filesystem::exists(dir.sub("db.evstore-creating")));
    CHECK(OpenOrDie(dir.sub("db")).stats()->next_position == 1);
    SUBCASE("a path with a trailing slash and an empty directory made beforehand") {
      std::filesystem::create_directories(dir.sub("pre"));
      Store s = OpenOrDie(dir.sub("pre/"));
      REQUIRE(s.append("y-1", ExpectedVersion::Any(), Evs(2)).ok());
      REQUIRE(s.close().ok());
      CHECK(OpenOrDie(dir.sub("pre")).stats()->next_position == 2);
    }
  }

  TEST_CASE("open refuses what is not an evstore store") {
    TempDir dir;
    SUBCASE("an empty path") { CHECK(Store::open("").status().IsInvalidArgument()); }
    SUBCASE("a regular file") {
      std::string f = dir.sub("file");
      std::ofstream(f) << "hello";
      auto r = Store::open(f);
      CHECK(r.status().IsInvalidArgument());
    }
    SUBCASE("a directory holding other files") {
      std::ofstream(dir.sub("notes.txt")) << "mine";
      auto r = Store::open(dir.path());
      CHECK(r.status().IsInvalidArgument());
      CHECK(std::string(r.status().message()).find("not an evstore store") != std::string::npos);
      // Nothing was created next to the user's file.
      CHECK_FALSE(std::filesystem::exists(dir.sub("CURRENT")));
    }
    SUBCASE("a RocksDB database of another program") {
      evtest::MakeOtherRocksDb(dir.sub("other"));
      auto r = Store::open(dir.sub("other"));
      CHECK(r.status().IsInvalidArgument());
    }
    SUBCASE("a missing store when create_if_missing is off") {
      Options o;
      o.create_if_missing = false;
      CHECK(Store::open(dir.sub("absent"), o).status().IsNotFound());
    }
  }

  TEST_CASE("open refuses a store whose format record is newer, damaged or missing") {
    TempDir dir;
    std::string path = dir.sub("db");
    { OpenOrDie(path).close().ok(); }
    SUBCASE("written by a newer evstore") {
      evtest::SetFormatRecord(path, format::EncodeFormatRecord(format::kFormatVersion + 1, 0));
      auto r = Store::open(path);
      CHECK(r.status().IsNotSupported());
      CHECK(std::string(r.status().message()).find("format " + std::to_string(format::kFormatVersion + 1)) != std::string::npos);
    }
    SUBCASE("damaged") {
      evtest::SetFormatRecord(path, std::string("\x01garbage"));
      auto r = Store::open(path);
      CHECK(r.status().IsCorruption());
      CHECK(std::string(r.status().message()).find("the format record is damaged") != std::string::npos);
    }
    SUBCASE("missing") {
      evtest::SetFormatRecord(path, std::nullopt);
      auto r = Store::open(path);
      CHECK(r.status().IsInvalidArgument());
      CHECK(std::string(r.status().message()).find("no format record") != std::string::npos);
    }
  }

  TEST_CASE("append checks every kind of expected version") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));

    SUBCASE("no_stream succeeds on a new stream and conflicts on an existing one") {
      auto a = s.append("cart-1", ExpectedVersion::NoStream(), Evs(2));
      REQUIRE(a.ok());
      CHECK(a->first_version == 0);
      CHECK(a->last_version == 1);
      auto b = s.append("cart-1", ExpectedVersion::NoStream(), Evs(1));
      CHECK(b.status().IsWrongExpectedVersion());
      CHECK(b.status().actual_version() == 1);
    }
    SUBCASE("stream_exists conflicts on a new stream and succeeds on an existing one") {
      auto a = s.append("cart-2", ExpectedVersion::StreamExists(), Evs(1));
      CHECK(a.status().IsWrongExpectedVersion());
      CHECK(a.status().actual_version() == Status::kNoStream);
      REQUIRE(s.append("cart-2", ExpectedVersion::Any(), Evs(1)).ok());
      auto b = s.append("cart-2", ExpectedVersion::StreamExists(), Evs(1));
      REQUIRE(b.ok());
      CHECK(b->first_version == 1);
    }
    SUBCASE("exact succeeds at the head and conflicts elsewhere") {
      REQUIRE(s.append("cart-3", ExpectedVersion::Any(), Evs(3)).ok());
      auto stale = s.append("cart-3", ExpectedVersion::Exact(1), Evs(1));
      CHECK(stale.status().IsWrongExpectedVersion());
      CHECK(stale.status().actual_version() == 2);
      auto missing = s.append("cart-9", ExpectedVersion::Exact(0), Evs(1));
      CHECK(missing.status().IsWrongExpectedVersion());
      CHECK(missing.status().actual_version() == Status::kNoStream);
      auto good = s.append("cart-3", ExpectedVersion::Exact(2), Evs(2));
      REQUIRE(good.ok());
      CHECK(good->first_version == 3);
      CHECK(good->last_version == 4);
    }
    SUBCASE("any appends whatever the state") {
      REQUIRE(s.append("cart-4", ExpectedVersion::Any(), Evs(1)).ok());
      auto b = s.append("cart-4", ExpectedVersion::Any(), Evs(1));
      REQUIRE(b.ok());
      CHECK(b->first_version == 1);
    }
    SUBCASE("a conflict writes nothing") {
      REQUIRE(s.append("cart-5", ExpectedVersion::Any(), Evs(2)).ok());
      uint64_t before = NextPosition(s);
      CHECK(s.append("cart-5", ExpectedVersion::Exact(0), Evs(5)).status().IsWrongExpectedVersion());
      CHECK(NextPosition(s) == before);
      CHECK(Collect(s.read_stream("cart-5", 0)).size() == 2);
      CHECK(s.stats()->conflicts == 1);
    }
  }

  TEST_CASE("append returns dense versions and gapless positions") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    auto a = s.append("a-1", ExpectedVersion::Any(), Evs(2));
    auto b = s.append("b-1", ExpectedVersion::Any(), Evs(3));
    auto c = s.append("a-1", ExpectedVersion::Exact(1), Evs(1));
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(c.ok());
    CHECK(*a == AppendResult{0, 1, 0, 1, false});
    CHECK(*b == AppendResult{0, 2, 2, 4, false});
    CHECK(*c == AppendResult{2, 2, 5, 5, false});
    auto all = Collect(s.read_all(0));
    CHECK(Positions(all) == std::vector<uint64_t>{0, 1, 2, 3, 4, 5});
    CHECK(all[5].stream == "a-1");
    CHECK(all[5].version == 2);
    CHECK(all[0].timestamp_ms > 0);
    CHECK_FALSE(all[0].id.is_nil());
    CHECK(all[0].content_type == "application/json");
  }

  TEST_CASE("a multi-stream transaction is all or nothing") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    REQUIRE(s.append("stock-1", ExpectedVersion::Any(), Evs(1)).ok());

    SUBCASE("every part commits together") {
      std::vector<StreamAppend> parts = {
          {"order-7", ExpectedVersion::NoStream(), Evs(2, "OrderPlaced")},
          {"stock-1", ExpectedVersion::Exact(0), Evs(1, "StockReserved")},
      };
      auto r = s.append_multi(parts);
      REQUIRE(r.ok());
      REQUIRE(r->size() == 2);
      CHECK((*r)[0] == AppendResult{0, 1, 1, 2, false});
      CHECK((*r)[1] == AppendResult{1, 1, 3, 3, false});
    }
    SUBCASE("one failed expectation writes nothing at all") {
      std::vector<StreamAppend> parts = {
          {"order-8", ExpectedVersion::NoStream(), Evs(2)},
          {"stock-1", ExpectedVersion::Exact(5), Evs(1)},
      };
      auto r = s.append_multi(parts);
      CHECK(r.status().IsWrongExpectedVersion());
      CHECK(r.status().actual_version() == 0);
      CHECK(r.status().part() == 1);  // stock-1's expectation failed
      CHECK(s.read_stream("order-8", 0).status().IsNotFound());
      CHECK(NextPosition(s) == 1);
    }
    SUBCASE("a stream may appear only once") {
      std::vector<StreamAppend> parts = {
          {"order-9", ExpectedVersion::Any(), Evs(1)},
          {"order-9", ExpectedVersion::Any(), Evs(1)},
      };
      CHECK(s.append_multi(parts).status().IsInvalidArgument());
      CHECK(NextPosition(s) == 1);
    }
  }

  TEST_CASE("a retried append with the same event ids is idempotent") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    std::vector<EventData> evs = {Ev("Paid", "{\"amount\":5}", Uuid::Random()),
                                  Ev("Shipped", "{}", Uuid::Random())};
    REQUIRE(s.append("order-1", ExpectedVersion::Any(), Evs(1)).ok());
    auto first = s.append("order-1", ExpectedVersion::Exact(0), evs);
    REQUIRE(first.ok());
    CHECK_FALSE(first->idempotent_replay);

    SUBCASE("the retry returns the original result and writes nothing") {
      uint64_t before = NextPosition(s);
      auto again = s.append("order-1", ExpectedVersion::Exact(0), evs);
      REQUIRE_MESSAGE(again.ok(), again.status().ToString());
      CHECK(again->idempotent_replay);
      CHECK(again->first_version == first->first_version);
      CHECK(again->last_position == first->last_position);
      CHECK(NextPosition(s) == before);
      CHECK(s.stats()->idempotent_replays == 1);
    }
    SUBCASE("the retry is recognised after a reopen") {
      REQUIRE(s.close().ok());
      s = OpenOrDie(dir.sub("db"));
      auto again = s.append("order-1", ExpectedVersion::Any(), evs);
      REQUIRE(again.ok());
      CHECK(again->idempotent_replay);
      CHECK(again->first_position == first->first_position);
    }
    SUBCASE("a stored id with other content is an error") {
      auto changed = evs;
      changed[1].data = "{\"carrier\":\"x\"}";
      auto r = s.append("order-1", ExpectedVersion::Any(), changed);
      CHECK(r.status().IsDuplicateEvent());
    }
    SUBCASE("a stored id in another stream is an error") {
      auto r = s.append("order-2", ExpectedVersion::Any(), evs);
      CHECK(r.status().IsDuplicateEvent());
      CHECK(s.read_stream("order-2", 0).status().IsNotFound());
    }
    SUBCASE("a partly stored append is an error") {
      std::vector<EventData> mixed = {evs[0], Ev("Other", "{}", Uuid::Random())};
      CHECK(s.append("order-1", ExpectedVersion::Any(), mixed).status().IsDuplicateEvent());
    }
    SUBCASE("the same id twice in one append is invalid") {
      Uuid id = Uuid::Random();
      std::vector<EventData> twice = {Ev("A", "{}", id), Ev("B", "{}", id)};
      CHECK(s.append("order-3", ExpectedVersion::Any(), twice).status().IsInvalidArgument());
    }
    SUBCASE("the same new id in two streams of one transaction is invalid") {
      Uuid id = Uuid::Random();
      std::vector<StreamAppend> parts = {{"order-5", ExpectedVersion::Any(), {Ev("A", "{}", id)}},
                                         {"order-6", ExpectedVersion::Any(), {Ev("A", "{}", id)}}};
      uint64_t before = NextPosition(s);
      CHECK(s.append_multi(parts).status().IsInvalidArgument());
      CHECK(NextPosition(s) == before);
    }
    SUBCASE("ids stored out of order are not a replay") {
      std::vector<EventData> swapped = {evs[1], evs[0]};
      CHECK(s.append("order-1", ExpectedVersion::Any(), swapped).status().IsDuplicateEvent());
    }
  }

  TEST_CASE("reads go both ways with limits and bounds") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    for (int i = 0; i < 10; i++) {
      REQUIRE(s.append("order-1", ExpectedVersion::Any(), {Ev(i % 2 ? "Odd" : "Even")}).ok());
      REQUIRE(s.append("invoice-" + std::to_string(i), ExpectedVersion::Any(), {Ev("Billed")}).ok());
    }
    // order-1 events are at even positions 0..18, invoices at odd ones.
    SUBCASE("a stream forward from a version with a limit") {
      auto v = Collect(s.read_stream("order-1", 3, Direction::kForward, 4));
      CHECK(Versions(v) == std::vector<uint64_t>{3, 4, 5, 6});
      CHECK(Positions(v) == std::vector<uint64_t>{6, 8, 10, 12});
    }
    SUBCASE("a stream backward from the end and from a version") {
      CHECK(Versions(Collect(s.read_stream("order-1", kEnd, Direction::kBackward, 3))) ==
            std::vector<uint64_t>{9, 8, 7});
      CHECK(Versions(Collect(s.read_stream("order-1", 2, Direction::kBackward))) ==
            std::vector<uint64_t>{2, 1, 0});
    }
    SUBCASE("a stream read past its end is empty") {
      CHECK(Collect(s.read_stream("order-1", 10)).empty());
    }
    SUBCASE("a missing stream is NotFound") {
      CHECK(s.read_stream("order-404", 0).status().IsNotFound());
    }
    SUBCASE("the global log both ways") {
      CHECK(Positions(Collect(s.read_all(17))) == std::vector<uint64_t>{17, 18, 19});
      CHECK(Positions(Collect(s.read_all(kEnd, Direction::kBackward, 2))) ==
            std::vector<uint64_t>{19, 18});
      CHECK(Positions(Collect(s.read_all(1, Direction::kBackward))) == std::vector<uint64_t>{1, 0});
      CHECK(Collect(s.read_all(20)).empty());
    }
    SUBCASE("by category") {
      auto inv = Collect(s.read_category("invoice", 0));
      CHECK(inv.size() == 10);
      CHECK(inv[3].stream == "invoice-3");
      auto back = Collect(s.read_category("invoice", 10, Direction::kBackward, 2));
      CHECK(Positions(back) == std::vector<uint64_t>{9, 7});
      CHECK(Collect(s.read_category("orders", 0)).empty());
      CHECK(s.read_category("order-1", 0).status().IsInvalidArgument());
    }
    SUBCASE("by event type") {
      auto odd = Collect(s.read_type("Odd", 0));
      CHECK(Versions(odd) == std::vector<uint64_t>{1, 3, 5, 7, 9});
      auto back = Collect(s.read_type("Even", kEnd, Direction::kBackward, 2));
      CHECK(Versions(back) == std::vector<uint64_t>{8, 6});
      CHECK(s.read_type("", 0).status().IsInvalidArgument());
    }
    SUBCASE("one event by position") {
      auto e = s.read_event(3);
      REQUIRE(e.ok());
      CHECK(e->stream == "invoice-1");
      CHECK(s.read_event(20).status().IsNotFound());
    }
    SUBCASE("an iterator can seek") {
      auto it = s.read_stream("order-1", 0, Direction::kForward, 2);
      REQUIRE(it.ok());
      it->Seek(7);
      std::vector<uint64_t> got;
      for (; it->Valid(); it->Next()) got.push_back(it->value().version);
      CHECK(got == std::vector<uint64_t>{7, 8});
    }
  }

  TEST_CASE("stream reads are exact when the stream's events alternate between runs and gaps") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    // A: runs of 3, 1, 4, 2 events; B fills the gaps, so A's positions are
    // adjacent within runs and jump between them.
    std::vector<uint64_t> a_pos;
    int runs[] = {3, 1, 4, 2};
    for (int r : runs) {
      auto res = s.append("a-1", ExpectedVersion::Any(), Evs(r));
      REQUIRE(res.ok());
      for (uint64_t p = res->first_position; p <= res->last_position; p++) a_pos.push_back(p);
      REQUIRE(s.append("b-1", ExpectedVersion::Any(), Evs(2)).ok());
    }
    std::vector<uint64_t> all_versions(a_pos.size());
    for (size_t i = 0; i < all_versions.size(); i++) all_versions[i] = i;
    auto fwd = Collect(s.read_stream("a-1", 0));
    CHECK(Versions(fwd) == all_versions);
    CHECK(Positions(fwd) == a_pos);
    auto back = Collect(s.read_stream("a-1", kEnd, Direction::kBackward));
    std::vector<uint64_t> rev(a_pos.rbegin(), a_pos.rend());
    CHECK(Positions(back) == rev);
    CHECK(Versions(Collect(s.read_stream("a-1", 5, Direction::kForward, 3))) ==
          std::vector<uint64_t>{5, 6, 7});
    CHECK(Versions(Collect(s.read_stream("a-1", 6, Direction::kBackward, 4))) ==
          std::vector<uint64_t>{6, 5, 4, 3});
    auto b = Collect(s.read_stream("b-1", 0));
    CHECK(b.size() == 8);
    for (size_t i = 0; i < b.size(); i++) CHECK(b[i].stream == "b-1");
  }

  TEST_CASE("point reads are served from the event cache once read") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    REQUIRE(s.append("c-1", ExpectedVersion::Any(), Evs(10)).ok());
    REQUIRE(s.reset_cache_stats().ok());
    for (int round = 0; round < 3; round++)
      for (uint64_t p = 0; p < 10; p++) {
        auto e = s.read_event(p);
        REQUIRE(e.ok());
        CHECK(e->position == p);
        CHECK(e->data == "{\"i\":" + std::to_string(p) + "}");
      }
    auto st = s.cache_stats();
    REQUIRE(st.ok());
    CHECK(st->events.misses == 10);
    CHECK(st->events.l1.hits + st->events.l2.hits == 20);
    CHECK(st->events.loads == 10);
  }

  TEST_CASE("aggregate state can be cached by stream and version with get_or_load") {
    // The cached-repository pattern: the state of a stream at its head
    // version is loaded from the log once and then served from a cache. An
    // append moves the head, so the next lookup uses a new key: never stale.
    struct Key {
      std::string stream;
      uint64_t version;
      bool operator==(const Key&) const = default;
    };
    struct KeyHash {
      size_t operator()(const Key& k) const {
        return std::hash<std::string>()(k.stream) ^ (k.version * 0x9E3779B97F4A7C15ull);
      }
    };
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    TieredCache<Key, uint64_t, KeyHash> states(CacheOptions::WithTotalCapacity(100),
                                               TrivialCacheCodec<uint64_t>());
    std::atomic<int> loads{0};
    // State: the total length of the stream's event data.
    auto state_of = [&](const std::string& stream) -> Result<uint64_t> {
      auto head = s.stream_head(stream);
      if (!head.ok()) return head.status();
      Key key{stream, head->last_version};
      return states.get_or_load(key, [&]() -> Result<uint64_t> {
        loads++;
        auto it = s.read_stream(stream, 0, Direction::kForward, key.version + 1);
        if (!it.ok()) return it.status();
        uint64_t total = 0;
        for (; it->Valid(); it->Next()) total += it->value().data.size();
        if (!it->status().ok()) return it->status();
        return total;
      });
    };
    REQUIRE(s.append("acct-9", ExpectedVersion::NoStream(), {Ev("Opened", "abc")}).ok());
    CHECK(*state_of("acct-9") == 3);
    CHECK(*state_of("acct-9") == 3);
    CHECK(loads == 1);
    REQUIRE(s.append("acct-9", ExpectedVersion::Exact(0), {Ev("Deposited", "12345")}).ok());
    CHECK(*state_of("acct-9") == 8);
    CHECK(loads == 2);
    CHECK(state_of("acct-404").status().IsNotFound());
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++) ts.emplace_back([&] { CHECK(*state_of("acct-9") == 8); });
    for (auto& t : ts) t.join();
    CHECK(loads == 2);
  }

  TEST_CASE("the stores caches can be disabled") {
    TempDir dir;
    Options o = Options::Fast();
    o.event_cache_l1_bytes = 0;
    o.event_cache_l2_bytes = 0;
    o.head_cache_entries = 0;
    Store s = OpenOrDie(dir.sub("db"), o);
    REQUIRE(s.append("d-1", ExpectedVersion::NoStream(), Evs(2)).ok());
    REQUIRE(s.append("d-1", ExpectedVersion::Exact(1), Evs(1)).ok());
    CHECK(s.append("d-1", ExpectedVersion::Exact(1), Evs(1)).status().IsWrongExpectedVersion());
    CHECK(s.stream_head("d-1")->last_version == 2);
    CHECK(s.read_event(2)->version == 2);
    auto st = s.cache_stats();
    CHECK(st->events.misses == 0);
    CHECK(st->heads.l1.entries == 0);
  }

  TEST_CASE("heads evicted from a small head cache are reloaded correctly") {
    TempDir dir;
    Options o = Options::Fast();
    o.head_cache_entries = 4;
    Store s = OpenOrDie(dir.sub("db"), o);
    std::map<std::string, uint64_t> expect;
    for (int round = 0; round < 5; round++)
      for (int i = 0; i < 20; i++) {
        std::string stream = "h-" + std::to_string(i);
        ExpectedVersion ev = expect.count(stream) ? ExpectedVersion::Exact(expect[stream])
                                                  : ExpectedVersion::NoStream();
        auto r = s.append(stream, ev, Evs(1 + i % 2));
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        expect[stream] = r->last_version;
      }
    for (auto& [stream, v] : expect) CHECK(s.stream_head(stream)->last_version == v);
    CHECK(s.cache_stats()->heads.l1.entries <= 4);
  }

  TEST_CASE("stream heads and cached events stay coherent under concurrent appends and reads") {
    TempDir dir;
    Options o = Options::Fast();
    o.head_cache_entries = 8;  // force evictions and reloads
    Store s = OpenOrDie(dir.sub("db"), o);
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 3; t++)
      writers.emplace_back([&, t] {
        for (int i = 0; i < 600; i++) {
          std::string stream = "co-" + std::to_string((t * 7 + i) % 12);
          REQUIRE(s.append(stream, ExpectedVersion::Any(), Evs(1)).ok());
        }
      });
    std::thread reader([&] {
      std::map<std::string, uint64_t> seen;
      while (!stop) {
        for (int k = 0; k < 12; k++) {
          std::string stream = "co-" + std::to_string(k);
          auto h = s.stream_head(stream);
          if (!h.ok()) continue;
          // A head never goes backwards, and the event it names is readable
          // and is the stream's event at that version.
          CHECK(h->last_version >= seen[stream]);
          seen[stream] = h->last_version;
          auto e = s.read_event(h->last_position);
          REQUIRE(e.ok());
          CHECK(e->stream == stream);
          CHECK(e->version == h->last_version);
        }
      }
    });
    for (auto& w : writers) w.join();
    stop = true;
    reader.join();
    uint64_t total = 0;
    for (int k = 0; k < 12; k++) {
      auto h = s.stream_head("co-" + std::to_string(k));
      REQUIRE(h.ok());
      total += h->last_version + 1;
      CHECK(Collect(s.read_stream("co-" + std::to_string(k), 0)).size() == h->last_version + 1);
    }
    CHECK(total == 1800);
  }

  TEST_CASE("invalid input is refused and changes nothing") {
    TempDir dir;
    Options o = Options::Fast();
    o.max_event_bytes = 1000;
    o.max_events_per_append = 5;
    o.max_stream_name_bytes = 20;
    o.max_type_name_bytes = 10;
    o.max_append_bytes = 3000;
    Store s = OpenOrDie(dir.sub("db"), o);
    auto bad = [&](std::string_view stream, std::vector<EventData> evs) {
      auto r = s.append(stream, ExpectedVersion::Any(), evs);
      CHECK_MESSAGE(r.status().IsInvalidArgument(), r.status().ToString());
      CHECK(NextPosition(s) == 0);
    };
    bad("", Evs(1));
    bad("bad\xff-utf8", Evs(1));
    bad("over\xc0\xaf", Evs(1));  // overlong encoding
    bad(std::string_view("nul\0name", 8), Evs(1));
    bad(std::string(21, 's'), Evs(1));
    bad("s-1", {});
    bad("s-1", {Ev("")});
    bad("s-1", {Ev("Type\xed\xa0\x80")});  // a surrogate
    bad("s-1", {Ev(std::string(11, 't'))});
    bad("s-1", {Ev("T", std::string(1001, 'x'))});
    bad("s-1", Evs(6));
    bad("s-1", {Ev("T", std::string(900, 'x')), Ev("T", std::string(900, 'x')),
                Ev("T", std::string(900, 'x')), Ev("T", std::string(900, 'x'))});
    auto ct = Ev("T");
    ct.content_type = std::string(200, 'c');
    bad("s-1", {ct});
    CHECK(s.append("s-1", ExpectedVersion::Any(), Evs(5)).ok());
    CHECK(s.read_stream("", 0).status().IsInvalidArgument());
    CHECK(s.stream_head("\xff").status().IsInvalidArgument());
  }

  TEST_CASE("a closed store refuses every call") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    REQUIRE(s.append("x-1", ExpectedVersion::Any(), Evs(1)).ok());
    SUBCASE("close waits for open iterators") {
      auto it = s.read_all(0);
      REQUIRE(it.ok());
      CHECK(s.close().IsBusy());
      CHECK(s.append("x-1", ExpectedVersion::Any(), Evs(1)).ok());  // still open
    }
    REQUIRE(s.close().ok());
    CHECK(s.append("x-1", ExpectedVersion::Any(), Evs(1)).status().IsClosed());
    CHECK(s.read_all(0).status().IsClosed());
    CHECK(s.read_stream("x-1", 0).status().IsClosed());
    CHECK(s.stream_head("x-1").status().IsClosed());
    CHECK(s.read_event(0).status().IsClosed());
    CHECK(s.stats().status().IsClosed());
    Store moved = std::move(s);
    CHECK(moved.append("x-1", ExpectedVersion::Any(), Evs(1)).status().IsClosed());
    CHECK(s.append("x-1", ExpectedVersion::Any(), Evs(1)).status().IsClosed());  // NOLINT
  }

  TEST_CASE("a second open of the same directory is refused while the first is open") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    auto second = Store::open(dir.sub("db"));
    CHECK_FALSE(second.ok());
    CHECK(second.status().IsIOError());
  }

  TEST_CASE("a read-only open reads a store that another handle has open and refuses writes") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    REQUIRE(s.append("ro-1", ExpectedVersion::Any(), Evs(3)).ok());
    Options ro;
    ro.read_only = true;
    auto r = Store::open(dir.sub("db"), ro);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(Collect(r->read_stream("ro-1", 0)).size() == 3);
    CHECK(r->append("ro-1", ExpectedVersion::Any(), Evs(1)).status().IsNotSupported());
    CHECK(r->close().ok());
    CHECK(Store::open(dir.sub("missing"), ro).status().IsNotFound());
    CHECK_FALSE(std::filesystem::exists(dir.sub("missing")));
  }

  TEST_CASE("a changed stored byte is reported as corruption naming the position") {
    TempDir dir;
    std::string path = dir.sub("db");
    {
      Store s = OpenOrDie(path);
      REQUIRE(s.append("acct-1", ExpectedVersion::Any(), Evs(5)).ok());
      REQUIRE(s.close().ok());
    }
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      rocksdb::ColumnFamilyHandle* events = cfs["events"];
      REQUIRE(events != nullptr);
      std::string v;
      format::Be64 key(3);
      REQUIRE(db->Get(rocksdb::ReadOptions(), events, rocksdb::Slice(key.buf, 8), &v).ok());
      v[v.size() / 2] ^= 0x20;
      REQUIRE(db->Put(rocksdb::WriteOptions(), events, rocksdb::Slice(key.buf, 8), v).ok());
    });
    Store s = OpenOrDie(path);
    auto e = s.read_event(3);
    CHECK(e.status().IsCorruption());
    CHECK(std::string(e.status().message()).find("position 3") != std::string::npos);
    auto it = s.read_stream("acct-1", 0);
    REQUIRE(it.ok());
    int seen = 0;
    for (; it->Valid(); it->Next()) seen++;
    CHECK(seen == 3);
    CHECK(it->status().IsCorruption());
    CHECK(s.read_event(2).ok());
  }

  TEST_CASE("concurrent appenders get gapless positions and dense versions") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    constexpr int kThreads = 8, kPerThread = 1500, kStreams = 5;
    std::atomic<int> conflicts{0};
    std::vector<std::vector<std::pair<std::string, AppendResult>>> acked(kThreads);
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; t++) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; i++) {
          std::string stream = "shared-" + std::to_string((t + i) % kStreams);
          std::vector<EventData> evs = {Ev("T", std::to_string(t) + ":" + std::to_string(i))};
          // Optimistic loop: read the head, append at exactly that version.
          for (;;) {
            auto h = s.stream_head(stream);
            ExpectedVersion ev = h.ok() ? ExpectedVersion::Exact(h->last_version)
                                        : ExpectedVersion::NoStream();
            auto r = s.append(stream, ev, evs);
            if (r.ok()) {
              acked[t].emplace_back(stream, *r);
              break;
            }
            REQUIRE(r.status().IsWrongExpectedVersion());
            conflicts++;
          }
        }
      });
    }
    for (auto& th : ts) th.join();
    auto all = Collect(s.read_all(0));
    REQUIRE(all.size() == size_t(kThreads) * kPerThread);
    std::set<std::string> payloads;
    std::map<std::string, uint64_t> next_version;
    for (size_t i = 0; i < all.size(); i++) {
      CHECK(all[i].position == i);
      CHECK(all[i].version == next_version[all[i].stream]++);
      payloads.insert(all[i].data);
    }
    CHECK(payloads.size() == all.size());  // nothing duplicated or lost
    for (int t = 0; t < kThreads; t++) {
      for (auto& [stream, r] : acked[t]) {
        CHECK(all[r.first_position].stream == stream);
        CHECK(all[r.first_position].version == r.first_version);
      }
    }
    auto st = s.stats();
    CHECK(st->conflicts == uint64_t(conflicts.load()));
    MESSAGE("groups " << st->commit_groups << " for " << st->appends << " appends, "
                      << conflicts.load() << " conflicts");
  }

  // commit_test.cpp holds one leader between its write and its publish;
  // here every leader lingers there a little, so readers race it often.
  TEST_CASE("what one read shows, every other read shows too, under concurrent appends") {
    TempDir dir;
    internal::Seams seams;
    seams.after_write = [](uint64_t, uint64_t) { std::this_thread::sleep_for(std::chrono::microseconds(50)); };
    auto opened = internal::OpenStore(dir.sub("db"), Options::Fast(), seams);
    REQUIRE(opened.ok());
    Store s = std::move(opened).value();
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; t++)
      writers.emplace_back([&, t] {
        for (int i = 0; i < 800; i++)
          REQUIRE(s.append("w-" + std::to_string(t), ExpectedVersion::Any(), Evs(1 + i % 3)).ok());
      });
    std::thread reader([&] {
      uint64_t from = 0;
      while (!stop) {
        auto it = s.read_all(from);
        REQUIRE(it.ok());
        for (; it->Valid(); it->Next()) {
          const EventView& v = it->value();
          REQUIRE(v.position == from);
          from++;
          // Seen in the log: readable by position, and within its stream's head.
          REQUIRE_MESSAGE(s.read_event(v.position).ok(), "position ", v.position);
          auto h = s.stream_head(v.stream);
          REQUIRE(h.ok());
          REQUIRE(h->last_version >= v.version);
        }
        REQUIRE(it->status().ok());
      }
    });
    for (auto& w : writers) w.join();
    stop = true;
    reader.join();
  }
}

// The log layer's reads for the layers above it (log/cf_cursor.hpp).
TEST_SUITE("log reads for other layers") {
  using internal::CfCursor;
  using internal::CfGet;
  using internal::CfIntProperty;
  using internal::CfSnapshot;

  // Every key of `cf` from `from` on, in the cursor's order.
  static std::vector<std::string> Keys(CfCursor& c, std::string_view from) {
    std::vector<std::string> out;
    for (c.Seek(from); c.Valid(); c.Next()) out.emplace_back(c.key());
    REQUIRE(c.status().ok());
    return out;
  }

  TEST_CASE("a cursor sees a family's keys in order, below its upper bound") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("s"));
    for (std::string name : {"c-3", "a-1", "b-2", "d-4"})
      REQUIRE(s.append(name, ExpectedVersion::Any(), Ev("t")).ok());
    const internal::StoreImpl& impl = *internal::StoreAccess::Impl(s);

    CfCursor all(impl, internal::kCfStreams);
    CHECK(!all.Valid());
    CHECK(Keys(all, "") == std::vector<std::string>{"a-1", "b-2", "c-3", "d-4"});
    CHECK(Keys(all, "b") == std::vector<std::string>{"b-2", "c-3", "d-4"});
    all.SeekToLast();
    REQUIRE(all.Valid());
    CHECK(all.key() == "d-4");
    all.SeekForPrev("c-9");
    REQUIRE(all.Valid());
    CHECK(all.key() == "c-3");

    CfCursor bounded(impl, internal::kCfStreams, {.upper = "c-3"});
    CHECK(Keys(bounded, "") == std::vector<std::string>{"a-1", "b-2"});
    bounded.SeekToLast();
    REQUIRE(bounded.Valid());
    CHECK(bounded.key() == "b-2");
  }

  TEST_CASE("a snapshot keeps cursors and point reads where it was taken") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("s"));
    REQUIRE(s.append("a-1", ExpectedVersion::Any(), Ev("t")).ok());
    const internal::StoreImpl& impl = *internal::StoreAccess::Impl(s);
    CfSnapshot snap(impl);
    REQUIRE(s.append("b-2", ExpectedVersion::Any(), Ev("t")).ok());

    internal::CfCursorOptions at_snap;
    at_snap.snapshot = &snap;
    CfCursor then(impl, internal::kCfStreams, at_snap);
    CHECK(Keys(then, "") == std::vector<std::string>{"a-1"});
    CfCursor now(impl, internal::kCfStreams);
    CHECK(Keys(now, "") == std::vector<std::string>{"a-1", "b-2"});

    std::string v;
    CHECK(CfGet(impl, internal::kCfStreams, "b-2", &v, &snap).IsNotFound());
    CHECK(CfGet(impl, internal::kCfStreams, "b-2", &v).ok());
    CHECK(!v.empty());
    CHECK(CfGet(impl, internal::kCfStreams, "a-1", &v, &snap).ok());
  }

  TEST_CASE("a cursor crosses stream prefixes of stream_index in table files") {
    // stream_index has an 8-byte prefix extractor with prefix bloom filters;
    // a seek to a stream id that has no entries must still land on the next
    // stream's, also once the entries are in table files.
    TempDir dir;
    Store s = OpenOrDie(dir.sub("s"));
    for (int i = 0; i < 3; i++) REQUIRE(s.append("a-1", ExpectedVersion::Any(), Ev("t")).ok());
    for (int i = 0; i < 2; i++) REQUIRE(s.append("b-2", ExpectedVersion::Any(), Ev("t")).ok());
    internal::StoreImpl& impl = *internal::StoreAccess::Impl(s);
    const char* kMemEntries = "rocksdb.num-entries-active-mem-table";
    CHECK(CfIntProperty(impl, internal::kCfStreamIndex, kMemEntries).value_or(0) == 5);
    REQUIRE(impl.FlushMemtables().ok());
    CHECK(CfIntProperty(impl, internal::kCfStreamIndex, kMemEntries) == std::optional<uint64_t>(0));
    CHECK(!CfIntProperty(impl, internal::kCfStreamIndex, "rocksdb.no-such-property"));

    CfCursor c(impl, internal::kCfStreamIndex);
    size_t n = 0;
    uint64_t prev_stream = 0;
    // Stream ids start at 1: id 0 has no entries.
    for (c.Seek(format::StreamIndexKey(0, 0).view()); c.Valid(); c.Next()) {
      auto k = format::DecodeStreamIndexKey(c.key());
      REQUIRE(k);
      CHECK(k->stream_id >= prev_stream);
      prev_stream = k->stream_id;
      n++;
    }
    CHECK(c.status().ok());
    CHECK(n == 5);
  }

  TEST_CASE("read errors keep RocksDB's code and text; InContext adds what was read") {
    std::vector<std::pair<rocksdb::Status, Status::Code>> cases = {
        {rocksdb::Status::Corruption("bad block"), Status::Code::kCorruption},
        {rocksdb::Status::NotFound("gone"), Status::Code::kNotFound},
        {rocksdb::Status::NotSupported("no"), Status::Code::kNotSupported},
        {rocksdb::Status::InvalidArgument("arg"), Status::Code::kInvalidArgument},
        {rocksdb::Status::Busy("busy"), Status::Code::kBusy},
        {rocksdb::Status::TryAgain("again"), Status::Code::kBusy},
        {rocksdb::Status::IOError("disk"), Status::Code::kIOError},
        {rocksdb::Status::Incomplete("part"), Status::Code::kIOError},
    };
    // Not a structured binding: CAPTURE's lambda cannot capture one in clang 14.
    for (const auto& c : cases) {
      const rocksdb::Status& rs = c.first;
      const Status::Code code = c.second;
      CAPTURE(rs.ToString());
      Status plain = internal::StatusFromRocks(rs);
      CHECK(plain.code() == code);
      CHECK(plain.message() == rs.ToString());
      Status with = internal::InContext(plain, "reading x");
      Status direct = internal::StatusFromRocks(rs, "reading x");
      CHECK(with.code() == direct.code());
      CHECK(with.message() == direct.message());
      CHECK(with.message() == "reading x: " + rs.ToString());
    }
    CHECK(internal::StatusFromRocks(rocksdb::Status::OK()).ok());
    CHECK(internal::InContext(Status::OK(), "reading x").ok());
  }

  TEST_CASE("flushing the memtables is refused once the store is closed") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("s"));
    internal::StoreImpl& impl = *internal::StoreAccess::Impl(s);
    REQUIRE(s.close().ok());
    CHECK(impl.FlushMemtables().IsClosed());
  }
}
