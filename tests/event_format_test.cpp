// Event records of format 2: correlation and causation ids and the schema
// version through every read path, their validation, idempotent retries;
// and a store written in format 1 (tests/fixtures/format1) that still opens,
// reads as it was written, and is upgraded.
#include <doctest/doctest.h>

#include <filesystem>

#include "evstore/aggregate.hpp"
#include "evstore/command.hpp"
#include "evstore/inspect.hpp"
#include "evstore/store.hpp"
#include "evstore/upcast.hpp"
#include "format/keys.hpp"
#include "test_util.hpp"

using namespace evstore;
using namespace std::chrono_literals;
using evtest::Collect;
using evtest::TempDir;

namespace {

EventData Traced(std::string type, std::string data, std::string corr, std::string cause,
                 uint32_t schema = 1) {
  EventData e = evtest::Ev(std::move(type), std::move(data));
  e.correlation_id = std::move(corr);
  e.causation_id = std::move(cause);
  e.schema_version = schema;
  return e;
}

void CheckTraced(const RecordedEvent& e, std::string_view corr, std::string_view cause,
                 uint32_t schema) {
  CHECK(e.correlation_id == corr);
  CHECK(e.causation_id == cause);
  CHECK(e.schema_version == schema);
}

// The fixture copied where it may be changed.
std::string CopyFixture(const TempDir& dir) {
  const char* root = std::getenv("EVSTORE_FIXTURES");
  REQUIRE_MESSAGE(root != nullptr, "EVSTORE_FIXTURES must name tests/fixtures");
  std::string to = dir.sub("format1");
  std::filesystem::copy(std::string(root) + "/format1/store", to, std::filesystem::copy_options::recursive);
  return to;
}

struct Expect {
  const char* stream;
  uint64_t version;
  const char* type;
  const char* id;  // null: generated
  const char* data;
  const char* metadata;
};
// The fixture's events (tests/fixtures/format1/README.md), by position.
const Expect kFormat1[] = {
    {"order-1", 0, "OrderPlaced", "00000000-0000-4000-8000-000000000001", "{\"total\":30}", "{\"user\":\"ada\"}"},
    {"order-1", 1, "ItemAdded", "00000000-0000-4000-8000-000000000002", "{\"sku\":\"A\"}", ""},
    {"order-1", 2, "OrderPaid", "00000000-0000-4000-8000-000000000003", "{\"amount\":30}", ""},
    {"order-2", 0, "OrderPlaced", nullptr, "{\"total\":5}", ""},
    {"order-2", 1, "OrderCancelled", nullptr, "{}", ""},
    {"account-9", 0, "Opened", nullptr, "{\"owner\":\"bob\"}", ""},
};

void CheckFormat1Events(Store& s) {
  auto all = Collect(s.read_all(0));
  REQUIRE(all.size() == 6);
  for (size_t p = 0; p < 6; p++) {
    CAPTURE(p);
    const Expect& x = kFormat1[p];
    const RecordedEvent& e = all[p];
    CHECK(e.position == p);
    CHECK(e.stream == x.stream);
    CHECK(e.version == x.version);
    CHECK(e.type == x.type);
    if (x.id) CHECK(e.id == *Uuid::Parse(x.id));
    CHECK(e.data == x.data);
    CHECK(e.metadata == x.metadata);
    CHECK(e.content_type == "application/json");
    CheckTraced(e, "", "", 1);  // fields format 1 did not have
    auto one = s.read_event(p);
    REQUIRE(one.ok());
    CHECK(one->id == e.id);
    CHECK(one->data == e.data);
  }
  auto order1 = Collect(s.read_stream("order-1", 0));
  REQUIRE(order1.size() == 3);
  CHECK(order1[2].type == "OrderPaid");
  CHECK(Collect(s.read_category("order", 0)).size() == 5);
  CHECK(Collect(s.read_type("OrderPlaced", 0)).size() == 2);
  auto cp = s.get_checkpoint("reader");
  REQUIRE(cp.ok());
  CHECK(cp->position == 4);
}

}  // namespace

TEST_SUITE("event_format") {
  TEST_CASE("correlation, causation and schema version come back from every read") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    REQUIRE(s.append("order-1", ExpectedVersion::NoStream(),
                     {Traced("Placed", "1", "checkout-7", "cmd-1", 2), evtest::Ev("Noted")})
                .ok());
    REQUIRE(s.append_multi(std::vector<StreamAppend>{
                               {"order-2", ExpectedVersion::Any(), {Traced("Placed", "2", "checkout-8", "cmd-2", 3)}}})
                .ok());
    auto stream = Collect(s.read_stream("order-1", 0));
    REQUIRE(stream.size() == 2);
    CheckTraced(stream[0], "checkout-7", "cmd-1", 2);
    CheckTraced(stream[1], "", "", 1);  // the defaults
    auto all = Collect(s.read_all(0));
    REQUIRE(all.size() == 3);
    CheckTraced(all[2], "checkout-8", "cmd-2", 3);
    CheckTraced(Collect(s.read_type("Placed", 0))[1], "checkout-8", "cmd-2", 3);
    auto one = s.read_event(0);
    REQUIRE(one.ok());
    CheckTraced(*one, "checkout-7", "cmd-1", 2);
    // Subscriptions deliver them too.
    auto sub = s.subscribe(SubscribeOptions());
    REQUIRE(sub.ok());
    auto d = sub->next(5s);
    REQUIRE(d.ok());
    REQUIRE(d->events.size() == 3);
    CheckTraced(d->events[0], "checkout-7", "cmd-1", 2);
    // And the inspector shows them.
    std::string text, json;
    inspect::DumpOptions o;
    REQUIRE(inspect::Dump(s, o, [&](std::string_view t) { text.append(t); }).ok());
    o.format = inspect::DumpFormat::kJson;
    REQUIRE(inspect::Dump(s, o, [&](std::string_view t) { json.append(t); }).ok());
    CHECK(text.find(" correlation=checkout-7 causation=cmd-1 schema=2\n") != std::string::npos);
    CHECK(json.find("\"correlation_id\":\"checkout-8\",\"causation_id\":\"cmd-2\",\"schema_version\":3}") !=
          std::string::npos);
    CHECK(json.find("\"correlation_id\":\"\",\"causation_id\":\"\",\"schema_version\":1}") != std::string::npos);
  }

  TEST_CASE("bad provenance fields and schema versions are refused and change nothing") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    std::string big(kMaxProvenanceBytes + 1, 'c');
    for (EventData e : {Traced("T", "x", big, ""), Traced("T", "x", "", big),
                        Traced("T", "x", std::string("a\0b", 3), ""), Traced("T", "x", "", "\xff\xfe"),
                        Traced("T", "x", "", "", 0)}) {
      CHECK(s.append("s-1", ExpectedVersion::Any(), e).status().IsInvalidArgument());
    }
    CHECK(s.stream_head("s-1").status().IsNotFound());
    CHECK(s.append("s-1", ExpectedVersion::Any(), Traced("T", "x", std::string(kMaxProvenanceBytes, 'c'), "")).ok());
  }

  TEST_CASE("an idempotent retry ignores provenance but not the schema version") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Uuid id = Uuid::Random();
    EventData e = Traced("Paid", "10", "corr-a", "cause-a", 2);
    e.id = id;
    auto first = s.append("pay-1", ExpectedVersion::NoStream(), e);
    REQUIRE(first.ok());
    e.correlation_id = "corr-b";
    e.causation_id = "";
    auto again = s.append("pay-1", ExpectedVersion::NoStream(), e);
    REQUIRE(again.ok());
    CHECK(again->idempotent_replay);
    CHECK(again->first_position == first->first_position);
    CheckTraced(*s.read_event(first->first_position), "corr-a", "cause-a", 2);  // as first written
    e.schema_version = 3;
    CHECK(s.append("pay-1", ExpectedVersion::NoStream(), e).status().IsDuplicateEvent());
  }

  TEST_CASE("a store of format 1 opens, reads as it was written, and is upgraded") {
    TempDir dir;
    std::string path = CopyFixture(dir);

    SUBCASE("read-only, it is left as it is") {
      Options ro;
      ro.read_only = true;
      Store s = evtest::OpenOrDie(path, ro);
      CheckFormat1Events(s);
      auto info = inspect::GetInfo(s);
      REQUIRE_MESSAGE(info.ok(), info.status().ToString());
      CHECK(info->format_version == 1);
      CHECK(info->event_count == 6);
      // The command log did not exist in format 1: it reads as empty.
      CHECK(LookupCommand(s, "any").status().IsNotFound());
      REQUIRE(s.close().ok());
      // Still format 1 on disk: a format-1 build could open it.
      Store again = evtest::OpenOrDie(path, ro);
      CHECK(inspect::GetInfo(again)->format_version == 1);
    }
    SUBCASE("read-write, it is upgraded to format 2 and takes new events") {
      Store s = evtest::OpenOrDie(path, Options());
      CheckFormat1Events(s);
      CHECK(inspect::GetInfo(s)->format_version == format::kFormatVersion);
      // The old events' ids still make retries idempotent.
      EventData placed = evtest::Ev("OrderPlaced", "{\"total\":30}", *Uuid::Parse(kFormat1[0].id));
      placed.metadata = "{\"user\":\"ada\"}";
      auto replay = s.append("order-1", ExpectedVersion::NoStream(), placed);
      REQUIRE(replay.ok());
      CHECK(replay->idempotent_replay);
      CHECK(replay->first_position == 0);
      // New events carry the new fields next to the old ones.
      auto r = s.append("order-1", ExpectedVersion::Exact(2), Traced("OrderShipped", "{}", "ship-1", "cmd-9", 2));
      REQUIRE(r.ok());
      CHECK(r->first_version == 3);
      CHECK(r->first_position == 6);
      auto order1 = Collect(s.read_stream("order-1", 0));
      REQUIRE(order1.size() == 4);
      CheckTraced(order1[0], "", "", 1);
      CheckTraced(order1[3], "ship-1", "cmd-9", 2);
      // The command side works on it: old events fold, commands log.
      struct Total {
        int events = 0;
      };
      AggregateType<Total> t;
      t.evolve = [](Total x, const EventView&) {
        x.events++;
        return x;
      };
      AggregateOptions ao;
      ao.name = "total";
      auto agg = Aggregate<Total>::open(s, ao, t);
      REQUIRE(agg.ok());
      Command c;
      c.type = "Note";
      c.stream = "order-1";
      c.id = "note-1";
      auto handled = HandleCommand<Total>(*agg, c, [](const Total& x, const Command&) {
        return Decision::Accept({evtest::Ev("Noted", std::to_string(x.events))});
      });
      REQUIRE_MESSAGE(handled.ok(), handled.status().ToString());
      CHECK(Collect(s.read_stream("order-1", 4))[0].data == "4");
      REQUIRE(s.close().ok());

      Options ro;
      ro.read_only = true;
      Store reopened = evtest::OpenOrDie(path, ro);
      CHECK(inspect::GetInfo(reopened)->format_version == format::kFormatVersion);
      CHECK(LookupCommand(reopened, "note-1").ok());
      CHECK(Collect(reopened.read_all(0)).size() == 8);
    }
  }
}
