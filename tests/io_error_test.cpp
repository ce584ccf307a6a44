// I/O errors and a full disk under a running store (FaultFs injects them):
// every affected call fails (never a silent success), the store stops
// writing with a status that says why (fail-stop: nothing more reaches
// RocksDB), readers keep working, close() reports the trouble, and a reopen
// recovers every acknowledged event and resolves each unknown outcome by a
// retry with the same ids. A saga engine on the store stops cleanly and
// resumes after the reopen.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "evstore/inspect.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "fault_fs.hpp"
#include "fault_test_util.hpp"
#include "log/store_impl.hpp"
#include "test_util.hpp"

using namespace evstore;
using namespace std::chrono_literals;
using evtest::FaultEffect;
using evtest::FaultFs;
using evtest::FaultRule;
using evtest::FileKind;
using evtest::FsOp;

namespace {

// One append the test made, and what became of it.
struct Sent {
  std::string stream;
  std::vector<EventData> events;  // with caller ids
  bool acked = false;
  AppendResult result;
};

EventData Event(const std::string& stream, int n) {
  EventData e = evtest::Ev("Happened", stream + "#" + std::to_string(n), Uuid::Random());
  e.metadata = "meta-" + std::to_string(n);
  return e;
}

// A saga whose one step appends an event.
SagaDefinition OneStepSaga() {
  SagaDefinition d;
  d.name = "io";
  StepDefinition s;
  s.name = "emit";
  s.action = [](const StepContext& c) {
    EventData e = evtest::Ev("Emitted", std::string(c.saga_id), c.event_id(0));
    return StepResult::Success("", {StreamAppend{"io-" + std::string(c.saga_id),
                                                 ExpectedVersion::Any(), {e}}});
  };
  s.retry.initial_backoff = 1ms;
  d.steps.push_back(std::move(s));
  return d;
}

class Harness {
 public:
  explicit Harness(Options o, internal::Seams seams = {}) : options_(o), seams_(std::move(seams)) {
    seams_.file_system = fs_;
    Open();
  }

  void Open() {
    auto r = internal::OpenStore(path_, options_, seams_);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    store_.emplace(std::move(r).value());
  }
  Store& store() { return *store_; }
  FaultFs& fs() { return *fs_; }

  // Appends n events to `stream`; records the outcome.
  Status Append(const std::string& stream, int n) {
    Sent s;
    s.stream = stream;
    for (int i = 0; i < n; i++) s.events.push_back(Event(stream, static_cast<int>(sent_.size() * 10 + i)));
    auto r = store_->append(stream, ExpectedVersion::Any(), s.events);
    s.acked = r.ok();
    if (r.ok()) s.result = *r;
    sent_.push_back(s);
    return r.status();
  }

  // Closes the store (returning what close() said) and reopens it on a
  // healthy file system: no rules, nothing lost that the OS had.
  Status CloseAndReopen() {
    Status c = store_->close();
    store_.reset();
    REQUIRE(fs_->Reset().ok());
    Open();
    return c;
  }

  // Every acknowledged append is in the store, where it was acknowledged,
  // with its bytes; every other one is there exactly once or not at all,
  // and a retry with the same ids settles it; the store verifies clean.
  void CheckRecovered() {
    int landed = 0, absent = 0;
    for (const Sent& s : sent_) {
      if (s.acked) {
        for (size_t i = 0; i < s.events.size(); i++) {
          auto e = store_->read_event(s.result.first_position + i);
          REQUIRE_MESSAGE(e.ok(), e.status().ToString());
          CHECK(e->stream == s.stream);
          CHECK(e->id == s.events[i].id);
          CHECK(e->data == s.events[i].data);
          CHECK(e->metadata == s.events[i].metadata);
          CHECK(e->version == s.result.first_version + i);
        }
        continue;
      }
      // Unknown outcome: the same ids again.
      auto r = store_->append(s.stream, ExpectedVersion::Any(), s.events);
      REQUIRE_MESSAGE(r.ok(), r.status().ToString());
      (r->idempotent_replay ? landed : absent)++;
      auto again = store_->append(s.stream, ExpectedVersion::Any(), s.events);
      REQUIRE(again.ok());
      CHECK(again->idempotent_replay);
      CHECK(again->first_position == r->first_position);
    }
    auto report = inspect::Verify(*store_);
    REQUIRE_MESSAGE(report.ok(), report.status().ToString());
    std::string first = report->problems.empty() ? "" : report->problems[0].message;
    CHECK_MESSAGE(report->problem_count == 0, first);
    MESSAGE(landed << " failed appends had landed, " << absent << " had not");
  }

  int acked() const {
    int n = 0;
    for (const Sent& s : sent_) n += s.acked;
    return n;
  }

 private:
  evtest::ScratchDir dir_;
  std::string path_ = dir_.sub("db");
  std::shared_ptr<FaultFs> fs_ = std::make_shared<FaultFs>();
  Options options_;
  internal::Seams seams_;
  std::optional<Store> store_;
  std::vector<Sent> sent_;
};

// After a fault stopped writes: another append fails with the same reason
// and reaches no file; reads still work.
void CheckStopped(Harness& h, const std::string& why) {
  uint64_t appends = h.fs().Count(FsOp::kAppend);
  uint64_t syncs = h.fs().Count(FsOp::kSync);
  uint64_t writes = h.store().stats()->commit_groups;
  Status again = h.Append("after-1", 1);
  CHECK(h.store().stats()->commit_groups == writes);
  CHECK(again.IsIOError());
  CHECK_MESSAGE(again.ToString().find(why) != std::string::npos, again.ToString());
  CHECK(again.ToString().find("reopened") != std::string::npos);
  CHECK(h.fs().Count(FsOp::kAppend) == appends);
  CHECK(h.fs().Count(FsOp::kSync) == syncs);
  // Readers keep working on what is intact.
  auto all = evtest::Collect(h.store().read_all(0));
  CHECK(all.size() >= 1);
  CHECK(h.store().stream_head("before-1").ok());
}

}  // namespace

TEST_SUITE("io_errors") {
  TEST_CASE("a failed log write or sync stops the store until it is reopened, losing nothing") {
    struct Case {
      const char* name;
      FaultRule rule;
    };
    Case cases[] = {
        {"WAL append", FaultRule::On(FsOp::kAppend, FileKind::kWal)},
        {"WAL sync", FaultRule::On(FsOp::kSync, FileKind::kWal)},
        {"WAL sync that landed", FaultRule::On(FsOp::kSync, FileKind::kWal).Anyway()},
        {"full disk on a WAL append", FaultRule::On(FsOp::kAppend, FileKind::kWal).With(FaultEffect::kNoSpace)},
    };
    for (const Case& c : cases) {
      std::string name = c.name;
      CAPTURE(name);
      Harness h(Options::Durable());
      for (int i = 0; i < 5; i++) REQUIRE(h.Append("before-" + std::to_string(i % 2), 2).ok());
      auto engine = SagaEngine::open(h.store(), std::vector<SagaDefinition>{OneStepSaga()});
      REQUIRE(engine.ok());
      REQUIRE((*engine)->wait_idle(60s).ok());
      h.fs().AddRule(c.rule);
      Status failed = h.Append("hit-1", 3);
      CHECK(failed.IsIOError());
      CHECK(failed.ToString().find("outcome of this commit is unknown") != std::string::npos);
      MESSAGE(name << ": " << failed.ToString());
      CheckStopped(h, "write failed");
      // The saga engine stops cleanly: its first write fails and it says so.
      auto st = (*engine)->start("io", "after-fault", "");
      CHECK_FALSE(st.ok());
      CHECK((*engine)->shutdown().ok());
      // close() reports that the store had stopped.
      Status closed = h.CloseAndReopen();
      CHECK(closed.IsIOError());
      h.CheckRecovered();
      CHECK(h.Append("after-reopen", 1).ok());
      // The engine opens again and runs.
      auto again = SagaEngine::open(h.store(), std::vector<SagaDefinition>{OneStepSaga()});
      REQUIRE(again.ok());
      REQUIRE((*again)->start("io", "after-reopen", "").ok());
      auto done = (*again)->wait("after-reopen", 60s);
      REQUIRE(done.ok());
      CHECK(done->state == SagaState::kCompleted);
      CHECK((*again)->shutdown().ok());
    }
  }

  TEST_CASE("appends queued behind a failed write fail without writing") {
    // The leader of the failing group waits, before its write, until more
    // appends have queued behind it.
    std::mutex mu;
    std::condition_variable cv;
    bool hold = false, held = false, go = false;
    internal::Seams seams;
    seams.before_write = [&] {
      std::unique_lock<std::mutex> l(mu);
      if (!hold) return;
      hold = false;
      held = true;
      cv.notify_all();
      cv.wait(l, [&] { return go; });
    };
    Harness h(Options::Durable(), seams);
    REQUIRE(h.Append("before-1", 2).ok());
    h.fs().AddRule(FaultRule::On(FsOp::kAppend, FileKind::kWal));
    {
      std::lock_guard<std::mutex> l(mu);
      hold = true;
    }
    auto leader = std::async(std::launch::async, [&] { return h.store().append("hit-1", ExpectedVersion::Any(), evtest::Evs(1)).status(); });
    {
      std::unique_lock<std::mutex> l(mu);
      REQUIRE(cv.wait_for(l, 60s, [&] { return held; }));
    }
    std::vector<std::future<Status>> queued;
    for (int i = 0; i < 3; i++)
      queued.push_back(std::async(std::launch::async, [&, i] {
        return h.store().append("queued-" + std::to_string(i), ExpectedVersion::Any(), evtest::Evs(1)).status();
      }));
    internal::StoreImpl* impl = internal::StoreAccess::Impl(h.store());
    for (int spins = 0; impl->QueuedCommits() < 4; spins++) {
      REQUIRE(spins < 60000);
      std::this_thread::sleep_for(1ms);
    }
    uint64_t writes = h.store().stats()->commit_groups;
    {
      std::lock_guard<std::mutex> l(mu);
      go = true;
      cv.notify_all();
    }
    REQUIRE(leader.wait_for(60s) == std::future_status::ready);
    CHECK(leader.get().IsIOError());
    for (auto& q : queued) {
      REQUIRE(q.wait_for(60s) == std::future_status::ready);
      Status st = q.get();
      CHECK(st.IsIOError());
      CHECK(st.ToString().find("reopened") != std::string::npos);
    }
    // One write reached RocksDB: the failed one.
    CHECK(h.store().stats()->commit_groups == writes + 1);
    CHECK(h.CloseAndReopen().IsIOError());
    for (int i = 0; i < 3; i++) CHECK(h.store().stream_head("queued-" + std::to_string(i)).status().IsNotFound());
    h.CheckRecovered();
  }

  TEST_CASE("a failed flush or MANIFEST write in the background stops the store, losing nothing") {
    struct Case {
      const char* name;
      FaultRule rule;
      const char* why;
    };
    Case cases[] = {
        {"SST write", FaultRule::On(FsOp::kAppend, FileKind::kSst).Always(), "flush"},
        {"SST sync", FaultRule::On(FsOp::kSync, FileKind::kSst).Always(), "flush"},
        {"full disk on an SST write",
         FaultRule::On(FsOp::kAppend, FileKind::kSst).Always().With(FaultEffect::kNoSpace), "flush"},
        {"MANIFEST write", FaultRule::On(FsOp::kAppend, FileKind::kManifest).Always(), "failed"},
    };
    for (const Case& c : cases) {
      std::string name = c.name;
      CAPTURE(name);
      // A small log bound makes RocksDB flush while the appends run.
      Options o = Options::Durable();
      o.max_wal_bytes = 256 << 10;
      Harness h(o);
      REQUIRE(h.Append("before-1", 2).ok());
      h.fs().AddRule(c.rule);
      // Append until the background failure stops the store.
      Status failed;
      for (int i = 0; i < 5000 && failed.ok(); i++) failed = h.Append("bulk-" + std::to_string(i % 7), 20);
      REQUIRE_MESSAGE(!failed.ok(), "the fault never stopped the store");
      CHECK(failed.IsIOError());
      CHECK_MESSAGE(failed.ToString().find(c.why) != std::string::npos, failed.ToString());
      MESSAGE(name << ": " << failed.ToString());
      CheckStopped(h, c.why);
      Status closed = h.CloseAndReopen();
      CHECK(closed.IsIOError());
      h.CheckRecovered();
      CHECK(h.acked() > 1);
    }
  }

  TEST_CASE("a failed read fails that read only, naming the position, and never returns garbage") {
    Harness h(Options::Durable());
    for (int i = 0; i < 20; i++) REQUIRE(h.Append("before-" + std::to_string(i % 3), 5).ok());
    // Into table files, so reads go to the disk.
    CHECK(h.CloseAndReopen().ok());

    SUBCASE("an I/O error") {
      h.fs().AddRule(FaultRule::On(FsOp::kRead, FileKind::kSst).Always());
      auto e = h.store().read_event(42);
      CHECK(e.status().IsIOError());
      CHECK_MESSAGE(e.status().ToString().find("position 42") != std::string::npos, e.status().ToString());
      auto it = h.store().read_all(0);
      if (it.ok()) {
        for (; it->Valid(); it->Next()) {
        }
        CHECK(it->status().IsIOError());
        CHECK(it->status().ToString().find("position") != std::string::npos);
      } else {
        CHECK(it.status().IsIOError());
      }
    }
    SUBCASE("a flipped bit") {
      h.fs().AddRule(FaultRule::On(FsOp::kRead, FileKind::kSst).Always().With(FaultEffect::kCorruptRead));
      auto e = h.store().read_event(42);
      CHECK(e.status().IsCorruption());
      CHECK_MESSAGE(e.status().ToString().find("position 42") != std::string::npos, e.status().ToString());
    }
    // A failed read does not stop writes.
    h.fs().ClearRules();
    CHECK(h.Append("after-1", 1).ok());
    CHECK(h.CloseAndReopen().ok());
    h.CheckRecovered();
  }

  TEST_CASE("close() reports a failed flush; nothing is lost, the log still holds it") {
    Harness h(Options::Fast());
    for (int i = 0; i < 10; i++) REQUIRE(h.Append("before-" + std::to_string(i % 2), 3).ok());
    h.fs().AddRule(FaultRule::On(FsOp::kAppend, FileKind::kSst).Always());
    Status closed = h.CloseAndReopen();
    CHECK(closed.IsIOError());
    CHECK_MESSAGE(closed.ToString().find("flush") != std::string::npos, closed.ToString());
    h.CheckRecovered();
  }

  TEST_CASE("close() reports a failed log sync of a store without sync") {
    Harness h(Options::Fast());
    for (int i = 0; i < 10; i++) REQUIRE(h.Append("before-" + std::to_string(i % 2), 3).ok());
    h.fs().AddRule(FaultRule::On(FsOp::kSync, FileKind::kWal).Always());
    Status closed = h.CloseAndReopen();
    CHECK(closed.IsIOError());
    CHECK_MESSAGE(closed.ToString().find("syncing the write-ahead log") != std::string::npos,
                  closed.ToString());
    h.CheckRecovered();
  }
}
