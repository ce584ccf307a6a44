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

#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "format/saga_record.hpp"
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
    Plan plan = [&](const StepContext& c) {
      if (!c.compensating && c.step_index == 0 && calls++ == 0) return StepResult::Retry("later");
      return StepResult::Success();
    };
    auto def = Def("d", 1, &fx, plan, 2);
    def.steps[0].retry.initial_backoff = 300ms;
    def.steps[0].retry.jitter = 0;
    int64_t due = 0;
    {
      Store store = Env::Open(dir.sub("db"));
      auto eng = SagaEngine::open(store, std::vector{def});
      REQUIRE(eng.ok());
      REQUIRE((*eng)->start("d", "x", "").ok());
      while (calls == 0) std::this_thread::sleep_for(1ms);
      SagaInfo i;
      do {
        i = *(*eng)->get("x");
      } while (i.next_attempt_ms == 0);
      due = i.next_attempt_ms;
      CHECK(i.attempt == 1);
      REQUIRE((*eng)->shutdown().ok());
    }
    Store store = Env::Open(dir.sub("db"));
    auto eng = SagaEngine::open(store, std::vector{def});
    REQUIRE(eng.ok());
    SagaInfo i = WaitFor(**eng, "x");
    CHECK(i.state == SagaState::kCompleted);
    CHECK(calls == 2);
    // The second attempt ran no earlier than the stored time.
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
