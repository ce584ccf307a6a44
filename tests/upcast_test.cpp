// Upcasting: a chain v1 -> v2 -> v3 makes aggregates (from every source) and
// projections see only the newest layout, stored events never change, a
// failing upcaster fails the read naming the event, and the registry's rules.
#include <doctest/doctest.h>

#include <stdexcept>

#include "evstore/aggregate.hpp"
#include "evstore/projection.hpp"
#include "evstore/store.hpp"
#include "evstore/upcast.hpp"
#include "test_util.hpp"

using namespace evstore;
using namespace std::chrono_literals;
using evtest::Collect;
using evtest::TempDir;

namespace {

// OrderPlaced: v1 "<amount>", v2 "<amount>;<currency>" (v1 was in EUR),
// v3 "<amount>;<currency>;<shipping>" (before v3: "standard"). OrderCreated v1
// is the old name of OrderPlaced v1.
std::shared_ptr<Upcasters> Chain() {
  auto up = std::make_shared<Upcasters>();
  REQUIRE(up->add("OrderCreated", 1, 2, [](UpcastEvent& e) {
                e.type = "OrderPlaced";
                e.data += ";EUR";
                return Status::OK();
              }).ok());
  REQUIRE(up->add("OrderPlaced", 1, 2, [](UpcastEvent& e) {
                e.data += ";EUR";
                return Status::OK();
              }).ok());
  REQUIRE(up->add("OrderPlaced", 2, 3, [](UpcastEvent& e) {
                e.data += ";standard";
                return Status::OK();
              }).ok());
  return up;
}

EventData Placed(std::string data, uint32_t schema, std::string type = "OrderPlaced") {
  EventData e = evtest::Ev(std::move(type), std::move(data));
  e.schema_version = schema;
  return e;
}

// Every order's data as evolve saw it, joined: the state depends on each
// event's upcast form.
struct Seen {
  std::string log;
  int bad = 0;  // events that reached evolve in an old layout
};

AggregateType<Seen> SeenType() {
  AggregateType<Seen> t;
  t.evolve = [](Seen s, const EventView& e) {
    if (e.type != "OrderPlaced" || e.schema_version != 3) s.bad++;
    s.log += std::string(e.data) + "|";
    return s;
  };
  t.codec.encode = [](const Seen& s) { return std::to_string(s.bad) + "#" + s.log; };
  t.codec.decode = [](std::string_view b) -> Result<Seen> {
    size_t h = b.find('#');
    if (h == std::string_view::npos) return Status::Corruption("no #");
    return Seen{std::string(b.substr(h + 1)), std::stoi(std::string(b.substr(0, h)))};
  };
  return t;
}

void AppendMixed(Store& s, const std::string& stream) {
  REQUIRE(s.append(stream, ExpectedVersion::Any(),
                   {Placed("10", 1, "OrderCreated"), Placed("20", 1), Placed("30;USD", 2),
                    Placed("40;GBP;express", 3)})
              .ok());
}

constexpr const char* kUpcast = "10;EUR;standard|20;EUR;standard|30;USD;standard|40;GBP;express|";

}  // namespace

TEST_SUITE("upcast") {
  TEST_CASE("an upcaster chain v1 -> v2 -> v3 gives aggregates the newest layout from every source") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AppendMixed(s, "order-1");
    AggregateOptions o;
    o.name = "orders";
    o.upcasters = Chain();
    o.snapshots.every_events = 2;
    auto agg = Aggregate<Seen>::open(s, o, SeenType());
    REQUIRE(agg.ok());
    auto cold = agg->load("order-1");
    REQUIRE(cold.ok());
    CHECK(cold->source == LoadSource::kLog);
    CHECK(cold->state->bad == 0);
    CHECK(cold->state->log == kUpcast);
    REQUIRE(agg->flush_snapshots().ok());
    REQUIRE(s.append("order-1", ExpectedVersion::Any(), Placed("50", 1)).ok());
    auto more = agg->load("order-1");
    REQUIRE(more.ok());
    CHECK(more->source == LoadSource::kCacheAndLog);
    CHECK(more->state->log == std::string(kUpcast) + "50;EUR;standard|");
    agg->clear_cache();
    auto snap = agg->load("order-1");
    REQUIRE(snap.ok());
    CHECK(snap->source == LoadSource::kSnapshot);
    CHECK(snap->state->log == more->state->log);
    CHECK(snap->state->bad == 0);
    // The stored events are as they were written.
    auto raw = Collect(s.read_stream("order-1", 0));
    CHECK(raw[0].type == "OrderCreated");
    CHECK(raw[0].data == "10");
    CHECK(raw[0].schema_version == 1);
    CHECK(raw[2].data == "30;USD");
    // Without upcasters evolve sees the stored layouts.
    AggregateOptions plain;
    plain.name = "orders-raw";
    auto raw_agg = Aggregate<Seen>::open(s, plain, SeenType());
    REQUIRE(raw_agg.ok());
    CHECK(raw_agg->load("order-1")->state->bad == 4);
  }

  TEST_CASE("projections read upcast events") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AppendMixed(s, "order-1");
    ProjectionOptions po;
    po.upcasters = Chain();
    std::atomic<int> old_layouts{0};
    auto p = s.run_projection("amounts", po, [&](const RecordedEvent& e, ProjectionState& st) {
      if (e.schema_version != 3 || e.type != "OrderPlaced") old_layouts++;
      auto cur = st.get("all");
      return st.put("all", (cur.ok() ? *cur : std::string()) + e.data + "|");
    });
    REQUIRE(p.ok());
    uint64_t last = Collect(s.read_all(0)).back().position;
    REQUIRE((*p)->wait_for(last + 1, 60s).ok());
    CHECK(old_layouts == 0);
    CHECK(*s.projection_get("amounts", "all") == kUpcast);
  }

  TEST_CASE("a failing upcaster fails the read and names the event") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    AppendMixed(s, "order-1");
    auto up = std::make_shared<Upcasters>();
    REQUIRE(up->add("OrderPlaced", 2, 3, [](UpcastEvent&) { return Status::Corruption("unparsable amount"); }).ok());
    REQUIRE(up->add("OrderCreated", 1, 2, [](UpcastEvent&) -> Status { throw std::runtime_error("boom"); }).ok());
    AggregateOptions o;
    o.name = "orders";
    o.upcasters = up;
    auto agg = Aggregate<Seen>::open(s, o, SeenType());
    REQUIRE(agg.ok());
    auto l = agg->load("order-1");
    REQUIRE_FALSE(l.ok());
    CHECK(l.status().IsAborted());
    CHECK(l.status().message().find("'OrderCreated' version 1") != std::string::npos);
    CHECK(l.status().message().find("boom") != std::string::npos);

    // A projection stops on it (an upcaster's error is a handler error).
    REQUIRE(s.append("order-2", ExpectedVersion::Any(), Placed("5;EUR", 2)).ok());
    auto only = std::make_shared<Upcasters>();
    REQUIRE(only->add("OrderPlaced", 2, 3, [](UpcastEvent&) { return Status::Corruption("unparsable amount"); }).ok());
    ProjectionOptions po;
    po.upcasters = only;
    po.filter = SubscriptionFilter::Stream("order-2");
    po.max_retries = 1;
    auto p = s.run_projection("p", po, [](const RecordedEvent&, ProjectionState&) { return Status::OK(); });
    REQUIRE(p.ok());
    Status why = (*p)->wait();
    CHECK(why.IsAborted());  // a handler error, which says what failed where
    CHECK(why.message().find("Corruption: upcasting 'OrderPlaced' version 2: unparsable amount") !=
          std::string::npos);
    CHECK((*p)->status().phase == ProjectionStatus::Phase::kFailed);
  }

  TEST_CASE("the registry refuses what would not end or not apply") {
    Upcasters up;
    auto ok = [](UpcastEvent&) { return Status::OK(); };
    CHECK(up.add("T", 1, 2, ok).ok());
    CHECK(up.add("T", 1, 3, ok).IsInvalidArgument());  // (T, 1) twice
    CHECK(up.add("T", 2, 2, ok).IsInvalidArgument());  // not newer
    CHECK(up.add("T", 3, 1, ok).IsInvalidArgument());
    CHECK(up.add("T", 0, 1, ok).IsInvalidArgument());
    CHECK(up.add("", 1, 2, ok).IsInvalidArgument());
    CHECK(up.add(std::string("a\0b", 3), 1, 2, ok).IsInvalidArgument());
    CHECK(up.add("U", 1, 2, Upcaster()).IsInvalidArgument());
    CHECK(up.size() == 1);
    CHECK(up.applies("T", 1));
    CHECK_FALSE(up.applies("T", 2));
    // An upcaster that empties the type fails the read.
    CHECK(up.add("V", 1, 2, [](UpcastEvent& e) {
              e.type.clear();
              return Status::OK();
            }).ok());
    RecordedEvent e;
    e.type = "V";
    CHECK(up.Upcast(&e).IsInvalidArgument());
    RecordedEvent t;
    t.type = "T";
    t.data = "d";
    REQUIRE(up.Upcast(&t).ok());
    CHECK(t.schema_version == 2);
    CHECK(t.data == "d");
  }
}
