// Kills a process running sagas (sync=true) with SIGKILL at random moments,
// lets recovery finish, and checks that no acknowledged saga is lost, that
// every saga ends completed, compensated, or stuck exactly when its
// compensation was made to fail, and that each saga's effects are
// a1..an or a1..ak followed by ck..c1 (repeats of one effect aside). Also: a
// step that kills its own process on every attempt uses up its attempts.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "evstore/saga.hpp"
#include "saga_crash_fate.hpp"
#include "evstore/store.hpp"
#include "test_util.hpp"

using namespace evstore;

namespace {

using evtest::Fate;
using evtest::FateOf;

using evtest::ChildRun;
using evtest::RunChild;

// The effects a saga's fate implies. The step that fails for good is
// compensated too when it reported partial effects or when a kill
// interrupted one of its attempts (it may have had effects then).
std::vector<std::string> Expected(const Fate& f, const SagaInfo& info) {
  std::vector<std::string> v;
  int done = f.fail_at + (f.partial ? 1 : 0);
  for (int i = 1; i <= done; i++) v.push_back("a" + std::to_string(i));
  if (f.fail_at == 3) return v;
  bool interrupted = false;
  for (const auto& h : info.history)
    interrupted |= h.event == SagaEvent::kStepInterrupted && h.step == f.fail_at;
  int top = f.partial || interrupted ? f.fail_at + 1 : f.fail_at;
  for (int i = top; i >= (f.comp_fails ? 2 : 1); i--) v.push_back("c" + std::to_string(i));
  return v;
}

std::atomic<bool>& HandlerRan() {
  static std::atomic<bool> ran{false};
  return ran;
}

// Checks every saga in the store after recovery; returns how many.
size_t Verify(const std::string& path, const std::set<std::string>& acked) {
  auto opened = Store::open(path);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  Store store = std::move(opened).value();
  // Handlers are never called: every saga is settled. Only the definition's
  // shape (names, compensations) must match the child's.
  SagaDefinition d;
  d.name = "crash";
  for (int i = 0; i < 3; i++) {
    StepDefinition s;
    s.name = "step" + std::to_string(i + 1);
    s.action = [](const StepContext&) {
      HandlerRan() = true;
      return StepResult::Fail("not expected to run");
    };
    s.compensation = s.action;
    d.steps.push_back(std::move(s));
  }
  std::map<std::string, SagaInfo> sagas;
  {
    auto eng = SagaEngine::open(store, std::vector{d});
    REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
    for (SagaState st : {SagaState::kPending, SagaState::kRunning, SagaState::kCompensating,
                         SagaState::kCompleted, SagaState::kCompensated, SagaState::kStuck}) {
      auto l = (*eng)->list(st);
      REQUIRE(l.ok());
      if (!IsFinal(st) && st != SagaState::kStuck) CHECK_MESSAGE(l->empty(), SagaStateName(st));
      for (auto& i : *l) sagas[i.id] = std::move(i);
    }
    REQUIRE((*eng)->shutdown().ok());
  }
  CHECK_FALSE(HandlerRan().load());
  for (const std::string& id : acked) CHECK_MESSAGE(sagas.count(id) == 1, "saga lost: ", id);
  for (const auto& kv : sagas) {
    const std::string& id = kv.first;
    const SagaInfo& info = kv.second;
    CAPTURE(id);
    Fate f = FateOf(id);
    SagaState want = f.fail_at == 3  ? SagaState::kCompleted
                     : f.comp_fails ? SagaState::kStuck
                                    : SagaState::kCompensated;
    CHECK(info.state == want);
    std::vector<std::string> effects;
    auto it = store.read_stream("fx-" + id, 0);
    if (it.ok()) {
      for (; it->Valid(); it->Next()) {
        std::string e(it->value().data);
        if (effects.empty() || effects.back() != e) effects.push_back(e);
      }
      CHECK(it->status().ok());
    }
    CHECK(effects == Expected(f, info));
  }
  REQUIRE(store.close().ok());
  return sagas.size();
}

}  // namespace

TEST_SUITE("saga_crash") {
  TEST_CASE("sagas survive SIGKILL: none is lost and the saga guarantee holds") {
    const char* child = std::getenv("EVSTORE_SAGA_CRASH_CHILD");
    REQUIRE_MESSAGE(child != nullptr, "EVSTORE_SAGA_CRASH_CHILD must name the saga_crash_child binary");
    evtest::TempDir dir;
    std::string path = dir.sub("db");
    std::mt19937 rng(4242);
    std::set<std::string> acked;
    constexpr int kRounds = 24;
    size_t checked = 0;
    for (int round = 0; round < kRounds; round++) {
      int ms = 40 + static_cast<int>(rng() % 300);
      ChildRun run = RunChild(child, {path, std::to_string(round + 1), "run"}, ms);
      CHECK_MESSAGE(run.killed, "the child exited on its own, code ", run.exit_code);
      for (const auto& line : run.lines)
        if (line.rfind("S ", 0) == 0) acked.insert(line.substr(2));
      // Most rounds leave recovery to the next child (which is killed in
      // turn); every fourth round recovery runs to the end and is checked.
      if (round % 4 == 3 || round == kRounds - 1) {
        ChildRun rec = RunChild(child, {path, "0", "recover"}, -1);
        REQUIRE_MESSAGE(rec.exit_code == 0, "recovery failed");
        REQUIRE(!rec.lines.empty());
        CHECK(rec.lines.back() == "IDLE");
        checked = Verify(path, acked);
      }
    }
    MESSAGE(acked.size() << " acknowledged sagas, " << checked << " sagas checked after "
                         << kRounds << " kills");
    CHECK(acked.size() > 0);
  }

  TEST_CASE("a step that kills its process on every attempt uses up its attempts, then compensates") {
    const char* child = std::getenv("EVSTORE_SAGA_CRASH_CHILD");
    REQUIRE_MESSAGE(child != nullptr, "EVSTORE_SAGA_CRASH_CHILD must name the saga_crash_child binary");
    evtest::TempDir dir;
    std::string path = dir.sub("db");
    // Each run resumes the saga and dies in step 2; a rerun forever with the
    // same attempt number would use all the runs allowed here.
    std::vector<std::string> attempts;
    int kills = 0;
    std::string state;
    for (int run = 0; run < 8 && state.empty(); run++) {
      ChildRun r = RunChild(child, {path, "0", "poison"}, -1);
      for (const auto& line : r.lines) {
        if (line.rfind("ATTEMPT ", 0) == 0) attempts.push_back(line.substr(8));
        if (line.rfind("STATE ", 0) == 0) state = line.substr(6);
      }
      if (r.killed) {
        kills++;
      } else {
        REQUIRE_MESSAGE(r.exit_code == 0, "the poison child failed");
      }
    }
    CHECK(kills == 3);  // max_attempts
    CHECK(attempts == std::vector<std::string>{"1", "2", "3"});
    CHECK(state == "compensated");

    auto opened = Store::open(path);
    REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    Store store = std::move(opened).value();
    std::vector<std::string> effects;
    {
      auto it = store.read_stream("fx-p", 0);
      REQUIRE(it.ok());
      for (; it->Valid(); it->Next()) effects.emplace_back(it->value().data);
    }
    // Step 2's attempts may have had effects before the process died: it is
    // compensated too.
    CHECK(effects == std::vector<std::string>{"a1", "c2", "c1"});
    {
      SagaDefinition d;
      d.name = "poison";
      for (int i = 0; i < 2; i++) {
        StepDefinition s;
        s.name = "step" + std::to_string(i + 1);
        s.action = [](const StepContext&) { return StepResult::Fail("not expected to run"); };
        s.compensation = s.action;
        d.steps.push_back(std::move(s));
      }
      auto eng = SagaEngine::open(store, std::vector{d});
      REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
      auto info = (*eng)->get("p");
      REQUIRE(info.ok());
      CHECK(info->state == SagaState::kCompensated);
      int interrupted = 0;
      for (const auto& h : info->history) interrupted += h.event == SagaEvent::kStepInterrupted;
      CHECK(interrupted == 2);  // attempts 1 and 2; the third used them up
      CHECK(info->error.find("after 3 attempts") != std::string::npos);
      CHECK(info->error.find("interrupted") != std::string::npos);
      REQUIRE((*eng)->shutdown().ok());
    }
    REQUIRE(store.close().ok());
  }
}
