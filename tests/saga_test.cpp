// The saga engine: execution, retries, timeouts, compensation, stuck sagas,
// recovery, definition fingerprints, queries, and the saga record codec.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "evstore/inspect.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "format/saga_record.hpp"
#include "log/store_impl.hpp"
#include "test_util.hpp"

using namespace evstore;
using namespace std::chrono_literals;

namespace {

constexpr auto kWait = 60s;

// What each saga's handlers did, in order ("a1", "c1", ...), 1-based steps.
struct Effects {
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> by_saga;
  std::map<std::string, std::vector<std::string>> keys;  // idempotency keys seen

  void Add(const StepContext& c) {
    std::lock_guard<std::mutex> l(mu);
    by_saga[std::string(c.saga_id)].push_back((c.compensating ? "c" : "a") +
                                               std::to_string(c.step_index + 1));
    keys[std::string(c.saga_id)].push_back(std::string(c.idempotency_key));
  }
  std::vector<std::string> Of(const std::string& id) {
    std::lock_guard<std::mutex> l(mu);
    return by_saga[id];
  }
};

// Decides a handler's result from (saga, step, compensating, attempt).
using Plan = std::function<StepResult(const StepContext&)>;

RetryPolicy Quick(uint32_t attempts) {
  RetryPolicy p;
  p.max_attempts = attempts;
  p.initial_backoff = 1ms;
  p.max_backoff = 4ms;
  p.jitter = 0.5;
  return p;
}

// An n-step saga whose handlers record their effect (unless the plan fails
// without partial effects) and return what the plan says.
SagaDefinition Def(const std::string& name, int n, Effects* fx, Plan plan, uint32_t attempts = 3) {
  SagaDefinition d;
  d.name = name;
  for (int i = 0; i < n; i++) {
    StepDefinition s;
    s.name = "s" + std::to_string(i + 1);
    auto h = [fx, plan](const StepContext& c) {
      StepResult r = plan ? plan(c) : StepResult::Success(std::string(c.step) + "-out");
      if (r.kind == StepResult::Kind::kSuccess || r.partial) fx->Add(c);
      return r;
    };
    s.action = h;
    s.compensation = h;
    s.retry = Quick(attempts);
    s.compensation_retry = Quick(attempts);
    s.timeout = 10s;
    d.steps.push_back(std::move(s));
  }
  return d;
}

std::vector<std::string> Expected(int completed, int n, bool failed) {
  std::vector<std::string> v;
  for (int i = 1; i <= completed; i++) v.push_back("a" + std::to_string(i));
  if (failed)
    for (int i = completed; i >= 1; i--) v.push_back("c" + std::to_string(i));
  (void)n;
  return v;
}

// Collapses repeats of one effect (retries and re-runs after a restart).
std::vector<std::string> Dedup(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& e : v)
    if (out.empty() || out.back() != e) out.push_back(e);
  return out;
}

struct Env {
  evtest::TempDir dir;
  Store store;
  Env() : store(Open(dir.sub("db"))) {}
  static Store Open(const std::string& p) {
    auto s = Store::open(p, Options::Fast());
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    return std::move(s).value();
  }
  std::unique_ptr<SagaEngine> Engine(std::vector<SagaDefinition> defs, SagaEngineOptions o = {}) {
    auto e = SagaEngine::open(store, defs, o);
    REQUIRE_MESSAGE(e.ok(), e.status().ToString());
    return std::move(e).value();
  }
};

SagaInfo WaitFor(SagaEngine& e, const std::string& id) {
  auto r = e.wait(id, kWait);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

bool HasEvent(const SagaInfo& i, SagaEvent e) {
  for (const auto& h : i.history)
    if (h.event == e) return true;
  return false;
}

// The sagas column family, bypassing the engine: what an older build wrote,
// or damage.
rocksdb::DB* Db(Store& s) { return internal::StoreAccess::Impl(s)->db(); }
rocksdb::ColumnFamilyHandle* SagaCf(Store& s) {
  return internal::StoreAccess::Impl(s)->cf(internal::kCfSagas);
}
void RawPut(Store& s, std::string_view key, std::string_view value) {
  REQUIRE(Db(s)->Put(rocksdb::WriteOptions(), SagaCf(s), rocksdb::Slice(key.data(), key.size()),
                     rocksdb::Slice(value.data(), value.size()))
              .ok());
}
bool RawHas(Store& s, std::string_view key) {
  std::string v;
  return Db(s)->Get(rocksdb::ReadOptions(), SagaCf(s), rocksdb::Slice(key.data(), key.size()), &v)
      .ok();
}

// A handler that runs until the test releases it, ignoring cancellation.
// Shared, so that a thread the engine abandoned may outlive the test's
// frame and the engine.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int entered = 0;
  void Pass() {
    std::unique_lock<std::mutex> l(mu);
    entered++;
    cv.notify_all();
    cv.wait(l, [&] { return open; });
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu);
    open = true;
    cv.notify_all();
  }
  void AwaitEntered(int n) {
    std::unique_lock<std::mutex> l(mu);
    REQUIRE(cv.wait_for(l, kWait, [&] { return entered >= n; }));
  }
};

}  // namespace

TEST_SUITE("saga") {
  TEST_CASE("a saga whose actions succeed completes and passes outputs forward") {
    Env env;
    Effects fx;
    std::vector<std::string> seen_inputs, seen_outputs;
    std::mutex mu;
    Plan plan = [&](const StepContext& c) {
      std::lock_guard<std::mutex> l(mu);
      seen_inputs.emplace_back(c.input);
      seen_outputs.emplace_back(c.step_index > 0 ? std::string(c.output_of("s1")) : "");
      CHECK(c.attempt == 1);
      CHECK(c.outputs.size() == c.step_index);
      CHECK(c.idempotency_key == std::string(c.saga_id) + "/" + std::string(c.step));
      CHECK(c.event_id(0) == c.event_id(0));
      CHECK(c.event_id(0) != c.event_id(1));
      if (c.step_index == 1) {
        StreamAppend a{"order-1", ExpectedVersion::NoStream(), {evtest::Ev("Charged")}};
        return StepResult::Success("paid", {a});
      }
      return StepResult::Success(std::string(c.step) + "-out");
    };
    auto eng = env.Engine({Def("checkout", 3, &fx, plan)});
    auto st = eng->start("checkout", "order-1-saga", "cart:42");
    REQUIRE(st.ok());
    CHECK(*st == true);
    SagaInfo i = WaitFor(*eng, "order-1-saga");
    CHECK(i.state == SagaState::kCompleted);
    CHECK(i.outputs == std::vector<std::string>{"s1-out", "paid", "s3-out"});
    CHECK(i.input == "cart:42");
    CHECK(fx.Of("order-1-saga") == Expected(3, 3, false));
    CHECK(seen_inputs == std::vector<std::string>(3, "cart:42"));
    CHECK(seen_outputs == std::vector<std::string>{"", "s1-out", "s1-out"});
    CHECK(HasEvent(i, SagaEvent::kStarted));
    CHECK(i.history.back().event == SagaEvent::kCompleted);
    // The step's event committed with its completion.
    auto h = env.store.stream_head("order-1");
    REQUIRE(h.ok());
    CHECK(h->last_version == 0);
    // The saga is the conversation its events belong to, the step their cause.
    auto events = evtest::Collect(env.store.read_stream("order-1", 0));
    REQUIRE(events.size() == 1);
    CHECK(events[0].correlation_id == "order-1-saga");
    CHECK(events[0].causation_id == "order-1-saga/s2");
    auto s = eng->stats();
    CHECK(s.started == 1);
    CHECK(s.completed == 1);
    CHECK(s.step_count == 3);
    CHECK(s.active == 0);
  }

  TEST_CASE("start is idempotent for a caller-supplied id and validates its input") {
    Env env;
    Effects fx;
    auto eng = env.Engine({Def("checkout", 2, &fx, nullptr)});
    REQUIRE(*eng->start("checkout", "s-1", "in") == true);
    auto again = eng->start("checkout", "s-1", "in");
    REQUIRE(again.ok());
    CHECK(*again == false);
    WaitFor(*eng, "s-1");
    auto after = eng->start("checkout", "s-1", "in");
    REQUIRE(after.ok());
    CHECK(*after == false);
    CHECK(eng->start("checkout", "s-1", "other").status().IsInvalidArgument());
    CHECK(eng->start("nope", "s-2", "in").status().IsInvalidArgument());
    CHECK(eng->start("checkout", "", "in").status().IsInvalidArgument());
    CHECK(eng->start("checkout", std::string(300, 'x'), "in").status().IsInvalidArgument());
    CHECK(eng->get("absent").status().IsNotFound());
    CHECK(fx.Of("s-1") == Expected(2, 2, false));
    CHECK(eng->stats().started == 1);
  }

  TEST_CASE("concurrent starts of one id create one saga") {
    Env env;
    Effects fx;
    auto eng = env.Engine({Def("d", 1, &fx, nullptr)});
    std::atomic<int> created{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
      ts.emplace_back([&] {
        auto r = eng->start("d", "same", "x");
        if (r.ok() && *r) created++;
      });
    for (auto& t : ts) t.join();
    CHECK(created == 1);
    WaitFor(*eng, "same");
    CHECK(fx.Of("same").size() == 1);
  }

  TEST_CASE("open rejects bad definitions and options") {
    Env env;
    Effects fx;
    std::vector<SagaDefinition> none;
    CHECK(SagaEngine::open(env.store, none).status().IsInvalidArgument());
    auto d = Def("d", 2, &fx, nullptr);
    SUBCASE("a duplicate step name") {
      d.steps[1].name = "s1";
      CHECK(SagaEngine::open(env.store, std::vector{d}).status().IsInvalidArgument());
    }
    SUBCASE("a step without action") {
      d.steps[0].action = nullptr;
      CHECK(SagaEngine::open(env.store, std::vector{d}).status().IsInvalidArgument());
    }
    SUBCASE("a retry policy without attempts") {
      d.steps[0].retry.max_attempts = 0;
      CHECK(SagaEngine::open(env.store, std::vector{d}).status().IsInvalidArgument());
    }
    SUBCASE("the same version twice") {
      CHECK(SagaEngine::open(env.store, std::vector{d, d}).status().IsInvalidArgument());
    }
    SUBCASE("no threads") {
      SagaEngineOptions o;
      o.threads = 0;
      CHECK(SagaEngine::open(env.store, std::vector{d}, o).status().IsInvalidArgument());
    }
    SUBCASE("a negative retention or shutdown time, or no retention interval") {
      SagaEngineOptions o;
      o.keep_finished_for = -1ms;
      CHECK(SagaEngine::open(env.store, std::vector{d}, o).status().IsInvalidArgument());
      o = SagaEngineOptions();
      o.retention_interval = 0ms;
      CHECK(SagaEngine::open(env.store, std::vector{d}, o).status().IsInvalidArgument());
      o = SagaEngineOptions();
      o.shutdown_timeout = -1ms;
      CHECK(SagaEngine::open(env.store, std::vector{d}, o).status().IsInvalidArgument());
    }
  }

  TEST_CASE("a second engine on one store is refused until the first is gone") {
    Env env;
    Effects fx;
    std::vector<SagaDefinition> defs{Def("d", 1, &fx, nullptr)};
    auto first = env.Engine(defs);
    auto second = SagaEngine::open(env.store, defs);
    REQUIRE(second.status().IsBusy());
    CHECK(std::string(second.status().message()).find("already open") != std::string::npos);
    // The refused open changed nothing: the first engine still runs sagas.
    REQUIRE(first->start("d", "x", "").ok());
    CHECK(WaitFor(*first, "x").state == SagaState::kCompleted);
    SUBCASE("after shutdown") {
      REQUIRE(first->shutdown().ok());
      auto again = SagaEngine::open(env.store, defs);
      REQUIRE_MESSAGE(again.ok(), again.status().ToString());
      CHECK((*again)->get("x")->state == SagaState::kCompleted);
    }
    SUBCASE("after destruction") {
      first.reset();
      auto again = SagaEngine::open(env.store, defs);
      REQUIRE_MESSAGE(again.ok(), again.status().ToString());
    }
    SUBCASE("after an open that failed midway") {
      first.reset();
      auto bad = defs;
      bad.push_back(defs[0]);  // the same version twice: refused after attaching
      CHECK(SagaEngine::open(env.store, bad).status().IsInvalidArgument());
      auto again = SagaEngine::open(env.store, defs);
      REQUIRE_MESSAGE(again.ok(), again.status().ToString());
    }
  }

  TEST_CASE("a permanent failure at any step compensates the completed steps in reverse") {
    for (int k = 0; k < 4; k++) {
      CAPTURE(k);
      Env env;
      Effects fx;
      Plan plan = [k](const StepContext& c) {
        if (!c.compensating && static_cast<int>(c.step_index) == k)
          return StepResult::Fail("out of stock");
        return StepResult::Success();
      };
      auto eng = env.Engine({Def("d", 4, &fx, plan)});
      REQUIRE(eng->start("d", "x", "").ok());
      SagaInfo i = WaitFor(*eng, "x");
      CHECK(i.state == SagaState::kCompensated);
      CHECK(fx.Of("x") == Expected(k, 4, true));
      CHECK(i.error.find("out of stock") != std::string::npos);
      CHECK(HasEvent(i, SagaEvent::kCompensationStarted));
      CHECK(eng->stats().compensated == 1);
    }
  }

  TEST_CASE("compensations see why the saga failed and use their own idempotency key") {
    Env env;
    Effects fx;
    std::string failure;
    Plan plan = [&](const StepContext& c) {
      if (c.compensating) {
        failure = std::string(c.failure);
        CHECK(c.idempotency_key == "x/s1/compensate");
      }
      if (!c.compensating && c.step_index == 1) return StepResult::Fail("card declined");
      return StepResult::Success();
    };
    auto eng = env.Engine({Def("d", 2, &fx, plan)});
    REQUIRE(eng->start("d", "x", "").ok());
    CHECK(WaitFor(*eng, "x").state == SagaState::kCompensated);
    CHECK(failure.find("card declined") != std::string::npos);
  }

  TEST_CASE("a retryable failure is retried with the same idempotency key") {
    Env env;
    Effects fx;
    SUBCASE("and then succeeds") {
      Plan plan = [](const StepContext& c) {
        if (!c.compensating && c.step_index == 1 && c.attempt < 3)
          return StepResult::Retry("busy");
        return StepResult::Success();
      };
      auto eng = env.Engine({Def("d", 3, &fx, plan, 3)});
      REQUIRE(eng->start("d", "x", "").ok());
      SagaInfo i = WaitFor(*eng, "x");
      CHECK(i.state == SagaState::kCompleted);
      CHECK(fx.Of("x") == Expected(3, 3, false));
      int failed = 0;
      for (const auto& h : i.history)
        if (h.event == SagaEvent::kStepFailed) {
          failed++;
          CHECK(h.step == 1);
          CHECK(h.text == "busy");
        }
      CHECK(failed == 2);
      CHECK(eng->stats().step_retries == 2);
    }
    SUBCASE("and compensates once its attempts are used up") {
      std::vector<uint32_t> attempts;
      std::vector<std::string> keys;
      Plan plan = [&](const StepContext& c) {
        if (!c.compensating && c.step_index == 1) {
          attempts.push_back(c.attempt);
          keys.emplace_back(c.idempotency_key);
          return StepResult::Retry("busy");
        }
        return StepResult::Success();
      };
      auto eng = env.Engine({Def("d", 3, &fx, plan, 4)});
      REQUIRE(eng->start("d", "x", "").ok());
      SagaInfo i = WaitFor(*eng, "x");
      CHECK(i.state == SagaState::kCompensated);
      CHECK(attempts == std::vector<uint32_t>{1, 2, 3, 4});
      CHECK(std::set<std::string>(keys.begin(), keys.end()).size() == 1);
      CHECK(fx.Of("x") == Expected(1, 3, true));
      CHECK(i.error.find("after 4 attempts") != std::string::npos);
    }
    SUBCASE("and an exception counts as a retryable failure") {
      int calls = 0;
      Plan plan = [&](const StepContext& c) -> StepResult {
        if (!c.compensating && c.step_index == 0 && calls++ == 0)
          throw std::runtime_error("boom");
        return StepResult::Success();
      };
      auto eng = env.Engine({Def("d", 1, &fx, plan)});
      REQUIRE(eng->start("d", "x", "").ok());
      SagaInfo i = WaitFor(*eng, "x");
      CHECK(i.state == SagaState::kCompleted);
      CHECK(i.history[1].text.find("boom") != std::string::npos);
    }
    SUBCASE("and a step that keeps throwing is compensated too: its effects are unknown") {
      Plan plan = [&](const StepContext& c) -> StepResult {
        if (!c.compensating && c.step_index == 1) throw std::runtime_error("boom");
        return StepResult::Success();
      };
      auto eng = env.Engine({Def("d", 2, &fx, plan)});
      REQUIRE(eng->start("d", "x", "").ok());
      SagaInfo i = WaitFor(*eng, "x");
      CHECK(i.state == SagaState::kCompensated);
      CHECK(fx.Of("x") == std::vector<std::string>{"a1", "c2", "c1"});
    }
  }

  TEST_CASE("a failure with partial effects compensates the failed step too") {
    Env env;
    Effects fx;
    Plan plan = [](const StepContext& c) {
      if (!c.compensating && c.step_index == 2) return StepResult::Fail("half done", true);
      return StepResult::Success();
    };
    auto eng = env.Engine({Def("d", 4, &fx, plan)});
    REQUIRE(eng->start("d", "x", "").ok());
    CHECK(WaitFor(*eng, "x").state == SagaState::kCompensated);
    CHECK(fx.Of("x") == Expected(3, 4, true));
  }

  TEST_CASE("steps without compensation are skipped when compensating") {
    Env env;
    Effects fx;
    Plan plan = [](const StepContext& c) {
      if (!c.compensating && c.step_index == 2) return StepResult::Fail("no");
      return StepResult::Success();
    };
    auto d = Def("d", 3, &fx, plan);
    d.steps[1].compensation = nullptr;
    auto eng = env.Engine({d});
    REQUIRE(eng->start("d", "x", "").ok());
    CHECK(WaitFor(*eng, "x").state == SagaState::kCompensated);
    CHECK(fx.Of("x") == std::vector<std::string>{"a1", "a2", "c1"});
  }

  TEST_CASE("a slow handler is timed out, its late result discarded, and compensation runs") {
    Env env;
    Effects fx;
    std::atomic<bool> late_returned{false};
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 1) {
        // Ignores cancellation on purpose, then reports success too late.
        while (!c.cancelled()) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(20ms);
        late_returned = true;
        return StepResult::Success("late");
      }
      return StepResult::Success();
    };
    auto d = Def("d", 3, &fx, plan, 1);
    d.steps[1].timeout = 50ms;
    auto eng = env.Engine({d});
    REQUIRE(eng->start("d", "x", "").ok());
    SagaInfo i = WaitFor(*eng, "x");
    CHECK(i.state == SagaState::kCompensated);
    // The timed-out step may have had effects: it is compensated too. (The
    // late handler records "a2" whenever it finally returns.)
    std::vector<std::string> got;
    for (const auto& e : fx.Of("x"))
      if (e != "a2") got.push_back(e);
    CHECK(got == std::vector<std::string>{"a1", "c2", "c1"});
    CHECK(i.outputs.size() == 1);  // the late output was never recorded
    CHECK(i.error.find("timed out") != std::string::npos);
    while (eng->stats().late_results_discarded == 0) std::this_thread::sleep_for(1ms);
    CHECK(late_returned);
    auto s = eng->stats();
    CHECK(s.timeouts == 1);
    CHECK(s.late_results_discarded == 1);
    CHECK(eng->get("x")->state == SagaState::kCompensated);
  }

  TEST_CASE("a timed-out attempt is retried when attempts remain") {
    Env env;
    Effects fx;
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 0 && c.attempt == 1)
        while (!c.cancelled()) std::this_thread::sleep_for(1ms);
      return StepResult::Success();
    };
    auto d = Def("d", 2, &fx, plan, 2);
    d.steps[0].timeout = 30ms;
    auto eng = env.Engine({d});
    REQUIRE(eng->start("d", "x", "").ok());
    SagaInfo i = WaitFor(*eng, "x");
    CHECK(i.state == SagaState::kCompleted);
    CHECK(HasEvent(i, SagaEvent::kStepTimedOut));
  }

  TEST_CASE("a compensation that keeps failing makes the saga stuck, reported, then settled by hand") {
    Env env;
    Effects fx;
    std::atomic<bool> fixed{false};
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 2) return StepResult::Fail("declined");
      if (c.compensating && c.step_index == 1 && !fixed) return StepResult::Retry("refund service down");
      return StepResult::Success();
    };
    std::mutex mu;
    std::vector<std::string> reported;
    SagaEngineOptions o;
    o.on_stuck = [&](const SagaInfo& i) {
      std::lock_guard<std::mutex> l(mu);
      reported.push_back(i.id);
      CHECK(i.state == SagaState::kStuck);
    };
    auto eng = env.Engine({Def("d", 3, &fx, plan, 3)}, o);
    REQUIRE(eng->start("d", "x", "").ok());
    REQUIRE(eng->start("d", "y", "").ok());
    SagaInfo i = WaitFor(*eng, "x");
    CHECK(i.state == SagaState::kStuck);
    CHECK(i.stuck_in == SagaState::kCompensating);
    CHECK(i.step == 1);
    CHECK(i.error.find("refund service down") != std::string::npos);
    WaitFor(*eng, "y");
    CHECK(fx.Of("x") == std::vector<std::string>{"a1", "a2"});
    {
      std::lock_guard<std::mutex> l(mu);
      CHECK(reported.size() == 2);
    }
    auto stuck = eng->list(SagaState::kStuck);
    REQUIRE(stuck.ok());
    CHECK(stuck->size() == 2);
    CHECK(eng->stats().stuck == 2);

    SUBCASE("retry resumes compensation") {
      fixed = true;
      REQUIRE(eng->retry("x").ok());
      SagaInfo r = WaitFor(*eng, "x");
      CHECK(r.state == SagaState::kCompensated);
      CHECK(HasEvent(r, SagaEvent::kRetried));
      CHECK(fx.Of("x") == Expected(2, 3, true));
      CHECK_FALSE(r.resolved_by_hand);
    }
    SUBCASE("resolve settles it without running anything") {
      REQUIRE(eng->resolve("x", "refunded by phone").ok());
      SagaInfo r = *eng->get("x");
      CHECK(r.state == SagaState::kCompensated);
      CHECK(r.resolved_by_hand);
      CHECK(r.history.back().text == "refunded by phone");
      CHECK(fx.Of("x") == std::vector<std::string>{"a1", "a2"});
    }
    CHECK(eng->retry("x").IsInvalidArgument());  // no longer stuck
    CHECK(eng->resolve("absent", "").IsNotFound());
  }

  TEST_CASE("a permanently failing compensation makes the saga stuck at once") {
    Env env;
    Effects fx;
    int comp_calls = 0;
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 1) return StepResult::Fail("declined");
      if (c.compensating) {
        comp_calls++;
        return StepResult::Fail("cannot undo");
      }
      return StepResult::Success();
    };
    auto eng = env.Engine({Def("d", 2, &fx, plan, 5)});
    REQUIRE(eng->start("d", "x", "").ok());
    CHECK(WaitFor(*eng, "x").state == SagaState::kStuck);
    CHECK(comp_calls == 1);
  }

  TEST_CASE("events a step cannot append count as a retryable failure") {
    Env env;
    Effects fx;
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 0) {
        StreamAppend a{"acct-1", ExpectedVersion::Exact(7), {evtest::Ev("Debited")}};
        return StepResult::Success("", {a});
      }
      return StepResult::Success();
    };
    auto eng = env.Engine({Def("d", 2, &fx, plan, 2)});
    REQUIRE(eng->start("d", "x", "").ok());
    SagaInfo i = WaitFor(*eng, "x");
    CHECK(i.state == SagaState::kCompensated);
    CHECK(i.error.find("WrongExpectedVersion") != std::string::npos);
    CHECK(env.store.stream_head("acct-1").status().IsNotFound());
  }

  TEST_CASE("a last step whose events the handler already appended itself completes on disk") {
    // The pattern docs/sagas.md recommends: the handler appends with
    // ctx.event_id(n) and also returns the events, so the commit of the
    // step's completion is an idempotent replay of them. The saga record
    // must still be written.
    Env env;
    std::atomic<int> runs{0};
    SagaDefinition d;
    d.name = "self-append";
    for (int i = 0; i < 2; i++) {
      StepDefinition s;
      s.name = "s" + std::to_string(i + 1);
      s.action = [&env, &runs](const StepContext& c) {
        runs++;
        EventData e = evtest::Ev("Shipped", "{}", c.event_id(0));
        std::string stream = "ship-" + std::string(c.step);
        auto r = env.store.append(stream, ExpectedVersion::Any(), e);
        if (!r.ok()) return StepResult::Retry(r.status().ToString());
        return StepResult::Success("", {StreamAppend{stream, ExpectedVersion::Any(), {e}}});
      };
      s.retry = Quick(2);
      d.steps.push_back(std::move(s));
    }
    {
      auto eng = env.Engine({d});
      REQUIRE(eng->start("self-append", "sa-1", "").ok());
      SagaInfo i = WaitFor(*eng, "sa-1");
      CHECK(i.state == SagaState::kCompleted);
      REQUIRE(eng->shutdown().ok());
    }
    CHECK(runs == 2);
    // What is on disk: a new engine finds the saga completed and reruns
    // nothing.
    auto eng = env.Engine({d});
    auto i = eng->get("sa-1");
    REQUIRE(i.ok());
    CHECK(i->state == SagaState::kCompleted);
    REQUIRE(eng->wait_idle(kWait).ok());
    CHECK(runs == 2);
    CHECK(eng->stats().resumed == 0);
    auto h = env.store.stream_head("ship-s2");
    REQUIRE(h.ok());
    CHECK(h->last_version == 0);
  }

  TEST_CASE("the saga guarantee holds for random failure points") {
    Env env;
    Effects fx;
    constexpr int kSagas = 200, kSteps = 4;
    struct Fate {
      int fail_at;     // step that fails for good (kSteps: none)
      bool partial;    // the failing step reports partial effects
      int flaky;       // retryable failures before each success
      int comp_flaky;  // retryable compensation failures before success
    };
    std::mt19937 rng(7);
    std::map<std::string, Fate> fates;
    for (int i = 0; i < kSagas; i++)
      fates["r" + std::to_string(i)] =
          Fate{static_cast<int>(rng() % (kSteps + 1)), rng() % 2 == 0, static_cast<int>(rng() % 2),
               static_cast<int>(rng() % 2)};
    Plan plan = [&](const StepContext& c) {
      const Fate& f = fates.at(std::string(c.saga_id));
      if (c.compensating)
        return c.attempt <= static_cast<uint32_t>(f.comp_flaky) ? StepResult::Retry("flaky", true)
                                                                : StepResult::Success();
      if (static_cast<int>(c.step_index) == f.fail_at) return StepResult::Fail("no", f.partial);
      if (c.attempt <= static_cast<uint32_t>(f.flaky)) return StepResult::Retry("flaky", true);
      return StepResult::Success();
    };
    SagaEngineOptions o;
    o.threads = 6;
    auto eng = env.Engine({Def("g", kSteps, &fx, plan, 3)}, o);
    for (auto& [id, f] : fates) REQUIRE(eng->start("g", id, "").ok());
    REQUIRE(eng->wait_idle(kWait).ok());
    for (const auto& kv : fates) {
      const std::string& id = kv.first;
      const Fate& f = kv.second;
      CAPTURE(id);
      SagaInfo i = *eng->get(id);
      auto got = Dedup(fx.Of(id));
      if (f.fail_at == kSteps) {
        CHECK(i.state == SagaState::kCompleted);
        CHECK(got == Expected(kSteps, kSteps, false));
      } else {
        CHECK(i.state == SagaState::kCompensated);
        CHECK(got == Expected(f.fail_at + (f.partial ? 1 : 0), kSteps, true));
      }
    }
    auto s = eng->stats();
    CHECK(s.started == kSagas);
    CHECK(s.completed + s.compensated == kSagas);
  }

  TEST_CASE("unfinished sagas resume when an engine next opens the store") {
    evtest::TempDir dir;
    Effects fx;
    std::atomic<bool> block{true};
    std::vector<std::pair<std::string, uint32_t>> runs;  // key, attempt of step 2
    std::mutex mu;
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 1) {
        {
          std::lock_guard<std::mutex> l(mu);
          runs.emplace_back(c.idempotency_key, c.attempt);
        }
        if (block) {
          while (!c.cancelled()) std::this_thread::sleep_for(1ms);
          return StepResult::Retry("interrupted");
        }
      }
      return StepResult::Success();
    };
    {
      Store store = Env::Open(dir.sub("db"));
      auto eng = SagaEngine::open(store, std::vector{Def("d", 3, &fx, plan)});
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "x", "").ok());
      while (true) {
        std::lock_guard<std::mutex> l(mu);
        if (!runs.empty()) break;
      }
      // The interrupted attempt reports a retryable failure during shutdown:
      // it is recorded, and the saga stays unfinished.
      REQUIRE((*eng)->shutdown().ok());
      CHECK((*eng)->get("x").status().IsClosed());
      REQUIRE(store.close().ok());
    }
    block = false;
    Store store = Env::Open(dir.sub("db"));
    auto eng = SagaEngine::open(store, std::vector{Def("d", 3, &fx, plan)});
    REQUIRE(eng.ok());
    SagaInfo i = WaitFor(**eng, "x");
    CHECK(i.state == SagaState::kCompleted);
    CHECK((*eng)->stats().resumed == 1);
    std::lock_guard<std::mutex> l(mu);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].first == runs[1].first);
    CHECK(runs[1].second == 2);
    CHECK(fx.Of("x") == Expected(3, 3, false));
  }

  TEST_CASE("a retry wait is stored and survives a restart") {
    evtest::TempDir dir;
    Effects fx;
    std::atomic<int> calls{0};
    std::atomic<bool> first_engine{true};
    Plan plan = [&](const StepContext& c) {
      if (c.compensating || c.step_index != 0) return StepResult::Success();
      if (calls++ == 0) return StepResult::Retry("later");
      // Should the wait end before the first engine shuts down (a slow
      // machine), the next attempt must not finish there.
      if (first_engine) {
        while (!c.cancelled()) std::this_thread::sleep_for(1ms);
        return StepResult::Retry("shut down");
      }
      return StepResult::Success();
    };
    auto def = Def("d", 1, &fx, plan, 5);
    def.steps[0].retry.initial_backoff = 300ms;
    def.steps[0].retry.max_backoff = 300ms;
    def.steps[0].retry.jitter = 0;
    {
      Store store = Env::Open(dir.sub("db"));
      auto eng = SagaEngine::open(store, std::vector{def});
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "x", "").ok());
      while (calls == 0) std::this_thread::sleep_for(1ms);
      // The attempt's failure and its retry wait are committed before
      // shutdown returns.
      REQUIRE((*eng)->shutdown().ok());
    }
    first_engine = false;
    Store store = Env::Open(dir.sub("db"));
    auto stored = inspect::GetSaga(store, "x");
    REQUIRE(stored.ok());
    const int64_t due = stored->next_attempt_ms;
    CHECK(due != 0);
    CHECK(stored->attempt >= 1);
    const int before = calls;
    auto eng = SagaEngine::open(store, std::vector{def});
    REQUIRE(eng.ok());
    SagaInfo i = WaitFor(**eng, "x");
    CHECK(i.state == SagaState::kCompleted);
    CHECK(calls == before + 1);
    // The attempt after the restart ran no earlier than the stored time.
    CHECK(i.updated_ms >= due);
  }

  TEST_CASE("resuming under a changed definition is refused unless its version is registered") {
    evtest::TempDir dir;
    Effects fx;
    std::atomic<bool> block{true};
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 0 && block) {
        while (!c.cancelled()) std::this_thread::sleep_for(1ms);
        return StepResult::Retry("interrupted");
      }
      return StepResult::Success();
    };
    auto v1 = Def("d", 2, &fx, plan);
    auto v2 = Def("d", 3, &fx, plan);
    v2.version = 2;
    CHECK(v1.fingerprint() != v2.fingerprint());
    auto v1_retuned = v1;
    v1_retuned.steps[0].timeout = 5s;
    CHECK(v1.fingerprint() == v1_retuned.fingerprint());
    {
      Store store = Env::Open(dir.sub("db"));
      auto eng = SagaEngine::open(store, std::vector{v1});
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "x", "").ok());
      while ((*eng)->stats().in_flight == 0) std::this_thread::sleep_for(1ms);
      REQUIRE((*eng)->shutdown().ok());
    }
    block = false;
    Store store = Env::Open(dir.sub("db"));
    std::vector<std::string> reported;
    SagaEngineOptions o;
    o.on_stuck = [&](const SagaInfo& i) { reported.push_back(i.error); };
    {
      auto eng = SagaEngine::open(store, std::vector{v2}, o);
      REQUIRE(eng.ok());
      SagaInfo i = *(*eng)->get("x");
      CHECK(i.state == SagaState::kStuck);
      CHECK(i.stuck_in == SagaState::kRunning);
      CHECK(i.error.find("not registered") != std::string::npos);
      REQUIRE(reported.size() == 1);
      Status r = (*eng)->retry("x");
      CHECK(r.IsInvalidArgument());
      CHECK(std::string(r.message()).find("v1") != std::string::npos);
    }
    auto eng = SagaEngine::open(store, std::vector{v1, v2}, o);
    REQUIRE(eng.ok());
    CHECK(reported.size() == 2);  // reported again at open while still stuck
    REQUIRE((*eng)->retry("x").ok());
    SagaInfo i = WaitFor(**eng, "x");
    CHECK(i.state == SagaState::kCompleted);
    CHECK(i.version == 1);
    // New sagas use the highest version.
    REQUIRE((*eng)->start("d", "y", "").ok());
    CHECK(WaitFor(**eng, "y").version == 2);
    CHECK(WaitFor(**eng, "y").outputs.size() == 3);
  }

  TEST_CASE("list and stats report sagas by state") {
    Env env;
    Effects fx;
    Plan plan = [](const StepContext& c) {
      if (!c.compensating && c.saga_id.substr(0, 4) == "fail") return StepResult::Fail("no");
      return StepResult::Success();
    };
    auto eng = env.Engine({Def("d", 2, &fx, plan)});
    for (int i = 0; i < 5; i++) REQUIRE(eng->start("d", "ok-" + std::to_string(i), "").ok());
    for (int i = 0; i < 3; i++) REQUIRE(eng->start("d", "fail-" + std::to_string(i), "").ok());
    REQUIRE(eng->wait_idle(kWait).ok());
    CHECK(eng->list(SagaState::kCompleted)->size() == 5);
    CHECK(eng->list(SagaState::kCompensated)->size() == 3);
    CHECK(eng->list(SagaState::kCompleted, 2)->size() == 2);
    CHECK(eng->list(SagaState::kRunning)->empty());
    auto s = eng->stats();
    CHECK(s.started == 8);
    CHECK(s.completed == 5);
    CHECK(s.compensated == 3);
    CHECK(s.step_count == 13);
    CHECK(s.step_p99_us >= s.step_p50_us);
    CHECK(std::string(SagaStateName(SagaState::kCompensating)) == "compensating");
  }

  TEST_CASE("closing the store under a running engine stops the engine cleanly") {
    Env env;
    Effects fx;
    std::atomic<bool> go{false};
    Plan plan = [&](const StepContext&) {
      while (!go) std::this_thread::sleep_for(1ms);
      return StepResult::Success();
    };
    auto eng = env.Engine({Def("d", 2, &fx, plan)});
    REQUIRE(eng->start("d", "x", "").ok());
    while (eng->stats().in_flight == 0) std::this_thread::sleep_for(1ms);
    REQUIRE(env.store.close().ok());
    go = true;
    CHECK(eng->wait("x", kWait).status().IsClosed());
    CHECK(eng->status().IsClosed());
    CHECK(eng->start("d", "y", "").status().IsClosed());
    CHECK(eng->get("x").status().IsClosed());
    REQUIRE(eng->shutdown().ok());
    CHECK(eng->status().IsClosed());
  }

  TEST_CASE("an engine refuses a read-only store") {
    evtest::TempDir dir;
    { Store s = Env::Open(dir.sub("db")); }
    Options o;
    o.read_only = true;
    auto s = Store::open(dir.sub("db"), o);
    REQUIRE(s.ok());
    Effects fx;
    CHECK(SagaEngine::open(*s, std::vector{Def("d", 1, &fx, nullptr)}).status().IsNotSupported());
  }

  TEST_CASE("an attempt given up at shutdown counts as interrupted at the next open") {
    evtest::TempDir dir;
    auto gate = std::make_shared<Gate>();
    std::mutex mu;
    std::vector<uint32_t> attempts;
    auto def = [&](bool hang) {
      SagaDefinition d;
      d.name = "d";
      StepDefinition s;
      s.name = "s1";
      if (hang) {
        s.action = [gate](const StepContext&) {
          gate->Pass();  // ignores cancellation
          return StepResult::Success("late");
        };
      } else {
        s.action = [&mu, &attempts](const StepContext& c) {
          std::lock_guard<std::mutex> l(mu);
          attempts.push_back(c.attempt);
          return StepResult::Success("on time");
        };
      }
      s.retry = Quick(2);
      d.steps.push_back(std::move(s));
      return d;
    };
    Store store = Env::Open(dir.sub("db"));
    {
      SagaEngineOptions o;
      o.shutdown_timeout = 0ms;
      auto eng = SagaEngine::open(store, std::vector{def(true)}, o);
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "x", "").ok());
      gate->AwaitEntered(1);
      CHECK((*eng)->get("x")->attempts_started == 1);
      Status s = (*eng)->shutdown();
      CHECK(s.IsTimedOut());
      CHECK(std::string(s.message()).find("abandoned") != std::string::npos);
    }
    // The store is free for another engine although the handler still runs.
    auto eng = SagaEngine::open(store, std::vector{def(false)});
    REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
    SagaInfo i = WaitFor(**eng, "x");
    CHECK(i.state == SagaState::kCompleted);
    CHECK(HasEvent(i, SagaEvent::kStepInterrupted));
    CHECK((*eng)->stats().interrupted == 1);
    {
      std::lock_guard<std::mutex> l(mu);
      CHECK(attempts == std::vector<uint32_t>{2});
    }
    // The abandoned handler returns into an engine that is gone: its result
    // is discarded, and nothing of the first engine is touched after it was
    // freed (the gate's last other owner is that engine's definition).
    gate->Open();
    for (auto until = std::chrono::steady_clock::now() + kWait; gate.use_count() > 1 && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(1ms);
    CHECK(gate.use_count() == 1);
    CHECK((*eng)->get("x")->outputs == std::vector<std::string>{"on time"});
  }

  TEST_CASE("a shutdown between two steps does not count the next step's attempt") {
    evtest::TempDir dir;
    std::mutex mu;
    std::vector<std::pair<uint32_t, uint32_t>> runs;  // step, attempt
    auto def = [&](bool wait_for_cancel) {
      SagaDefinition d;
      d.name = "d";
      for (int i = 0; i < 2; i++) {
        StepDefinition s;
        s.name = "s" + std::to_string(i + 1);
        s.action = [&, wait_for_cancel](const StepContext& c) {
          {
            std::lock_guard<std::mutex> l(mu);
            runs.emplace_back(c.step_index, c.attempt);
          }
          // Step 1 finishes during shutdown: its commit also counts step
          // 2's first attempt, which then never runs.
          if (wait_for_cancel && c.step_index == 0)
            while (!c.cancelled()) std::this_thread::sleep_for(1ms);
          return StepResult::Success();
        };
        d.steps.push_back(std::move(s));
      }
      return d;
    };
    Store store = Env::Open(dir.sub("db"));
    {
      auto eng = SagaEngine::open(store, std::vector{def(true)});
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "x", "").ok());
      while ((*eng)->stats().in_flight == 0) std::this_thread::sleep_for(1ms);
      REQUIRE((*eng)->shutdown().ok());
    }
    auto eng = SagaEngine::open(store, std::vector{def(false)});
    REQUIRE(eng.ok());
    SagaInfo i = WaitFor(**eng, "x");
    CHECK(i.state == SagaState::kCompleted);
    CHECK_FALSE(HasEvent(i, SagaEvent::kStepInterrupted));
    std::lock_guard<std::mutex> l(mu);
    using P = std::pair<uint32_t, uint32_t>;
    CHECK(runs == std::vector<P>{P{0, 1}, P{1, 1}});
  }

  TEST_CASE("a handler that never returns does not hold the engine: others run, shutdown is bounded") {
    auto gate = std::make_shared<Gate>();
    Env env;
    std::atomic<int> others{0};
    SagaDefinition d;
    d.name = "d";
    StepDefinition s;
    s.name = "s1";
    s.action = [gate, &others](const StepContext& c) {
      if (c.saga_id == "hung") {
        gate->Pass();
        return StepResult::Success();
      }
      others++;
      return StepResult::Success();
    };
    s.timeout = 20ms;
    s.retry = RetryPolicy::None();
    d.steps.push_back(std::move(s));
    SagaEngineOptions o;
    o.threads = 1;  // the hung handler holds the only worker
    o.shutdown_timeout = 0ms;
    auto eng = env.Engine({d}, o);
    d = SagaDefinition();  // the engine holds the only other copy of the handler
    REQUIRE(eng->start("d", "hung", "").ok());
    gate->AwaitEntered(1);
    SagaInfo hung = WaitFor(*eng, "hung");
    CHECK(hung.state == SagaState::kCompensated);
    CHECK(hung.error.find("timed out") != std::string::npos);
    for (int i = 0; i < 3; i++) REQUIRE(eng->start("d", "other-" + std::to_string(i), "").ok());
    REQUIRE(eng->wait_idle(kWait).ok());
    CHECK(others == 3);
    auto st = eng->stats();
    CHECK(st.abandoned_threads == 1);
    CHECK(st.timeouts == 1);
    Status sd = eng->shutdown();
    INFO(sd.ToString());
    CHECK(sd.IsTimedOut());
    CHECK(std::string(sd.message()).find("1 handler") != std::string::npos);
    CHECK(eng->get("hung").status().IsClosed());
    eng.reset();
    // The handler returns after the engine's handle is gone; the engine is
    // freed only then, by that thread.
    gate->Open();
    for (auto until = std::chrono::steady_clock::now() + kWait; gate.use_count() > 1 && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(1ms);
    CHECK(gate.use_count() == 1);
  }

  TEST_CASE("with no abandoned thread allowed, a timed-out handler keeps its worker until it returns") {
    auto gate = std::make_shared<Gate>();
    Env env;
    SagaDefinition d;
    d.name = "d";
    StepDefinition s;
    s.name = "s1";
    s.action = [gate](const StepContext& c) {
      if (c.saga_id == "hung") gate->Pass();
      return StepResult::Success();
    };
    s.timeout = 20ms;
    s.retry = RetryPolicy::None();
    d.steps.push_back(std::move(s));
    SagaEngineOptions o;
    o.threads = 1;
    o.max_abandoned_threads = 0;
    auto eng = env.Engine({d}, o);
    REQUIRE(eng->start("d", "hung", "").ok());
    gate->AwaitEntered(1);
    while (eng->stats().timeouts == 0) std::this_thread::sleep_for(1ms);
    CHECK(eng->stats().abandoned_threads == 1);
    REQUIRE(eng->start("d", "other", "").ok());
    // The only worker, once its handler returns, rejoins the pool: it
    // commits the timeout and runs the other saga.
    gate->Open();
    CHECK(WaitFor(*eng, "hung").state == SagaState::kCompensated);
    CHECK(WaitFor(*eng, "other").state == SagaState::kCompleted);
    CHECK(eng->stats().abandoned_threads == 0);
    REQUIRE(eng->shutdown().ok());
  }

  TEST_CASE("a commit held up in the store does not hold up another saga's timeout") {
    // Two handlers run until cancelled; the first commit after both started
    // (necessarily a timeout's) is held in the store until both have been
    // cancelled. Only if the timer thread never commits can the other
    // deadline be handled meanwhile.
    evtest::TempDir dir;
    std::mutex mu;
    std::condition_variable cv;
    int running = 0, cancelled = 0;
    bool held = false, released_by_cancel = false;
    internal::Seams seams;
    seams.after_write = [&](uint64_t, uint64_t) {
      std::unique_lock<std::mutex> l(mu);
      if (held || running < 2) return;
      held = true;
      released_by_cancel = cv.wait_for(l, kWait, [&] { return cancelled == 2; });
    };
    auto opened = internal::OpenStore(dir.sub("db"), Options::Fast(), seams);
    REQUIRE(opened.ok());
    Store store = std::move(opened).value();
    {
      SagaDefinition d;
      d.name = "d";
      StepDefinition s;
      s.name = "s1";
      s.action = [&](const StepContext& c) {
        {
          std::lock_guard<std::mutex> l(mu);
          running++;
        }
        while (!c.cancelled()) std::this_thread::sleep_for(1ms);
        std::lock_guard<std::mutex> l(mu);
        cancelled++;
        cv.notify_all();
        return StepResult::Retry("cancelled");
      };
      s.timeout = 200ms;
      s.retry = RetryPolicy::None();
      d.steps.push_back(std::move(s));
      auto eng = SagaEngine::open(store, std::vector{d});
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "a", "").ok());
      REQUIRE((*eng)->start("d", "b", "").ok());
      CHECK(WaitFor(**eng, "a").state == SagaState::kCompensated);
      CHECK(WaitFor(**eng, "b").state == SagaState::kCompensated);
      CHECK((*eng)->stats().timeouts == 2);
      REQUIRE((*eng)->shutdown().ok());
    }
    std::lock_guard<std::mutex> l(mu);
    CHECK(held);
    CHECK(released_by_cancel);
  }

  TEST_CASE("retention deletes finished sagas with their history and keeps the others") {
    Env env;
    Effects fx;
    auto gate = std::make_shared<Gate>();
    Plan plan = [gate](const StepContext& c) {
      if (c.saga_id == "running" && !c.compensating) gate->Pass();
      if (c.saga_id == "stuck" && !c.compensating && c.step_index == 1)
        return StepResult::Fail("no");
      if (c.saga_id == "stuck" && c.compensating) return StepResult::Fail("cannot undo");
      return StepResult::Success();
    };
    SagaEngineOptions o;
    o.retention_interval = std::chrono::hours(1);  // only the pass at open, and by hand
    SUBCASE("by age") { o.keep_finished_for = 0ms; }
    SUBCASE("by count") {
      o.keep_finished_for = std::chrono::milliseconds::max();
      o.max_finished = 0;
    }
    auto eng = env.Engine({Def("d", 2, &fx, plan)}, o);
    for (const char* id : {"done-1", "done-2", "stuck", "running"})
      REQUIRE(eng->start("d", id, "in").ok());
    gate->AwaitEntered(1);
    CHECK(WaitFor(*eng, "done-1").state == SagaState::kCompleted);
    CHECK(WaitFor(*eng, "done-2").state == SagaState::kCompleted);
    CHECK(WaitFor(*eng, "stuck").state == SagaState::kStuck);
    auto purged = eng->purge_finished();
    REQUIRE(purged.ok());
    CHECK(*purged == 2);
    CHECK(eng->get("done-1").status().IsNotFound());
    CHECK(eng->get("done-2").status().IsNotFound());
    CHECK(eng->get("stuck")->state == SagaState::kStuck);
    CHECK(eng->get("running")->state == SagaState::kPending);
    CHECK(eng->list(SagaState::kCompleted)->empty());
    CHECK(eng->stats().purged == 2);
    CHECK(*eng->purge_finished() == 0);
    // Nothing of them is left, index entries included.
    std::unique_ptr<rocksdb::Iterator> it(Db(env.store)->NewIterator(rocksdb::ReadOptions(),
                                                                     SagaCf(env.store)));
    std::vector<std::string> keys;
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
    it.reset();
    CHECK(keys == std::vector<std::string>{std::string("\0o", 2) + "running",
                                           std::string("\0o", 2) + "stuck",
                                           std::string("\0v", 2), "running", "stuck"});
    // A start with a deleted saga's id starts a new saga.
    auto again = eng->start("d", "done-1", "in");
    REQUIRE(again.ok());
    CHECK(*again == true);
    CHECK(WaitFor(*eng, "done-1").state == SagaState::kCompleted);
    CHECK(fx.Of("done-1") == std::vector<std::string>{"a1", "a2", "a1", "a2"});
    gate->Open();
    REQUIRE(eng->wait_idle(kWait).ok());
    CHECK(*eng->purge_finished() == 2);
  }

  TEST_CASE("retention by count keeps the sagas that finished last") {
    Env env;
    Effects fx;
    SagaEngineOptions o;
    o.keep_finished_for = std::chrono::milliseconds::max();
    o.max_finished = 2;
    o.retention_interval = std::chrono::hours(1);
    auto eng = env.Engine({Def("d", 1, &fx, nullptr)}, o);
    // One after another: finish times do not decrease, and ties sort by id.
    for (const char* id : {"a", "b", "c"}) {
      REQUIRE(eng->start("d", id, "").ok());
      WaitFor(*eng, id);
    }
    CHECK(*eng->purge_finished() == 1);
    CHECK(eng->get("a").status().IsNotFound());
    CHECK(eng->get("b").ok());
    CHECK(eng->get("c").ok());
  }

  TEST_CASE("retention runs in the background") {
    Env env;
    Effects fx;
    SagaEngineOptions o;
    o.keep_finished_for = 0ms;
    o.retention_interval = 1ms;
    auto eng = env.Engine({Def("d", 1, &fx, nullptr)}, o);
    REQUIRE(eng->start("d", "x", "").ok());
    auto until = std::chrono::steady_clock::now() + kWait;
    while (!eng->get("x").status().IsNotFound() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
    CHECK(eng->get("x").status().IsNotFound());
    CHECK(eng->stats().purged == 1);
  }

  TEST_CASE("list pages through sagas with a cursor") {
    Env env;
    Effects fx;
    Plan plan = [](const StepContext& c) {
      if (c.saga_id.substr(0, 1) == "s" && !c.compensating) return StepResult::Fail("no", true);
      if (c.compensating) return StepResult::Fail("cannot undo");
      return StepResult::Success();
    };
    auto eng = env.Engine({Def("d", 1, &fx, plan)});
    std::vector<std::string> done, stuck;
    for (int i = 0; i < 7; i++) done.push_back("p" + std::to_string(i));
    for (int i = 0; i < 5; i++) stuck.push_back("s" + std::to_string(i));
    for (const auto& id : done) REQUIRE(eng->start("d", id, "").ok());
    for (const auto& id : stuck) REQUIRE(eng->start("d", id, "").ok());
    REQUIRE(eng->wait_idle(kWait).ok());
    auto all = [&](SagaState st, size_t limit, std::vector<size_t>* sizes) {
      std::vector<std::string> ids;
      std::string after;
      int pages = 0;
      do {
        REQUIRE(++pages < 20);  // the cursor moves on
        auto page = eng->list(st, after, limit);
        REQUIRE(page.ok());
        sizes->push_back(page->sagas.size());
        for (const auto& i : page->sagas) {
          CHECK(i.state == st);
          ids.push_back(i.id);
        }
        CHECK(page->damaged.empty());
        after = page->next_after;
      } while (!after.empty());
      return ids;
    };
    std::vector<size_t> sizes;
    CHECK(all(SagaState::kCompleted, 3, &sizes) == done);  // scanned
    CHECK(sizes == std::vector<size_t>{3, 3, 1});
    sizes.clear();
    CHECK(all(SagaState::kStuck, 2, &sizes) == stuck);  // through the index
    CHECK(sizes == std::vector<size_t>{2, 2, 1});
    sizes.clear();
    CHECK(all(SagaState::kStuck, 5, &sizes) == stuck);
    CHECK(sizes == std::vector<size_t>{5, 0});
    CHECK(eng->list(SagaState::kCompleted, "p5", 10)->sagas.size() == 1);
    CHECK(eng->list(SagaState::kCompleted, "", 0)->sagas.empty());
    CHECK(eng->list(SagaState::kRunning, "", 10)->sagas.empty());
    CHECK(eng->list(SagaState::kCompleted, 4)->size() == 4);  // the unpaged form
  }

  TEST_CASE("open reads only unfinished sagas, and a damaged one does not stop the others") {
    evtest::TempDir dir;
    Effects fx;
    std::atomic<bool> block{true};
    Plan plan = [&](const StepContext& c) {
      if (c.saga_id.substr(0, 4) == "open" && block) {
        while (!c.cancelled()) std::this_thread::sleep_for(1ms);
        return StepResult::Retry("interrupted");
      }
      return StepResult::Success();
    };
    auto def = Def("d", 1, &fx, plan, 5);
    Store store = Env::Open(dir.sub("db"));
    {
      auto eng = SagaEngine::open(store, std::vector{def});
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "done", "").ok());
      CHECK(WaitFor(**eng, "done").state == SagaState::kCompleted);
      REQUIRE((*eng)->start("d", "open-1", "").ok());
      REQUIRE((*eng)->start("d", "open-2", "").ok());
      while ((*eng)->stats().in_flight < 2) std::this_thread::sleep_for(1ms);
      REQUIRE((*eng)->shutdown().ok());
    }
    // Damage a finished and an unfinished saga's record.
    RawPut(store, "done", "garbage");
    RawPut(store, "open-1", "garbage");
    block = false;
    std::vector<std::string> reported;
    SagaEngineOptions o;
    o.on_damaged = [&](const SagaDamage& d) { reported.push_back(d.id); };
    auto eng = SagaEngine::open(store, std::vector{def}, o);
    REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
    CHECK(reported == std::vector<std::string>{"open-1"});
    auto damaged = (*eng)->damaged();
    REQUIRE(damaged.size() == 1);
    CHECK(damaged[0].id == "open-1");
    CHECK(damaged[0].error.IsCorruption());
    CHECK(std::string(damaged[0].error.message()).find("open-1") != std::string::npos);
    CHECK((*eng)->stats().damaged == 1);
    CHECK(WaitFor(**eng, "open-2").state == SagaState::kCompleted);
    CHECK((*eng)->get("open-1").status().IsCorruption());
    CHECK((*eng)->get("done").status().IsCorruption());  // found when read
    CHECK((*eng)->list(SagaState::kRunning, "", 10)->damaged == std::vector<std::string>{"open-1"});
    auto page = (*eng)->list(SagaState::kCompleted, "", 10);
    REQUIRE(page.ok());
    CHECK(page->damaged == std::vector<std::string>{"done", "open-1"});
    REQUIRE(page->sagas.size() == 1);
    CHECK(page->sagas[0].id == "open-2");
    CHECK((*eng)->start("d", "open-1", "").status().IsCorruption());
  }

  TEST_CASE("sagas written before the index are indexed at the first open") {
    evtest::TempDir dir;
    Effects fx;
    auto def = Def("d", 2, &fx, nullptr);
    Store store = Env::Open(dir.sub("db"));
    // Records as the previous build wrote them: no index, no version key.
    auto record = [&](const std::string& id, SagaState st, int32_t step, int64_t updated) {
      format::SagaRecordData r;
      r.id = id;
      r.definition = "d";
      r.version = 1;
      r.fingerprint = def.fingerprint();
      r.state = static_cast<uint8_t>(st);
      r.stuck_phase = static_cast<uint8_t>(SagaState::kCompensating);
      r.step = step;
      r.outputs.assign(static_cast<size_t>(step), "out");
      r.created_ms = updated;
      r.updated_ms = updated;
      r.revision = 3;
      r.history.push_back({updated, 0, 0, -1, 0, ""});
      std::string v;
      format::EncodeSagaRecord(r, &v);
      RawPut(store, id, v);
    };
    int64_t long_ago = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch() - std::chrono::hours(1))
                           .count();
    record("old-done", SagaState::kCompleted, 1, long_ago);
    record("old-running", SagaState::kRunning, 1, long_ago);
    record("old-stuck", SagaState::kStuck, 0, long_ago);
    RawPut(store, "old-damaged", "garbage");
    std::vector<std::string> stuck, damaged;
    SagaEngineOptions o;
    o.on_stuck = [&](const SagaInfo& i) { stuck.push_back(i.id); };
    o.on_damaged = [&](const SagaDamage& d) { damaged.push_back(d.id); };
    o.keep_finished_for = std::chrono::minutes(1);
    o.retention_interval = std::chrono::hours(1);

    SUBCASE("and then read through it") {
      {
        auto eng = SagaEngine::open(store, std::vector{def}, o);
        REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
        CHECK(stuck == std::vector<std::string>{"old-stuck"});
        CHECK(damaged == std::vector<std::string>{"old-damaged"});
        SagaInfo i = WaitFor(**eng, "old-running");
        CHECK(i.state == SagaState::kCompleted);
        CHECK(fx.Of("old-running") == std::vector<std::string>{"a2"});
        CHECK((*eng)->stats().resumed == 1);
        // Finished long ago (by its record's update time): retention applies.
        (void)(*eng)->purge_finished();
        CHECK((*eng)->get("old-done").status().IsNotFound());
        CHECK((*eng)->get("old-running")->state == SagaState::kCompleted);
        REQUIRE((*eng)->shutdown().ok());
      }
      CHECK(RawHas(store, format::kSagaIndexVersionKey));
      CHECK(RawHas(store, format::SagaOpenKey("old-stuck")));
      CHECK(RawHas(store, format::SagaOpenKey("old-damaged")));
      CHECK_FALSE(RawHas(store, format::SagaOpenKey("old-running")));
      // The next open finds the same through the index.
      stuck.clear();
      damaged.clear();
      auto eng = SagaEngine::open(store, std::vector{def}, o);
      REQUIRE(eng.ok());
      CHECK(stuck == std::vector<std::string>{"old-stuck"});
      CHECK(damaged == std::vector<std::string>{"old-damaged"});
      CHECK((*eng)->stats().resumed == 0);
    }
    SUBCASE("unless a newer evstore indexed them") {
      RawPut(store, format::kSagaIndexVersionKey, format::EncodeSagaIndexVersion(99));
      auto eng = SagaEngine::open(store, std::vector{def}, o);
      CHECK(eng.status().IsNotSupported());
      // The failed open let go of the store.
      RawPut(store, format::kSagaIndexVersionKey, format::EncodeSagaIndexVersion(1));
      CHECK(SagaEngine::open(store, std::vector{def}, o).ok());
    }
  }

  TEST_CASE("the inspector reads an indexed store: verify finds no problem, only records are listed") {
    Env env;
    Effects fx;
    Plan plan = [](const StepContext& c) {
      if (c.saga_id == "stuck") return StepResult::Fail("no", true);
      return StepResult::Success();
    };
    auto d = Def("d", 1, &fx, plan);
    d.steps[0].compensation = [](const StepContext&) { return StepResult::Fail("cannot undo"); };
    auto eng = env.Engine({d});
    REQUIRE(eng->start("d", "done", "").ok());
    REQUIRE(eng->start("d", "stuck", "").ok());
    REQUIRE(eng->wait_idle(kWait).ok());
    REQUIRE(eng->get("stuck")->state == SagaState::kStuck);
    auto report = inspect::Verify(env.store);
    REQUIRE(report.ok());
    CHECK(report->problem_count == 0);
    CHECK(report->saga_records == 2);
    std::vector<std::string> ids;
    REQUIRE(inspect::ListSagas(env.store, "", [&](const inspect::SagaInfo& i) {
              ids.push_back(i.id);
              return true;
            }).ok());
    CHECK(ids == std::vector<std::string>{"done", "stuck"});
    CHECK(inspect::GetSaga(env.store, format::SagaOpenKey("stuck")).status().IsNotFound());
    // A malformed key among the index keys is reported.
    RawPut(env.store, std::string("\0z", 2), "");
    report = inspect::Verify(env.store);
    REQUIRE(report.ok());
    CHECK(report->problem_count == 1);
  }

  TEST_CASE("saga records round-trip and damaged ones are reported, never decoded") {
    format::SagaRecordData r;
    r.id = "order-7";
    r.definition = "checkout";
    r.version = 3;
    r.fingerprint = 0x1234;
    r.state = 2;
    r.step = 1;
    r.attempt = 2;
    r.input = std::string("in\0put", 6);
    r.outputs = {"a", ""};
    r.error = "declined";
    r.history.push_back({5, 0, 0, -1, 0, ""});
    r.history.push_back({6, 4, 2, 1, 2, "declined"});
    std::string v;
    format::EncodeSagaRecord(r, &v);
    format::SagaRecordData d;
    REQUIRE(format::DecodeSagaRecord("order-7", v, &d).ok());
    CHECK(d.input == r.input);
    CHECK(d.outputs == r.outputs);
    CHECK(d.history.size() == 2);
    CHECK(d.history[1].text == "declined");
    CHECK(d.step == 1);
    CHECK(format::DecodeSagaRecord("order-8", v, &d).IsCorruption());
    CHECK(format::DecodeSagaRecord("order-7", v.substr(0, v.size() - 1), &d).IsCorruption());
    CHECK(format::DecodeSagaRecord("order-7", "", &d).IsCorruption());
    r.started = 3;
    format::EncodeSagaRecord(r, &v);
    REQUIRE(format::DecodeSagaRecord("order-7", v, &d).ok());
    CHECK(d.started == 3);
    // Index keys sort before every record and parse back.
    format::SagaIndexEntry e;
    std::string fk = format::SagaFinishedKey(1234, "order-7");
    REQUIRE(format::ParseSagaIndexKey(fk, &e));
    CHECK(e.kind == 'f');
    CHECK(e.finished_ms == 1234);
    CHECK(e.id == "order-7");
    CHECK(format::SagaFinishedKey(1, "b") < format::SagaFinishedKey(2, "a"));
    std::string ok = format::SagaOpenKey("x");  // e.id points into it
    REQUIRE(format::ParseSagaIndexKey(ok, &e));
    CHECK(e.kind == 'o');
    CHECK(e.id == "x");
    CHECK(fk < std::string(format::kSagaRecordsStart));
    CHECK(format::IsSagaIndexKey(fk));
    CHECK_FALSE(format::IsSagaIndexKey("order-7"));
    CHECK_FALSE(format::ParseSagaIndexKey(std::string("\0o", 2), &e));          // no id
    CHECK_FALSE(format::ParseSagaIndexKey(std::string("\0f\0\0", 4), &e));      // short time
    CHECK_FALSE(format::ParseSagaIndexKey(std::string("\0z", 2) + "x", &e));    // unknown kind
    CHECK_FALSE(format::ParseSagaIndexKey(format::SagaOpenKey(std::string(257, 'x')), &e));
    CHECK(format::DecodeSagaIndexVersion(format::EncodeSagaIndexVersion(7)) == 7u);
    CHECK_FALSE(format::DecodeSagaIndexVersion("abc"));
    std::mt19937 rng(3);
    for (int i = 0; i < 2000; i++) {
      std::string m = v;
      m[rng() % m.size()] ^= static_cast<char>(1 + rng() % 255);
      CHECK(format::DecodeSagaRecord("order-7", m, &d).IsCorruption());
      std::string junk(rng() % 200, '\0');
      for (char& c : junk) c = static_cast<char>(rng());
      CHECK_FALSE(format::DecodeSagaRecord("k", junk, &d).ok());
    }
  }
}
