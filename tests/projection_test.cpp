// Projections: exactly-once state with its checkpoint, queries, handler
// errors and retries, online rebuilds, and misuse.
#include <doctest/doctest.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>

#include "evstore/projection.hpp"
#include "evstore/store.hpp"
#include "log/store_impl.hpp"
#include "projection_fold.hpp"
#include "test_util.hpp"

using namespace evstore;
using namespace std::chrono_literals;
using evtest::Collect;
using evtest::Ev;
using evtest::Evs;
using evtest::TempDir;
using evtest::OpenStore;
using evtest::Append;
using evtest::CountByType;
using evtest::CheckFoldMatchesLog;

namespace {

constexpr auto kHang = 60s;



std::unique_ptr<Projection> Run(Store& s, const std::string& name, ProjectionHandler h,
                                ProjectionOptions o = ProjectionOptions()) {
  auto p = s.run_projection(name, o, std::move(h));
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  return std::move(p).value();
}

void WaitPhase(Projection& p, ProjectionStatus::Phase phase) {
  const auto deadline = std::chrono::steady_clock::now() + kHang;
  while (p.status().phase != phase) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "projection never reached the phase");
    std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

TEST_CASE("a projection folds the log into keyed state, queried by key and prefix") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "order-1", 3, "Placed");
  Append(s, "order-2", 2, "Shipped");
  auto p = Run(s, "by-type", CountByType);
  uint64_t last = Append(s, "order-3", 1, "Placed");
  REQUIRE(p->wait_for(last + 1, kHang).ok());

  auto placed = s.projection_get("by-type", "count/Placed");
  REQUIRE(placed.ok());
  CHECK(*placed == "4");
  CHECK(s.projection_get("by-type", "count/Nothing").status().IsNotFound());
  CHECK(s.projection_get("no-such", "count/Placed").status().IsNotFound());

  auto all = s.projection_scan("by-type", "count/");
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].key == "count/Placed");
  CHECK((*all)[1].key == "count/Shipped");
  CHECK((*all)[1].value == "2");
  auto page = s.projection_scan("by-type", "count/", "count/Placed", 10);
  REQUIRE(page.ok());
  REQUIRE(page->size() == 1);
  CHECK((*page)[0].key == "count/Shipped");
  auto limited = s.projection_scan("by-type", "", {}, 1);
  REQUIRE(limited.ok());
  CHECK(limited->size() == 1);

  ProjectionStatus st = p->status();
  CHECK(st.name == "by-type");
  CHECK(st.position == last + 1);
  CHECK(st.lag_events == 0);
  CHECK(st.events_handled == 6);
  CHECK(st.last_error.empty());
  auto info = s.projection_info("by-type");
  REQUIRE(info.ok());
  CHECK(info->position == last + 1);
  CHECK(info->version == 1);
  CHECK(info->events_handled == 6);
  auto list = s.list_projections();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].name == "by-type");
}

TEST_CASE("a handler reads its own batch's changes, and a filter selects what it sees") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "cart-1", 2, "Added");
  Append(s, "order-1", 5, "Placed");
  ProjectionOptions o;
  o.filter = SubscriptionFilter::Category("order");
  o.max_batch = 64;  // every event in one batch: reads must see the batch's own puts
  std::atomic<int> erased_seen{0};
  auto p = Run(
      s, "orders",
      [&](const RecordedEvent& e, ProjectionState& st) -> Status {
        CHECK(e.stream == "order-1");
        auto n = st.get("n");
        int v = n.ok() ? std::stoi(*n) : 0;
        if (!n.ok() && !n.status().IsNotFound()) return n.status();
        Status ps = st.put("n", std::to_string(v + 1));
        if (!ps.ok()) return ps;
        Status es = st.erase("gone");
        if (!es.ok()) return es;
        if (st.get("gone").status().IsNotFound()) erased_seen++;
        return st.put("", "x").IsInvalidArgument() ? Status::OK() : Status::Aborted("empty key accepted");
      },
      o);
  REQUIRE(p->wait_for(s.stats()->next_position, kHang).ok());
  CHECK(*s.projection_get("orders", "n") == "5");
  CHECK(erased_seen.load() == 5);
  CHECK(p->status().last_error.empty());
}

TEST_CASE("state and checkpoint commit together: stops and restarts at any moment fold every event once") {
  TempDir dir;
  Store s = OpenStore(dir);
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    std::mt19937 rng(7);
    for (int i = 0; i < 400; i++) {
      auto r = s.append("s-" + std::to_string(rng() % 9), ExpectedVersion::Any(),
                        Evs(1 + rng() % 3, "T" + std::to_string(rng() % 4)));
      CHECK(r.ok());
    }
    writing = false;
  });
  std::mt19937 rng(11);
  ProjectionOptions o;
  o.max_batch = 5;
  int rounds = 0;
  while (writing.load() || rounds < 3) {
    auto p = Run(s, "fold", CountByType, o);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    p.reset();  // stop at an arbitrary point
    CheckFoldMatchesLog(s, "fold");
    rounds++;
  }
  writer.join();
  auto p = Run(s, "fold", CountByType, o);
  REQUIRE(p->wait_for(s.stats()->next_position, kHang).ok());
  p.reset();
  CheckFoldMatchesLog(s, "fold");
  CHECK(s.projection_info("fold")->position == s.stats()->next_position);
  MESSAGE("restarts: " << rounds);
}

TEST_CASE("a failing handler retries with backoff, shows its error, and does not disturb other projections") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "x-1", 3);
  std::atomic<bool> broken{true};
  std::atomic<int> calls{0};
  ProjectionOptions o;
  o.retry_initial = 1ms;
  o.retry_max = 4ms;
  auto flaky = Run(
      s, "flaky",
      [&](const RecordedEvent& e, ProjectionState& st) -> Status {
        calls++;
        if (e.position == 1 && broken.load()) return Status::IOError("downstream lookup failed");
        return st.put("last", std::to_string(e.position));
      },
      o);
  auto healthy = Run(s, "healthy", CountByType);
  REQUIRE(healthy->wait_for(3, kHang).ok());
  WaitPhase(*flaky, ProjectionStatus::Phase::kRetrying);
  ProjectionStatus st = flaky->status();
  CHECK(st.last_error.find("downstream lookup failed") != std::string::npos);
  CHECK(st.last_error.find("position 1") != std::string::npos);
  CHECK(st.position == 0);  // the failed batch changed nothing
  CHECK(s.projection_get("flaky", "last").status().IsNotFound());
  const auto deadline = std::chrono::steady_clock::now() + kHang;
  while (flaky->status().retries < 3) REQUIRE(std::chrono::steady_clock::now() < deadline);
  broken = false;
  REQUIRE(flaky->wait_for(3, kHang).ok());
  CHECK(*s.projection_get("flaky", "last") == "2");
  CHECK(flaky->status().retries >= 3);
  Append(s, "x-1", 1);
  CHECK(healthy->wait_for(4, kHang).ok());
}

TEST_CASE("max_retries stops the projection in the failed state; a throwing handler is a failure too") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "x-1", 2);
  ProjectionOptions o;
  o.retry_initial = 1ms;
  o.retry_max = 2ms;
  o.max_retries = 3;
  std::atomic<int> calls{0};
  auto p = Run(
      s, "poison",
      [&](const RecordedEvent&, ProjectionState&) -> Status {
        calls++;
        throw std::runtime_error("bad event shape");
      },
      o);
  Status w = p->wait();
  CHECK(w.IsAborted());
  CHECK(w.message().find("bad event shape") != std::string::npos);
  CHECK(calls.load() == 3);
  CHECK(p->status().phase == ProjectionStatus::Phase::kFailed);
  CHECK(p->wait_for(1, 10ms).IsAborted());
  // It no longer runs: the name can be taken again.
  auto again = s.run_projection("poison", o, CountByType);
  CHECK(again.ok());
}

TEST_CASE("a new handler version rebuilds online: the old state serves until the new one has caught up") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "x-1", 4, "A");
  {
    auto p = Run(s, "r", CountByType);
    REQUIRE(p->wait_for(4, kHang).ok());
  }
  CHECK(*s.projection_get("r", "count/A") == "4");

  std::promise<void> release;
  std::shared_future<void> go = release.get_future().share();
  ProjectionOptions o;
  o.version = 2;
  auto p = Run(
      s, "r",
      [&](const RecordedEvent& e, ProjectionState& st) -> Status {
        go.wait();
        return st.put("v2/" + e.type, "seen");
      },
      o);
  // The rebuild is held in its first batch: queries see version 1's state.
  const auto deadline = std::chrono::steady_clock::now() + kHang;
  while (!p->status().rebuilding) REQUIRE(std::chrono::steady_clock::now() < deadline);
  CHECK(*s.projection_get("r", "count/A") == "4");
  CHECK(s.projection_info("r")->rebuilding);
  CHECK(s.projection_info("r")->version == 1);
  release.set_value();
  while (p->status().rebuilds == 0) REQUIRE(std::chrono::steady_clock::now() < deadline);
  CHECK(s.projection_get("r", "count/A").status().IsNotFound());
  CHECK(*s.projection_get("r", "v2/A") == "seen");
  auto info = s.projection_info("r");
  REQUIRE(info.ok());
  CHECK(info->version == 2);
  CHECK(!info->rebuilding);
  // The old instance's state and record are gone.
  std::vector<std::pair<uint64_t, format::ProjectionInstance>> instances;
  REQUIRE(internal::StoreAccess::Impl(s)->ListProjectionInstances(&instances).ok());
  CHECK(instances.size() == 1);
}

TEST_CASE("rebuild() folds the log again and ends equal to the incremental state") {
  TempDir dir;
  Store s = OpenStore(dir);
  for (int i = 0; i < 30; i++) Append(s, "s-" + std::to_string(i % 4), 1 + i % 3, "T" + std::to_string(i % 5));
  ProjectionOptions o;
  o.max_batch = 7;
  auto p = Run(s, "inc", CountByType, o);
  REQUIRE(p->wait_for(s.stats()->next_position, kHang).ok());
  auto before = s.projection_scan("inc", "");
  REQUIRE(before.ok());
  REQUIRE(p->rebuild().ok());
  CHECK(p->rebuild().IsBusy());
  const auto deadline = std::chrono::steady_clock::now() + kHang;
  while (p->status().rebuilds == 0) REQUIRE(std::chrono::steady_clock::now() < deadline);
  CHECK(!p->status().rebuilding);
  auto after = s.projection_scan("inc", "");
  REQUIRE(after.ok());
  REQUIRE(after->size() == before->size());
  for (size_t i = 0; i < after->size(); i++) {
    CHECK((*after)[i].key == (*before)[i].key);
    CHECK((*after)[i].value == (*before)[i].value);
  }
  p.reset();
  CheckFoldMatchesLog(s, "inc");
}

TEST_CASE("stop() from inside the handler ends the projection after that batch") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "x-1", 10);
  Projection* self = nullptr;
  std::promise<void> ready;
  std::shared_future<void> go = ready.get_future().share();
  ProjectionOptions o;
  o.max_batch = 2;
  auto p = Run(
      s, "stopper",
      [&](const RecordedEvent& e, ProjectionState& st) -> Status {
        go.wait();
        self->stop();
        CHECK(self->wait().IsBusy());
        return CountByType(e, st);
      },
      o);
  self = p.get();
  ready.set_value();
  CHECK(p->wait().ok());
  CHECK(p->status().phase == ProjectionStatus::Phase::kStopped);
  CHECK(s.projection_info("stopper")->position <= 2);
}

TEST_CASE("closing the store stops a running projection; misuse gets clear errors") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "x-1", 2);
  auto p = Run(s, "c", CountByType);
  REQUIRE(p->wait_for(2, kHang).ok());

  CHECK(s.run_projection("c", {}, CountByType).status().IsBusy());
  CHECK(s.delete_projection("c").IsBusy());
  CHECK(s.run_projection("", {}, CountByType).status().IsInvalidArgument());
  CHECK(s.run_projection(std::string(300, 'n'), {}, CountByType).status().IsInvalidArgument());
  CHECK(s.run_projection("n", {}, ProjectionHandler()).status().IsInvalidArgument());
  ProjectionOptions bad;
  bad.max_batch = 0;
  CHECK(s.run_projection("n", bad, CountByType).status().IsInvalidArgument());
  bad = ProjectionOptions();
  bad.filter = SubscriptionFilter::Types({});
  CHECK(s.run_projection("n", bad, CountByType).status().IsInvalidArgument());
  bad = ProjectionOptions();
  bad.retry_initial = 0ms;
  CHECK(s.run_projection("n", bad, CountByType).status().IsInvalidArgument());
  CHECK(s.projection_get("c", "").status().IsInvalidArgument());
  CHECK(s.projection_get("c", std::string(2000, 'k')).status().IsInvalidArgument());
  CHECK(s.projection_get("", "k").status().IsInvalidArgument());
  CHECK(s.delete_projection("n").IsNotFound());
  CHECK(s.list_projections()->size() == 1);

  REQUIRE(s.close().ok());
  CHECK(p->wait().IsClosed());
  CHECK(p->status().phase == ProjectionStatus::Phase::kStopped);
  CHECK(s.projection_get("c", "count/Happened").status().IsClosed());
  CHECK(s.run_projection("d", {}, CountByType).status().IsClosed());
}

TEST_CASE("delete_projection removes a stopped projection and all its state") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "x-1", 3);
  {
    auto p = Run(s, "gone", CountByType);
    REQUIRE(p->wait_for(3, kHang).ok());
  }
  REQUIRE(s.delete_projection("gone").ok());
  CHECK(s.projection_get("gone", "count/Happened").status().IsNotFound());
  CHECK(s.projection_info("gone").status().IsNotFound());
  std::vector<std::pair<uint64_t, format::ProjectionInstance>> instances;
  REQUIRE(internal::StoreAccess::Impl(s)->ListProjectionInstances(&instances).ok());
  CHECK(instances.empty());
  // Started again, it folds from the start.
  auto p = Run(s, "gone", CountByType);
  REQUIRE(p->wait_for(3, kHang).ok());
  CHECK(*s.projection_get("gone", "count/Happened") == "3");
}

TEST_CASE("a snapshot reads the log and stream heads as of one position") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "a-1", 3, "X");
  Append(s, "b-1", 2, "Y");
  auto snap = s.snapshot();
  REQUIRE(snap.ok());
  CHECK(snap->position() == 5);
  Append(s, "a-1", 2, "X");
  Append(s, "c-1", 1, "X");

  CHECK(Collect(snap->read_all(0)).size() == 5);
  CHECK(Collect(s.read_all(0)).size() == 8);
  CHECK(Collect(snap->read_all(4, Direction::kBackward)).size() == 5);
  CHECK(Collect(snap->read_stream("a-1", 0)).size() == 3);
  CHECK(Collect(snap->read_type("X", 0)).size() == 3);
  CHECK(Collect(snap->read_category("a", 0)).size() == 3);
  auto h = snap->stream_head("a-1");
  REQUIRE(h.ok());
  CHECK(h->last_version == 2);
  CHECK(h->last_position == 2);
  CHECK(s.stream_head("a-1")->last_version == 4);
  CHECK(snap->stream_head("c-1").status().IsNotFound());
  CHECK(snap->read_stream("c-1", 0).status().IsNotFound());
  CHECK(snap->stream_head("").status().IsInvalidArgument());

  // Alive, it keeps the store open, like an iterator.
  CHECK(s.close().IsBusy());
  { Snapshot gone = std::move(snap).value(); }
  CHECK(s.close().ok());
}

TEST_CASE("a snapshot's projection state is the fold of the snapshot's log up to its checkpoint, while both move on") {
  TempDir dir;
  Store s = OpenStore(dir);
  ProjectionOptions o;
  o.max_batch = 3;
  auto p = Run(s, "live", CountByType, o);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 300 && !done; i++)
      CHECK(s.append("w-" + std::to_string(i % 7), ExpectedVersion::Any(), Evs(1 + i % 2, "T" + std::to_string(i % 3))).ok());
    done = true;
  });
  int checked = 0;
  while (!done.load() || checked < 5) {
    auto snap = s.snapshot();
    REQUIRE(snap.ok());
    auto info = snap->projection_info("live");
    REQUIRE(info.ok());
    REQUIRE(info->position <= snap->position());
    std::map<std::string, uint64_t> want;
    for (const RecordedEvent& e : Collect(snap->read_all(0, Direction::kForward, info->position)))
      want["count/" + e.type]++;
    if (info->position > 0) want["total"] = info->position;
    // Between the scan below and this point the projection commits more:
    // the snapshot must not see it.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    auto state = snap->projection_scan("live", "", {}, 1000);
    REQUIRE(state.ok());
    std::map<std::string, uint64_t> got;
    for (const auto& e : *state) got[e.key] = std::stoull(e.value);
    CHECK(got == want);
    if (info->position > 0) CHECK(*snap->projection_get("live", "total") == std::to_string(info->position));
    checked++;
  }
  writer.join();
  MESSAGE(checked << " snapshots checked");
}

TEST_CASE("a snapshot taken before a rebuild's swap keeps reading the old state") {
  TempDir dir;
  Store s = OpenStore(dir);
  Append(s, "x-1", 3, "A");
  {
    auto p = Run(s, "sw", CountByType);
    REQUIRE(p->wait_for(3, kHang).ok());
  }
  auto snap = s.snapshot();
  REQUIRE(snap.ok());
  ProjectionOptions o;
  o.version = 2;
  auto p = Run(s, "sw", [](const RecordedEvent& e, ProjectionState& st) { return st.put("v2/" + e.type, "1"); }, o);
  const auto deadline = std::chrono::steady_clock::now() + kHang;
  while (s.projection_info("sw")->version != 2) REQUIRE(std::chrono::steady_clock::now() < deadline);
  // The old instance is deleted now, but the snapshot still sees it.
  CHECK(s.projection_get("sw", "count/A").status().IsNotFound());
  CHECK(*snap->projection_get("sw", "count/A") == "3");
  CHECK(snap->projection_info("sw")->version == 1);
}

TEST_CASE("a live filtered projection's position passes the events its filter skips") {
  TempDir dir;
  Store s = OpenStore(dir);
  ProjectionOptions o;
  o.filter = SubscriptionFilter::Types({"Wanted"});
  auto p = Run(s, "filtered", CountByType, o);
  WaitPhase(*p, ProjectionStatus::Phase::kLive);
  Append(s, "x-1", 2, "Wanted");
  uint64_t last = Append(s, "x-1", 3, "Skipped");
  REQUIRE(p->wait_for(last + 1, kHang).ok());
  CHECK(p->status().lag_events == 0);
  CHECK(*s.projection_get("filtered", "count/Wanted") == "2");
}

TEST_CASE("the threads evstore starts carry names: a projection's and a push subscription's") {
  TempDir dir;
  Store s = OpenStore(dir);
  uint64_t last = Append(s, "order-1", 1, "Placed");
  auto name_of_this_thread = [] {
    char buf[16] = {};
    REQUIRE(pthread_getname_np(pthread_self(), buf, sizeof buf) == 0);
    return std::string(buf);
  };
  std::promise<std::string> proj_name;
  std::atomic<bool> once{false};
  auto p = Run(s, "names", [&](const RecordedEvent&, ProjectionState&) {
    if (!once.exchange(true)) proj_name.set_value(name_of_this_thread());
    return Status::OK();
  });
  REQUIRE(p->wait_for(last + 1, kHang).ok());
  CHECK(proj_name.get_future().get() == "evs-projection");

  std::promise<std::string> push_name;
  std::atomic<bool> push_once{false};
  auto push = s.subscribe(SubscribeOptions(), [&](const Delivery&) {
    if (!push_once.exchange(true)) push_name.set_value(name_of_this_thread());
    return Status::OK();
  });
  REQUIRE(push.ok());
  CHECK(push_name.get_future().get() == "evs-push");
  (*push)->stop();
}
