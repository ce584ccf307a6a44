// The commit pipeline: group commit, visibility of written but unpublished
// groups, failures inside the commit leader, and close() racing operations.
// The leader is held at chosen points through the store's internal seams
// (log/store_impl.hpp), so each race here happens every run.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <new>
#include <random>
#include <thread>

#include "evstore/inspect.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "log/store_impl.hpp"
#include "test_util.hpp"

using namespace evstore;
using namespace std::chrono_literals;
using evtest::Collect;
using evtest::Evs;
using evtest::TempDir;

namespace {

// Long enough that only a hang reaches it: a liveness bound, not a timing
// expectation.
constexpr auto kHang = 60s;

// Stops the test binary when `f` does not finish: a hung commit would
// otherwise hang the destructor of its future too.
template <typename T>
T Await(std::future<T>& f, const char* what) {
  if (f.wait_for(kHang) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: %s did not finish within %lld s\n", what,
                 static_cast<long long>(kHang.count()));
    std::abort();
  }
  return f.get();
}

// Holds the commit leader of the next group after its write, before it
// publishes the group (the `after_write` seam).
class LeaderLatch {
 public:
  void Arm() {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = true;
  }
  void OnWrite(uint64_t first, uint64_t end) {
    std::unique_lock<std::mutex> l(mu_);
    if (!armed_) return;
    armed_ = false;
    held_ = true;
    first_ = first;
    end_ = end;
    cv_.notify_all();
    cv_.wait(l, [&] { return released_; });
    released_ = false;
    held_ = false;
  }
  // Waits until a leader is held; false after kHang.
  bool WaitHeld() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, kHang, [&] { return held_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }
  uint64_t first() {
    std::lock_guard<std::mutex> l(mu_);
    return first_;
  }
  uint64_t end() {
    std::lock_guard<std::mutex> l(mu_);
    return end_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, held_ = false, released_ = false;
  uint64_t first_ = 0, end_ = 0;
};

struct Fixture {
  TempDir dir;
  LeaderLatch latch;
  std::atomic<bool> throw_before_write{false};
  Store store;

  explicit Fixture(Options o = Options::Fast()) : store(Open(o)) {}

  Store Open(const Options& o) {
    internal::Seams seams;
    seams.after_write = [this](uint64_t first, uint64_t end) { latch.OnWrite(first, end); };
    seams.before_write = [this] {
      if (throw_before_write.exchange(false)) throw std::bad_alloc();
    };
    auto r = internal::OpenStore(dir.sub("db"), o, seams);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return std::move(r).value();
  }
  internal::StoreImpl* impl() { return internal::StoreAccess::Impl(store); }

  // Waits until `n` commit requests are queued (the held leader's included).
  void WaitQueued(size_t n) {
    auto deadline = std::chrono::steady_clock::now() + kHang;
    while (impl()->QueuedCommits() < n) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "commits never queued");
      std::this_thread::sleep_for(1ms);
    }
  }

  std::future<Result<AppendResult>> AppendAsync(std::string stream, size_t n) {
    return std::async(std::launch::async, [this, stream, n] {
      return store.append(stream, ExpectedVersion::Any(), Evs(n));
    });
  }
};

size_t Count(Result<EventIterator> r) { return Collect(std::move(r)).size(); }

}  // namespace

TEST_SUITE("commit") {
  TEST_CASE("a group that is written but not yet published is invisible to every read") {
    Fixture f;
    Store& s = f.store;
    REQUIRE(s.append("a-1", ExpectedVersion::Any(), Evs(3)).ok());
    f.latch.Arm();
    auto writer = f.AppendAsync("a-1", 2);
    REQUIRE(f.latch.WaitHeld());
    // The group is in RocksDB now; no read may show it before it is published.
    CHECK(f.latch.first() == 3);
    CHECK(f.latch.end() == 5);
    CHECK(Count(s.read_all(0)) == 3);
    CHECK(Count(s.read_all(kEnd, Direction::kBackward)) == 3);
    CHECK(Count(s.read_stream("a-1", 0)) == 3);
    CHECK(Count(s.read_stream("a-1", kEnd, Direction::kBackward)) == 3);
    CHECK(Count(s.read_category("a", 0)) == 3);
    CHECK(Count(s.read_type("Happened", 0)) == 3);
    CHECK(Count(s.read_type("Happened", kEnd, Direction::kBackward)) == 3);
    CHECK(s.read_event(3).status().IsNotFound());
    auto h = s.stream_head("a-1");
    REQUIRE(h.ok());
    CHECK(h->last_version == 2);
    CHECK(s.stats()->next_position == 3);
    f.latch.Release();
    auto r = Await(writer, "the held append");
    REQUIRE(r.ok());
    CHECK(r->first_position == 3);
    // Once the append has returned, every read sees it.
    CHECK(Count(s.read_all(0)) == 5);
    CHECK(Count(s.read_stream("a-1", 0)) == 5);
    CHECK(s.stream_head("a-1")->last_version == 4);
    CHECK(s.read_event(4).ok());
  }

  TEST_CASE("appends queued behind a leader commit together in one group") {
    Fixture f;
    Store& s = f.store;
    f.latch.Arm();
    auto first = f.AppendAsync("g-lead", 1);
    REQUIRE(f.latch.WaitHeld());
    constexpr int kQueued = 6;
    std::vector<std::future<Result<AppendResult>>> rest;
    for (int i = 0; i < kQueued; i++) rest.push_back(f.AppendAsync("g-" + std::to_string(i), 2));
    f.WaitQueued(1 + kQueued);
    uint64_t groups = s.stats()->commit_groups;
    f.latch.Release();
    REQUIRE(Await(first, "the held append").ok());
    std::vector<uint64_t> starts;
    for (auto& r : rest) {
      auto a = Await(r, "a queued append");
      REQUIRE(a.ok());
      starts.push_back(a->first_position);
    }
    // One write for all of the queued appends, at consecutive positions.
    CHECK(s.stats()->commit_groups == groups + 1);
    std::sort(starts.begin(), starts.end());
    for (size_t i = 0; i < starts.size(); i++) CHECK(starts[i] == 1 + 2 * i);
  }

  TEST_CASE("a precheck that throws fails its own request and no other") {
    Fixture f;
    Store& s = f.store;
    f.latch.Arm();
    auto first = f.AppendAsync("p-lead", 1);
    REQUIRE(f.latch.WaitHeld());
    auto thrower = std::async(std::launch::async, [&] {
      EventData e = evtest::Ev("Thrown");
      internal::PartRef part{"p-thrown", ExpectedVersion::Any(), std::span<const EventData>(&e, 1)};
      internal::CommitRequest req;
      req.parts = std::span<const internal::PartRef>(&part, 1);
      req.precheck = []() -> Status { throw std::runtime_error("check exploded"); };
      return f.impl()->Commit(&req);
    });
    f.WaitQueued(2);
    auto other = f.AppendAsync("p-other", 1);
    f.WaitQueued(3);
    f.latch.Release();
    REQUIRE(Await(first, "the held append").ok());
    Status t = Await(thrower, "the throwing commit");
    CHECK(t.IsAborted());
    CHECK(t.ToString().find("check exploded") != std::string::npos);
    auto o = Await(other, "the append grouped with it");
    REQUIRE(o.ok());
    CHECK(o->first_position == 1);  // nothing of the failed request was written
    CHECK(s.stream_head("p-thrown").status().IsNotFound());
    CHECK(s.append("p-after", ExpectedVersion::Any(), Evs(1)).ok());
    CHECK(s.close().ok());
  }

  TEST_CASE("an exception while the leader prepares fails its group and hands leadership on") {
    Fixture f;
    Store& s = f.store;
    f.latch.Arm();
    auto first = f.AppendAsync("x-lead", 1);
    REQUIRE(f.latch.WaitHeld());
    // The next group: two appends, led by whichever queued first; it throws
    // just before its write.
    auto b = f.AppendAsync("x-b", 1);
    f.WaitQueued(2);
    auto c = f.AppendAsync("x-c", 2);
    f.WaitQueued(3);
    f.throw_before_write = true;
    f.latch.Release();
    REQUIRE(Await(first, "the held append").ok());
    auto rb = Await(b, "the leader that threw");
    auto rc = Await(c, "its follower");
    CHECK(rb.status().IsAborted());
    CHECK(rc.status().IsAborted());
    CHECK(rb.status().ToString().find("nothing was written") != std::string::npos);
    // Nothing was written, and the pipeline goes on: the next append takes
    // the next position, and close() does not hang.
    auto d = s.append("x-d", ExpectedVersion::Any(), Evs(1));
    REQUIRE(d.ok());
    CHECK(d->first_position == 1);
    CHECK(s.stream_head("x-b").status().IsNotFound());
    CHECK(s.stream_head("x-c").status().IsNotFound());
    auto closing = std::async(std::launch::async, [&] { return s.close(); });
    CHECK(Await(closing, "close").ok());
  }

  TEST_CASE("close() is not held back by operations that start after it") {
    Fixture f;
    Store& s = f.store;
    f.latch.Arm();
    auto held = f.AppendAsync("c-held", 1);
    REQUIRE(f.latch.WaitHeld());
    // An operation is in flight: close() must wait for it...
    auto closing = std::async(std::launch::async, [&] { return s.close(); });
    CHECK(closing.wait_for(50ms) == std::future_status::timeout);
    // ...and an operation that starts while close() waits must wait too,
    // then see the store closed, instead of getting ahead of close().
    auto late = std::async(std::launch::async, [&] { return s.stream_head("c-held").status(); });
    CHECK(late.wait_for(50ms) == std::future_status::timeout);
    f.latch.Release();
    REQUIRE(Await(held, "the held append").ok());
    CHECK(Await(closing, "close").ok());
    CHECK(Await(late, "the late operation").IsClosed());
  }

  TEST_CASE("close() gets through a steady stream of operations from many threads") {
    Fixture f(Options::Durable());
    Store& s = f.store;
    std::atomic<int> running{0};
    std::vector<std::future<int>> workers;
    for (int t = 0; t < 6; t++) {
      workers.push_back(std::async(std::launch::async, [&, t] {
        running++;
        std::string stream = "busy-" + std::to_string(t);
        for (int i = 0;; i++) {
          auto a = s.append(stream, ExpectedVersion::Any(), Evs(1));
          if (!a.ok()) return a.status().IsClosed() ? i : -1;
          auto h = s.stream_head(stream);
          if (!h.ok()) return h.status().IsClosed() ? i : -1;
        }
      }));
    }
    while (running < 6) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);
    auto closing = std::async(std::launch::async, [&] { return s.close(); });
    CHECK(Await(closing, "close under load").ok());
    for (auto& w : workers) CHECK(Await(w, "a worker") >= 0);
  }

  TEST_CASE("a callback run inside an operation may use the store but not close it") {
    Fixture f;
    Store& s = f.store;
    REQUIRE(s.append("cb-1", ExpectedVersion::Any(), Evs(2)).ok());
    int calls = 0;
    Status inner_close;
    inspect::VerifyOptions vo;
    vo.progress = [&](const inspect::Progress&) {
      calls++;
      CHECK(s.stream_head("cb-1").ok());
      inner_close = s.close();
    };
    auto verify = std::async(std::launch::async, [&] { return inspect::Verify(s, vo).status(); });
    Status report = Await(verify, "verify with a callback that uses the store");
    REQUIRE_MESSAGE(report.ok(), report.ToString());
    CHECK(calls > 0);
    CHECK(inner_close.IsBusy());
    CHECK(s.close().ok());
  }

  TEST_CASE("close() racing appends, reads, iterators and a saga engine leaves a sound store") {
    TempDir dir;
    const std::string path = dir.sub("db");
    // A two-step saga whose steps each append one event of their own.
    SagaDefinition def;
    def.name = "race";
    for (int i = 0; i < 2; i++) {
      StepDefinition st;
      st.name = "s" + std::to_string(i);
      st.action = [](const StepContext& c) {
        EventData e = evtest::Ev("Stepped", std::string(c.step), c.event_id(0));
        return StepResult::Success("", {StreamAppend{"race-" + std::string(c.saga_id),
                                                     ExpectedVersion::Any(), {e}}});
      };
      st.retry.initial_backoff = std::chrono::milliseconds(1);
      def.steps.push_back(std::move(st));
    }
    std::mt19937 rng(7);
    int sagas_started = 0, saga_id = 0;
    uint64_t ops = 0;
    for (int round = 0; round < 12; round++) {
      Options o = round % 2 ? Options::Durable() : Options::Fast();
      Store s = evtest::OpenOrDie(path, o);
      auto eng = SagaEngine::open(s, std::span<const SagaDefinition>(&def, 1));
      REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
      std::atomic<bool> bad{false};
      std::atomic<uint64_t> done_ops{0};
      // Every failure a worker sees must be the store closing under it.
      auto expect_closed = [&](const Status& st) {
        if (st.IsClosed()) return true;
        std::fprintf(stderr, "unexpected: %s\n", st.ToString().c_str());
        bad = true;
        return true;
      };
      std::vector<std::future<void>> workers;
      for (int t = 0; t < 2; t++)
        workers.push_back(std::async(std::launch::async, [&, t] {
          for (int i = 0;; i++, done_ops++) {
            auto a = s.append("w" + std::to_string(t) + "-" + std::to_string(i % 5),
                              ExpectedVersion::Any(), Evs(1 + i % 3));
            if (!a.ok() && expect_closed(a.status())) return;
          }
        }));
      workers.push_back(std::async(std::launch::async, [&] {
        for (;; done_ops++) {
          auto it = s.read_all(0, Direction::kForward, 50);
          if (!it.ok() && expect_closed(it.status())) return;
          uint64_t expect = 0;
          for (; it->Valid(); it->Next())
            if (it->value().position != expect++) bad = true;
          if (!it->status().ok()) bad = true;
          auto h = s.stream_head("w0-0");
          if (!h.ok() && !h.status().IsNotFound() && expect_closed(h.status())) return;
          auto e = s.read_event(0);
          if (!e.ok() && !e.status().IsNotFound() && expect_closed(e.status())) return;
        }
      }));
      std::atomic<int> started{0};
      workers.push_back(std::async(std::launch::async, [&, base = saga_id] {
        for (int i = 0; i < 300; i++, done_ops++) {
          auto r = (*eng)->start("race", "saga-" + std::to_string(base + i), "");
          if (!r.ok()) return;  // the engine stops once the store closes
          started++;
        }
      }));
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 30));
      auto closing = std::async(std::launch::async, [&] {
        for (;;) {
          Status c = s.close();
          if (!c.IsBusy()) return c;  // Busy: an iterator was open; try again
          std::this_thread::yield();
        }
      });
      Status c = Await(closing, "close racing the workers");
      CHECK_MESSAGE(c.ok(), c.ToString());
      for (auto& w : workers) Await(w, "a worker after close");
      CHECK_FALSE(bad.load());
      // The engine stops once one of its writes finds the store closed.
      Status es = (*eng)->status();
      CHECK_MESSAGE((es.ok() || es.IsClosed()), es.ToString());
      CHECK((*eng)->shutdown().ok());
      ops += done_ops;
      sagas_started += started;
      saga_id += 1000000;
      // The store reopens sound, and every saga started finishes.
      Store again = evtest::OpenOrDie(path, o);
      auto report = inspect::Verify(again);
      REQUIRE_MESSAGE(report.ok(), report.status().ToString());
      std::string first_problem = report->problems.empty() ? "" : report->problems[0].message;
      CHECK_MESSAGE(report->problem_count == 0, first_problem);
      auto eng2 = SagaEngine::open(again, std::span<const SagaDefinition>(&def, 1));
      REQUIRE_MESSAGE(eng2.ok(), eng2.status().ToString());
      REQUIRE((*eng2)->wait_idle(kHang).ok());
      CHECK((*eng2)->shutdown().ok());
      CHECK(again.close().ok());
    }
    MESSAGE(ops << " operations and " << sagas_started << " sagas raced close() over 12 rounds");
    CHECK(sagas_started > 0);
  }
}
