// Commands: decide on the loaded state, append with its version, retry
// conflicts without losing an update; the command log's at-most-once across
// threads and reopens; domain errors; retention; the registry; misuse.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "evstore/aggregate.hpp"
#include "evstore/command.hpp"
#include "evstore/store.hpp"
#include "test_util.hpp"

using namespace evstore;
using namespace std::chrono_literals;
using evtest::TempDir;

namespace {

// A counter whose events carry the new value: a decision made on a stale
// state writes a stale value (a lost update) unless the append's
// expectation stops it.
struct Counter {
  int64_t value = 0;
};

AggregateType<Counter> CounterType() {
  AggregateType<Counter> t;
  t.evolve = [](Counter c, const EventView& e) {
    c.value = std::stoll(std::string(e.data));
    return c;
  };
  return t;
}

Aggregate<Counter> OpenCounter(Store& s, const std::string& name = "counter") {
  AggregateOptions o;
  o.name = name;
  auto a = Aggregate<Counter>::open(s, o, CounterType());
  REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  return std::move(a).value();
}

EventData SetTo(int64_t v) { return evtest::Ev("Set", std::to_string(v)); }

// "Add": payload is the amount; refuses to go below zero.
Decision Add(const Counter& c, const Command& cmd) {
  int64_t n = std::stoll(cmd.payload.empty() ? "1" : cmd.payload);
  if (c.value + n < 0) return Decision::Reject("insufficient", "value " + std::to_string(c.value));
  return Decision::Accept({SetTo(c.value + n)});
}

Command Cmd(std::string stream, std::string payload = "1", std::string id = "") {
  Command c;
  c.type = "Add";
  c.stream = std::move(stream);
  c.payload = std::move(payload);
  c.id = std::move(id);
  return c;
}

CommandResult MustHandle(Aggregate<Counter>& a, const Command& c, CommandOptions o = {}) {
  auto r = HandleCommand<Counter>(a, c, Add, o);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

uint64_t StreamLength(Store& s, const std::string& stream) {
  auto h = s.stream_head(stream);
  return h.ok() ? h->last_version + 1 : 0;
}

}  // namespace

TEST_SUITE("command") {
  TEST_CASE("handle decides on the loaded state and appends with its version") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    CommandResult r = MustHandle(a, Cmd("counter-1", "5"));
    CHECK(r.accepted());
    CHECK(r.events == 1);
    CHECK(r.tries == 1);
    CHECK_FALSE(r.from_log);
    CHECK(r.append.first_version == 0);
    r = MustHandle(a, Cmd("counter-1", "3"));
    CHECK(r.append.first_version == 1);
    CHECK(a.load("counter-1")->state->value == 8);

    SUBCASE("a domain error is a result and appends nothing") {
      CommandResult no = MustHandle(a, Cmd("counter-1", "-100"));
      CHECK_FALSE(no.accepted());
      REQUIRE(no.error);
      CHECK(no.error->code == "insufficient");
      CHECK(no.error->message == "value 8");
      CHECK(no.events == 0);
      CHECK(StreamLength(s, "counter-1") == 2);
    }
    SUBCASE("a decision without events appends nothing") {
      auto none = HandleCommand<Counter>(a, Cmd("counter-1"),
                                         [](const Counter&, const Command&) { return Decision::Accept(); });
      REQUIRE(none.ok());
      CHECK(none->accepted());
      CHECK(none->events == 0);
      CHECK(StreamLength(s, "counter-1") == 2);
    }
  }

  TEST_CASE("a command's events carry its correlation id and, as causation, its id") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    Command c = Cmd("counter-1", "1", "cmd-1");
    c.correlation_id = "checkout-9";
    MustHandle(a, c);
    MustHandle(a, Cmd("counter-1", "1", "cmd-2"));  // no correlation: the command id
    MustHandle(a, Cmd("counter-1", "1"));           // no id: none
    auto own = HandleCommand<Counter>(a, Cmd("counter-1", "1", "cmd-3"), [](const Counter& st, const Command&) {
      EventData e = SetTo(st.value + 1);
      e.correlation_id = "mine";
      e.causation_id = "event-7";
      return Decision::Accept({e});
    });
    REQUIRE(own.ok());
    auto events = evtest::Collect(s.read_stream("counter-1", 0));
    REQUIRE(events.size() == 4);
    CHECK(events[0].correlation_id == "checkout-9");
    CHECK(events[0].causation_id == "cmd-1");
    CHECK(events[1].correlation_id == "cmd-2");
    CHECK(events[1].causation_id == "cmd-2");
    CHECK(events[2].correlation_id.empty());
    CHECK(events[2].causation_id.empty());
    CHECK(events[3].correlation_id == "mine");  // decide's own are kept
    CHECK(events[3].causation_id == "event-7");
    Command bad = Cmd("counter-1", "1", "cmd-4");
    bad.correlation_id = std::string(300, 'c');
    CHECK(HandleCommand<Counter>(a, bad, Add).status().IsInvalidArgument());
  }

  TEST_CASE("8 concurrent senders on one stream lose no update") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    constexpr int kSenders = 8, kEach = 40;
    CommandOptions o;
    o.max_tries = 1000;
    o.initial_backoff = 50us;
    o.max_backoff = 2ms;
    std::atomic<int64_t> accepted{0}, tries{0}, failed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kSenders; t++)
      ts.emplace_back([&] {
        for (int i = 0; i < kEach; i++) {
          auto r = HandleCommand<Counter>(a, Cmd("counter-1"), Add, o);
          if (!r.ok()) {
            failed++;
            continue;
          }
          accepted += r->accepted() ? 1 : 0;
          tries += r->tries;
        }
      });
    for (auto& t : ts) t.join();
    CHECK(failed == 0);
    CHECK(accepted == kSenders * kEach);
    // Each accepted command moved the counter by one: no decision was made
    // on a stale state.
    CHECK(a.load("counter-1")->state->value == accepted);
    CHECK(StreamLength(s, "counter-1") == static_cast<uint64_t>(accepted));
    MESSAGE(tries.load() << " tries for " << accepted.load() << " commands");
  }

  TEST_CASE("a conflict that never clears ends after max_tries") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    int decides = 0;
    // Every decide lets another writer in first.
    auto r = HandleCommand<Counter>(
        a, Cmd("counter-1"),
        [&](const Counter& c, const Command& cmd) {
          decides++;
          REQUIRE(s.append("counter-1", ExpectedVersion::Any(), SetTo(100 + decides)).ok());
          return Add(c, cmd);
        },
        CommandOptions{3, 10us, 100us, 0.5});
    CHECK(r.status().IsWrongExpectedVersion());
    CHECK(decides == 3);
    CHECK(StreamLength(s, "counter-1") == 3);  // only the other writer's events
  }

  TEST_CASE("a command id is handled once, across threads") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    constexpr int kThreads = 8, kIds = 30;
    CommandOptions o;
    o.max_tries = 1000;
    o.max_backoff = 2ms;
    std::mutex mu;
    std::map<std::string, std::vector<CommandResult>> results;
    std::atomic<int> failed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; t++)
      ts.emplace_back([&] {
        for (int i = 0; i < kIds; i++) {
          std::string id = "cmd-" + std::to_string(i);
          // Every third command is refused: its record is all it writes, so
          // no expected version stands between two handlers of its id.
          std::string amount = i % 3 == 2 ? "-1000" : "1";
          auto r = HandleCommand<Counter>(a, Cmd("counter-" + std::to_string(i % 3), amount, id), Add, o);
          if (!r.ok()) {
            failed++;
            continue;
          }
          std::lock_guard<std::mutex> l(mu);
          results[id].push_back(*r);
        }
      });
    for (auto& t : ts) t.join();
    CHECK(failed == 0);
    uint64_t events = 0;
    for (int k = 0; k < 3; k++) events += StreamLength(s, "counter-" + std::to_string(k));
    CHECK(events == kIds - kIds / 3);  // one event per accepted id, however many threads sent it
    // (Named copies: clang 14 cannot capture structured bindings.)
    for (auto& entry : results) {
      const std::string& id = entry.first;
      std::vector<CommandResult>& rs = entry.second;
      CAPTURE(id);
      REQUIRE(rs.size() == kThreads);
      int fresh = 0;
      for (const CommandResult& r : rs) {
        fresh += r.from_log ? 0 : 1;
        CHECK(r.accepted() == rs[0].accepted());
        CHECK(r.events == (r.accepted() ? 1 : 0));
        CHECK(r.append == rs[0].append);  // everyone got the one outcome
        CHECK(r.handled_ms == rs[0].handled_ms);
      }
      CHECK(fresh == 1);
    }
  }

  TEST_CASE("a repeated command id returns the original outcome, also after a reopen") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    CommandResult first, rejected;
    {
      Aggregate<Counter> a = OpenCounter(s);
      first = MustHandle(a, Cmd("counter-1", "2", "deposit-1"));
      rejected = MustHandle(a, Cmd("counter-1", "-5", "withdraw-1"));
      REQUIRE_FALSE(rejected.accepted());
      MustHandle(a, Cmd("counter-1", "4"));  // the stream moves on meanwhile
    }
    REQUIRE(s.close().ok());
    s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    CommandResult again = MustHandle(a, Cmd("counter-1", "2", "deposit-1"));
    CHECK(again.from_log);
    CHECK(again.tries == 0);
    CHECK(again.append == first.append);
    CHECK(again.events == 1);
    CHECK(again.handled_ms == first.handled_ms);
    // The rejection stays a rejection, although the state would now allow it.
    CommandResult no = MustHandle(a, Cmd("counter-1", "-5", "withdraw-1"));
    CHECK(no.from_log);
    REQUIRE(no.error);
    CHECK(no.error == rejected.error);
    CHECK(StreamLength(s, "counter-1") == 2);
    CHECK(a.load("counter-1")->state->value == 6);

    auto looked = LookupCommand(s, "deposit-1");
    REQUIRE(looked.ok());
    CHECK(looked->append == first.append);
    CHECK(LookupCommand(s, "never-sent").status().IsNotFound());

    SUBCASE("the same id for another command is refused") {
      CHECK(HandleCommand<Counter>(a, Cmd("counter-1", "3", "deposit-1"), Add).status().IsDuplicateEvent());
      CHECK(HandleCommand<Counter>(a, Cmd("counter-2", "2", "deposit-1"), Add).status().IsDuplicateEvent());
      CHECK(StreamLength(s, "counter-1") == 2);
    }
  }

  TEST_CASE("retention deletes the oldest command records by count and by age") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    for (int i = 0; i < 10; i++) {
      MustHandle(a, Cmd("counter-1", "1", "c" + std::to_string(i)));
      std::this_thread::sleep_for(2ms);  // distinct handled_ms, so "oldest" is well defined
    }
    auto n = PruneCommandLog(s, CommandRetention{0ms, 4});
    REQUIRE(n.ok());
    CHECK(*n == 6);
    for (int i = 0; i < 10; i++)
      CHECK(LookupCommand(s, "c" + std::to_string(i)).ok() == (i >= 6));
    // A pruned id is handled afresh.
    CommandResult r = MustHandle(a, Cmd("counter-1", "1", "c0"));
    CHECK_FALSE(r.from_log);
    CHECK(StreamLength(s, "counter-1") == 11);
    n = PruneCommandLog(s, CommandRetention{});
    REQUIRE(n.ok());
    CHECK(*n == 0);
    std::this_thread::sleep_for(5ms);
    n = PruneCommandLog(s, CommandRetention{1ms, 0});
    REQUIRE(n.ok());
    CHECK(*n == 5);
    CHECK(LookupCommand(s, "c9").status().IsNotFound());
  }

  TEST_CASE("a command bus routes commands by type") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    CommandBusOptions bo;
    bo.retention.max_count = 2;
    bo.retention_interval = 5ms;
    auto bus = CommandBus::Create(s, bo);
    REQUIRE(bus.ok());
    REQUIRE((*bus)->register_handler<Counter>("Add", a, Add).ok());
    REQUIRE((*bus)->register_handler<Counter>("Reset", a, [](const Counter&, const Command&) {
                      return Decision::Accept({SetTo(0)});
                    }).ok());
    CHECK((*bus)->register_handler<Counter>("Add", a, Add).IsInvalidArgument());
    CHECK((*bus)->register_handler<Counter>("", a, Add).IsInvalidArgument());
    CHECK((*bus)->register_handler<Counter>("Empty", a, Decide<Counter>()).IsInvalidArgument());
    CHECK((*bus)->has_handler("Reset"));
    CHECK_FALSE((*bus)->has_handler("Nope"));

    for (int i = 0; i < 5; i++) REQUIRE((*bus)->handle(Cmd("counter-1", "2", "b" + std::to_string(i))).ok());
    Command reset = Cmd("counter-1");
    reset.type = "Reset";
    REQUIRE((*bus)->handle(reset).ok());
    CHECK(a.load("counter-1")->state->value == 0);
    Command unknown = Cmd("counter-1");
    unknown.type = "Nope";
    CHECK((*bus)->handle(unknown).status().IsNotFound());
    // The retention thread keeps the log at two records.
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (LookupCommand(s, "b2").ok()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(1ms);
    }
    CHECK(LookupCommand(s, "b4").ok());

    TempDir other;
    Store s2 = evtest::OpenStore(other);
    auto bus2 = CommandBus::Create(s2);
    REQUIRE(bus2.ok());
    CHECK((*bus2)->register_handler<Counter>("Add", a, Add).IsInvalidArgument());  // another store
  }

  TEST_CASE("bad commands and decisions get clear errors and append nothing") {
    TempDir dir;
    Store s = evtest::OpenStore(dir);
    Aggregate<Counter> a = OpenCounter(s);
    auto handle = [&](Command c, Decide<Counter> d = Add) { return HandleCommand<Counter>(a, c, d).status(); };
    Command c = Cmd("counter-1");
    c.type = "";
    CHECK(handle(c).IsInvalidArgument());
    c.type = std::string(257, 't');
    CHECK(handle(c).IsInvalidArgument());
    c = Cmd("counter-1", "1", std::string(257, 'i'));
    CHECK(handle(c).IsInvalidArgument());
    c = Cmd("counter-1", "1", std::string("a\0b", 3));
    CHECK(handle(c).IsInvalidArgument());
    c = Cmd("counter-1", std::string((4u << 20) + 1, '1'));
    CHECK(handle(c).IsInvalidArgument());
    CHECK(handle(Cmd("")).IsInvalidArgument());  // no stream
    CHECK(HandleCommand<Counter>(a, Cmd("counter-1"), Decide<Counter>()).status().IsInvalidArgument());
    CHECK(handle(Cmd("counter-1"), [](const Counter&, const Command&) -> Decision {
            throw std::runtime_error("no");
          }).IsAborted());
    CHECK(handle(Cmd("counter-1"), [](const Counter&, const Command&) {
            return Decision::Accept({evtest::Ev("", "1")});
          }).IsInvalidArgument());
    CHECK(handle(Cmd("counter-1", "1", "id-1"), [](const Counter&, const Command&) {
            return Decision::Accept({evtest::Ev("Set", "1", Uuid::Random())});
          }).IsInvalidArgument());
    CHECK(handle(Cmd("counter-1", "1", "id-2"), [](const Counter&, const Command&) {
            return Decision::Reject("");
          }).IsInvalidArgument());
    CHECK(handle(Cmd("counter-1", "1", "id-3"), [](const Counter&, const Command&) {
            return Decision::Reject("big", std::string(kMaxDomainMessage + 1, 'm'));
          }).IsInvalidArgument());
    CHECK(StreamLength(s, "counter-1") == 0);
    // None of the failed commands was logged: their ids are still free.
    for (const char* id : {"id-1", "id-2", "id-3"}) CHECK(LookupCommand(s, id).status().IsNotFound());
    CHECK(LookupCommand(s, "").status().IsInvalidArgument());
    REQUIRE(s.close().ok());
    CHECK(handle(Cmd("counter-1", "1", "id-4")).IsClosed());
    CHECK(LookupCommand(s, "id-4").status().IsClosed());
    CHECK(PruneCommandLog(s, CommandRetention{0ms, 1}).status().IsClosed());
    CHECK(CommandBus::Create(s).status().IsClosed());
  }
}
