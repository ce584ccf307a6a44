// Saga crash-test worker. `saga_crash_child DIR SEED run` opens the store
// (sync=true) and a saga engine, which resumes what earlier runs left
// unfinished, then starts sagas until it is killed, printing "S <id>" for
// each start the engine acknowledged. `saga_crash_child DIR 0 recover` lets
// recovery finish, prints "IDLE" and exits. `saga_crash_child DIR 0 poison`
// starts (or resumes) saga "p", whose second step kills the process on every
// attempt (printing "ATTEMPT <n>" first), and prints "STATE <state>" once
// the saga settles.
//
// Handlers record their effects by appending to the stream "fx-<saga id>"
// before they return, so a crash between an effect and the step's completion
// record repeats the effect (at-least-once). Each saga's fate follows from
// its id (see Fate), so the parent knows what to expect.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crash_child_util.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "saga_crash_fate.hpp"

using namespace evstore;
using namespace std::chrono_literals;

namespace {

using evtest::Emit;
using evtest::Fate;
using evtest::Fnv;
using evtest::FateOf;

Status RecordEffect(Store& store, const StepContext& c) {
  EventData e;
  e.type = "Effect";
  e.data = std::string(c.compensating ? "c" : "a") + std::to_string(c.step_index + 1);
  return store.append("fx-" + std::string(c.saga_id), ExpectedVersion::Any(), e).status();
}

SagaDefinition Definition(Store& store) {
  SagaDefinition d;
  d.name = "crash";
  for (int i = 0; i < 3; i++) {
    StepDefinition s;
    s.name = "step" + std::to_string(i + 1);
    s.action = [&store](const StepContext& c) {
      thread_local std::mt19937 rng(std::random_device{}());
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
      Fate f = FateOf(c.saga_id);
      if (static_cast<int>(c.step_index) == f.fail_at) {
        if (f.partial && !RecordEffect(store, c).ok()) return StepResult::Retry("effect not recorded");
        return StepResult::Fail("injected failure", f.partial);
      }
      if (!RecordEffect(store, c).ok()) return StepResult::Retry("effect not recorded");
      // Some first attempts fail after their effect: retried, at least once.
      if (c.attempt == 1 && Fnv(c.idempotency_key) % 4 == 0)
        return StepResult::Retry("flaky", true);
      return StepResult::Success(std::string(c.step) + " done");
    };
    s.compensation = [&store](const StepContext& c) {
      Fate f = FateOf(c.saga_id);
      if (f.comp_fails && c.step_index == 0) return StepResult::Retry("refund service down");
      if (!RecordEffect(store, c).ok()) return StepResult::Retry("effect not recorded");
      return StepResult::Success();
    };
    s.retry.max_attempts = 4;
    s.retry.initial_backoff = 2ms;
    s.retry.max_backoff = 20ms;
    s.compensation_retry = s.retry;
    s.compensation_retry.max_attempts = 3;
    d.steps.push_back(std::move(s));
  }
  return d;
}

// Step 2's action kills the process, every time.
SagaDefinition PoisonDefinition(Store& store) {
  SagaDefinition d;
  d.name = "poison";
  for (int i = 0; i < 2; i++) {
    StepDefinition s;
    s.name = "step" + std::to_string(i + 1);
    s.action = [&store, i](const StepContext& c) {
      if (i == 1) {
        Emit("ATTEMPT " + std::to_string(c.attempt) + "\n");
        raise(SIGKILL);
      }
      if (!RecordEffect(store, c).ok()) return StepResult::Retry("effect not recorded");
      return StepResult::Success();
    };
    s.compensation = [&store](const StepContext& c) {
      if (!RecordEffect(store, c).ok()) return StepResult::Retry("effect not recorded");
      return StepResult::Success();
    };
    s.retry.max_attempts = 3;
    s.retry.initial_backoff = 1ms;
    s.retry.max_backoff = 1ms;
    d.steps.push_back(std::move(s));
  }
  return d;
}

int Poison(Store& store) {
  std::vector<SagaDefinition> defs{PoisonDefinition(store)};
  auto engine = SagaEngine::open(store, defs);
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  auto started = (*engine)->start("poison", "p", "");
  if (!started.ok()) {
    std::fprintf(stderr, "start: %s\n", started.status().ToString().c_str());
    return 1;
  }
  auto done = (*engine)->wait("p", std::chrono::minutes(5));
  if (!done.ok()) {
    std::fprintf(stderr, "wait: %s\n", done.status().ToString().c_str());
    return 1;
  }
  Emit(std::string("STATE ") + SagaStateName(done->state) + "\n");
  if (!(*engine)->shutdown().ok()) return 1;
  return store.close().ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: saga_crash_child DIR SEED run|recover|poison\n");
    return 2;
  }
  std::string dir = argv[1];
  std::string seed = argv[2];
  bool recover = std::string(argv[3]) == "recover";
  std::optional<Store> opened = evtest::OpenSynced(dir);
  if (!opened) return 1;
  Store& store = *opened;
  if (std::string(argv[3]) == "poison") return Poison(store);
  SagaEngineOptions eo;
  eo.threads = 4;
  std::vector<SagaDefinition> defs{Definition(store)};
  auto engine = SagaEngine::open(store, defs, eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  SagaEngine& eng = **engine;
  if (recover) {
    Status s = eng.wait_idle(std::chrono::minutes(5));
    if (!s.ok()) {
      std::fprintf(stderr, "recover: %s\n", s.ToString().c_str());
      return 1;
    }
    Emit("IDLE\n");
    (void)eng.shutdown();
    return store.close().ok() ? 0 : 1;
  }
  Emit("READY\n");
  for (uint64_t i = 0;; i++) {
    while (eng.stats().active >= 24) std::this_thread::sleep_for(200us);
    std::string id = "r" + seed + "-" + std::to_string(i);
    auto r = eng.start("crash", id, "order " + id);
    if (!r.ok()) {
      std::fprintf(stderr, "start: %s\n", r.status().ToString().c_str());
      _exit(1);
    }
    Emit("S " + id + "\n");
  }
}
