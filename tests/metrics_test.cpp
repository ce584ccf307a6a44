// Metrics (metrics.hpp): counters and histograms match the operations
// performed, the Prometheus exposition is well formed, RocksDB's figures
// are read, and the logging hook receives RocksDB's messages, forced
// background errors and the fail-stop reason.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "evstore/metrics.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "fault_fs.hpp"
#include "fault_test_util.hpp"
#include "log/store_impl.hpp"
#include "metrics/histogram.hpp"
#include "test_util.hpp"

using evstore::ExpectedVersion;
using evstore::LatencyHistogram;
using evstore::LogLevel;
using evstore::Options;
using evstore::Status;
using evstore::Store;
using evstore::StoreMetrics;
using evstore::metrics::Histogram;
using evtest::FaultFs;
using evtest::FaultRule;
using evtest::FileKind;
using evtest::FsOp;
using evtest::ScratchDir;

namespace {

StoreMetrics Metrics(Store& s) {
  auto m = s.metrics();
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  return std::move(m).value();
}

// Buckets ascend, are cumulative, and end at +Inf with the count.
void CheckShape(const LatencyHistogram& h) {
  REQUIRE(!h.buckets.empty());
  for (size_t i = 1; i < h.buckets.size(); i++) {
    CHECK(h.buckets[i].le > h.buckets[i - 1].le);
    CHECK(h.buckets[i].cumulative >= h.buckets[i - 1].cumulative);
  }
  CHECK(std::isinf(h.buckets.back().le));
  CHECK(h.buckets.back().cumulative == h.count);
}

// The exposition as series name{labels} -> value, checked against the
// format's rules on the way: every sample's family has exactly one HELP and
// one TYPE line before it, families do not interleave, no series repeats.
std::map<std::string, std::string> ParseExposition(const std::string& text) {
  std::map<std::string, std::string> series;
  std::set<std::string> families_seen;
  std::string family, type;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    REQUIRE(!line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK_MESSAGE(families_seen.insert(name).second, "family twice: " << name);
      family = name;
      type.clear();
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name;
      t >> name >> type;
      CHECK(name == family);
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
      continue;
    }
    REQUIRE_MESSAGE(!type.empty(), "sample before its TYPE: " << line);
    // The value follows the last space (label values here hold none... but
    // may: split after the closing brace when there are labels).
    size_t brace = line.rfind('}');
    size_t sp = line.find(' ', brace == std::string::npos ? 0 : brace);
    REQUIRE(sp != std::string::npos);
    std::string key = line.substr(0, sp), value = line.substr(sp + 1);
    std::string name = key.substr(0, key.find('{'));
    if (type == "histogram") {
      CHECK((name == family + "_bucket" || name == family + "_sum" || name == family + "_count"));
    } else {
      CHECK(name == family);
    }
    if (type == "counter") CHECK(name.size() > 6);
    if (type == "counter") CHECK(name.substr(name.size() - 6) == "_total");
    CHECK_MESSAGE(series.emplace(key, value).second, "series twice: " << key);
  }
  return series;
}

uint64_t U(const std::map<std::string, std::string>& s, const std::string& key) {
  auto it = s.find(key);
  REQUIRE_MESSAGE(it != s.end(), "no series " << key);
  return std::stoull(it->second);
}

struct LogSink {
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> lines;
  Options Hook(Options o, LogLevel min = LogLevel::kWarn) {
    o.log_level = min;
    o.log = [this](LogLevel l, std::string_view m) {
      std::lock_guard<std::mutex> g(mu);
      lines.emplace_back(l, std::string(m));
    };
    return o;
  }
  bool Has(LogLevel level, const std::string& part) {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& [l, m] : lines)
      if (l == level && m.find(part) != std::string::npos) return true;
    return false;
  }
  size_t Count(const std::string& part) {
    std::lock_guard<std::mutex> g(mu);
    size_t n = 0;
    for (const auto& [l, m] : lines) n += m.find(part) != std::string::npos;
    return n;
  }
};

}  // namespace

TEST_SUITE("metrics") {
  TEST_CASE("histogram buckets tile the range and the quantiles fall in the right bucket") {
    for (size_t b = 0; b + 1 < Histogram::kFinite; b++) {
      CHECK(Histogram::BucketOf(Histogram::UpperBoundNs(b) - 1) == b);
      CHECK(Histogram::BucketOf(Histogram::UpperBoundNs(b)) == b + 1);
    }
    CHECK(Histogram::BucketOf(0) == 0);
    CHECK(Histogram::BucketOf(uint64_t{1} << 40) == Histogram::kFinite);

    Histogram h;
    for (int i = 0; i < 980; i++) h.RecordNs(10'000);   // 10 us
    for (int i = 0; i < 18; i++) h.RecordNs(5'000'000);  // 5 ms
    for (int i = 0; i < 2; i++) h.RecordNs(uint64_t{1} << 40);  // overflow
    LatencyHistogram s = h.Snapshot();
    CHECK(s.count == 1000);
    CHECK(s.sum_seconds == doctest::Approx(980 * 10e-6 + 18 * 5e-3 + 2 * 1099.511627776));
    CheckShape(s);
    // 10 us lies in [8.192, 10.24) us; 5 ms in [4.194304, 5.24288) ms.
    CHECK(s.p50 >= 8.192e-6);
    CHECK(s.p50 <= 10.24e-6);
    CHECK(s.p99 >= 4.194304e-3);
    CHECK(s.p99 <= 5.24288e-3);
    CHECK(s.p999 >= 137.0);  // the overflow bucket reports its lower bound
    // Cumulative counts at the exposed bounds are exact.
    for (const auto& b : s.buckets) {
      uint64_t want = b.le > 1099.5 ? 1000 : b.le >= 5.24288e-3 ? 998 : b.le >= 16.384e-6 ? 980 : 0;
      CAPTURE(b.le);
      CHECK(b.cumulative == want);
    }
  }

  TEST_CASE("counters and histograms match the operations performed") {
    ScratchDir dir;
    auto opened = Store::open(dir.path(), Options::Durable());
    REQUIRE(opened.ok());
    Store store = std::move(opened).value();
    StoreMetrics m0 = Metrics(store);
    CHECK(m0.appends == 0);
    CHECK(m0.append_queue_wait.count == 0);
    const uint64_t syncs0 = m0.rocksdb.wal_syncs;

    // 3 appends, 5 events; one conflict; one idempotent replay.
    evstore::Uuid id = evstore::Uuid::Random();
    auto e1 = evtest::Ev("Opened", "{\"a\":1}", id);
    e1.metadata = "meta";
    REQUIRE(store.append("order-1", ExpectedVersion::NoStream(), e1).ok());
    REQUIRE(store.append("order-1", ExpectedVersion::Exact(0), evtest::Evs(2)).ok());
    REQUIRE(store.append("user-7", ExpectedVersion::Any(), evtest::Evs(2, "Renamed")).ok());
    CHECK(store.append("order-1", ExpectedVersion::NoStream(), evtest::Evs(1)).status().IsWrongExpectedVersion());
    auto replay = store.append("order-1", ExpectedVersion::NoStream(), e1);
    REQUIRE(replay.ok());
    CHECK(replay->idempotent_replay);

    // Reads of every kind: 2 stream, 1 all, 1 category, 1 type, 3 point.
    CHECK(evtest::Collect(store.read_stream("order-1", 0)).size() == 3);
    CHECK(store.read_stream("nope-1", 0).status().IsNotFound());
    CHECK(evtest::Collect(store.read_all(0)).size() == 5);
    CHECK(evtest::Collect(store.read_category("order", 0)).size() == 3);
    CHECK(evtest::Collect(store.read_type("Renamed", 0)).size() == 2);
    for (uint64_t p : {0, 4, 9}) (void)store.read_event(p);

    StoreMetrics m = Metrics(store);
    CHECK(m.appends == 4);  // the replay is answered, so it counts
    CHECK(m.events_appended == 5);
    CHECK(m.conflicts == 1);
    CHECK(m.idempotent_replays == 1);
    CHECK(m.commit_groups == 3);  // the conflict and the replay write nothing
    // Data + metadata + names of the three appends that wrote.
    uint64_t bytes = std::string("order-1").size() * 2 + std::string("user-7").size();
    bytes += e1.data.size() + e1.metadata.size() + e1.type.size() + e1.content_type.size();
    for (const auto& e : evtest::Evs(2)) bytes += e.data.size() + e.type.size() + e.content_type.size();
    for (const auto& e : evtest::Evs(2, "Renamed")) bytes += e.data.size() + e.type.size() + e.content_type.size();
    CHECK(m.appended_bytes == bytes);
    CHECK(m.written_bytes > bytes);
    CHECK(m.reads_stream == 2);
    CHECK(m.reads_all == 1);
    CHECK(m.reads_category == 1);
    CHECK(m.reads_type == 1);
    CHECK(m.reads_point == 3);
    CHECK(m.next_position == 5);
    CHECK(!m.write_stopped);
    // Every request waited in the queue once; every group wrote once; every
    // read was timed; each write synced the log once.
    CHECK(m.append_queue_wait.count == 5);
    CHECK(m.commit_write.count == 3);
    CHECK(m.read.count == 8);
    CHECK(m.rocksdb.wal_syncs - syncs0 == 3);
    CHECK(m.rocksdb.wal_sync.count == m.rocksdb.wal_syncs);
    for (const LatencyHistogram* h : {&m.append_queue_wait, &m.commit_write, &m.read, &m.rocksdb.wal_sync}) {
      CheckShape(*h);
      CHECK(h->sum_seconds > 0);
      CHECK(h->p50 > 0);
      CHECK(h->p50 <= h->p99);
      CHECK(h->p99 <= h->p999);
    }
    CHECK(m.cache.heads.l1.entries == 2);
    CHECK(!m.sagas);
  }

  TEST_CASE("RocksDB figures cover every column family, on a read-only store too") {
    evtest::TempDir dir;
    {
      Store store = evtest::OpenStore(dir);
      for (int i = 0; i < 50; i++) evtest::Append(store, "s-" + std::to_string(i % 5), 2);
      StoreMetrics m = Metrics(store);
      REQUIRE(m.rocksdb.column_families.size() == evstore::internal::kNumCfs);
      const auto& events = m.rocksdb.column_families[evstore::internal::kCfEvents];
      CHECK(events.name == "events");
      CHECK(events.estimated_keys == 100);
      CHECK(events.memtable_bytes > 0);
      CHECK(events.sst_bytes == 0);
      REQUIRE(evstore::internal::StoreAccess::Impl(store)->FlushMemtables().ok());
      m = Metrics(store);
      CHECK(m.rocksdb.column_families[evstore::internal::kCfEvents].sst_bytes > 0);
      CHECK(m.rocksdb.column_families[evstore::internal::kCfEvents].live_data_bytes > 0);
      CHECK(m.rocksdb.background_errors == 0);
      CHECK(!m.rocksdb.write_stopped);
      CHECK(m.rocksdb.block_cache_bytes > 0);
      REQUIRE(store.close().ok());
      CHECK(store.metrics().status().IsClosed());
      CHECK(store.metrics_text().status().IsClosed());
    }
    Options ro;
    ro.read_only = true;
    auto r = Store::open(dir.path(), ro);
    REQUIRE(r.ok());
    StoreMetrics m = Metrics(*r);
    REQUIRE(m.rocksdb.column_families.size() == evstore::internal::kNumCfs);
    CHECK(m.rocksdb.column_families[evstore::internal::kCfEvents].estimated_keys == 100);
    CHECK(m.rocksdb.column_families[evstore::internal::kCfEvents].sst_bytes > 0);
    CHECK(m.next_position == 100);
  }

  TEST_CASE("a named subscription's and a projection's lag are reported, escaped in the text") {
    ScratchDir dir;
    Store store = evtest::OpenStore(dir);
    evtest::Append(store, "a-1", 4);
    evstore::SubscribeOptions so;
    so.checkpoint = "odd \"name\"\\ here\nx";
    auto sub = store.subscribe(so);
    REQUIRE(sub.ok());
    evstore::SubscribeOptions anon;
    auto sub2 = store.subscribe(anon);
    REQUIRE(sub2.ok());
    StoreMetrics m = Metrics(store);
    CHECK(m.subscriptions == 2);
    REQUIRE(m.lags.size() == 1);
    CHECK(m.lags[0].kind == "subscription");
    CHECK(m.lags[0].name == so.checkpoint);
    CHECK(m.lags[0].lag_events == 4);
    auto d = sub->next(std::chrono::milliseconds(1000));
    REQUIRE(d.ok());
    CHECK(Metrics(store).lags[0].lag_events == 0);

    evstore::ProjectionOptions po;
    auto proj = store.run_projection("counts", po, [](const evstore::RecordedEvent&, evstore::ProjectionState&) {
      return Status::OK();
    });
    REQUIRE(proj.ok());
    uint64_t end = evtest::Append(store, "a-1", 2) + 1;
    REQUIRE((*proj)->wait_for(end, std::chrono::seconds(30)).ok());
    m = Metrics(store);
    CHECK(m.subscriptions == 3);  // the projection reads through one of its own
    REQUIRE(m.lags.size() == 2);
    CHECK(m.lags[0].kind == "projection");
    CHECK(m.lags[0].name == "counts");
    CHECK(m.lags[0].lag_events == 0);
    CHECK(m.lags[1].lag_events == 2);  // the subscription has not read the new two

    auto series = ParseExposition(*store.metrics_text());
    CHECK(U(series, "evstore_reader_lag_events{kind=\"subscription\",name=\"odd \\\"name\\\"\\\\ here\\nx\"}") == 2);
    CHECK(U(series, "evstore_reader_lag_events{kind=\"projection\",name=\"counts\"}") == 0);
    CHECK(U(series, "evstore_subscriptions") == 3);

    (*proj)->stop();
    REQUIRE((*proj)->wait().ok());
    proj->reset();
    m = Metrics(store);
    CHECK(m.lags.size() == 1);
    CHECK(m.subscriptions == 2);
  }

  TEST_CASE("the exposition carries exact counts, cumulative histograms and the saga engine's part") {
    ScratchDir dir;
    Store store = evtest::OpenStore(dir);
    for (int i = 0; i < 3; i++) evtest::Append(store, "t-" + std::to_string(i), 1);
    (void)store.read_event(1);

    evstore::SagaDefinition def;
    def.name = "one";
    evstore::StepDefinition step;
    step.name = "only";
    step.action = [](const evstore::StepContext&) { return evstore::StepResult::Success("done"); };
    def.steps.push_back(step);
    auto engine = evstore::SagaEngine::open(store, std::vector{def});
    REQUIRE(engine.ok());
    REQUIRE((*engine)->start("one", "s1", "in").ok());
    REQUIRE((*engine)->wait("s1", std::chrono::seconds(30)).ok());

    StoreMetrics m = Metrics(store);
    REQUIRE(m.sagas);
    CHECK(m.sagas->started == 1);
    CHECK(m.sagas->completed == 1);
    CHECK(m.sagas->pending + m.sagas->running + m.sagas->compensating == 0);
    CHECK(m.sagas->step.count == 1);

    std::string text = *store.metrics_text();
    auto s = ParseExposition(text);
    CHECK(U(s, "evstore_events_appended_total") == 3);
    CHECK(U(s, "evstore_reads_total{kind=\"point\"}") == 1);
    CHECK(U(s, "evstore_reads_total{kind=\"stream\"}") == 0);
    CHECK(U(s, "evstore_sagas_started_total") == 1);
    CHECK(U(s, "evstore_sagas_completed_total") == 1);
    CHECK(U(s, "evstore_sagas{state=\"running\"}") == 0);
    CHECK(U(s, "evstore_saga_step_seconds_count") == 1);
    CHECK(U(s, "evstore_saga_step_seconds_bucket{le=\"+Inf\"}") == 1);
    CHECK(U(s, "evstore_rocksdb_estimated_keys{cf=\"events\"}") == m.rocksdb.column_families[1].estimated_keys);
    CHECK(U(s, "evstore_write_stopped") == 0);
    CHECK(U(s, "evstore_cache_entries{cache=\"heads\",tier=\"l1\"}") == m.cache.heads.l1.entries);
    // Every histogram: cumulative buckets ending in +Inf equal to _count.
    for (std::string h : {"evstore_append_queue_wait_seconds", "evstore_commit_write_seconds",
                          "evstore_read_seconds", "evstore_wal_sync_seconds", "evstore_saga_step_seconds"}) {
      CAPTURE(h);
      uint64_t prev = 0, n = 0;
      for (const auto& [k, v] : s) {
        if (k.rfind(h + "_bucket{", 0) != 0) continue;
        n++;
      }
      CHECK(n == 28);  // 2^11 .. 2^37 ns, then +Inf
      for (const auto& b : m.append_queue_wait.buckets) {
        std::string key = h + "_bucket{le=\"";
        char le[40];
        if (std::isinf(b.le)) std::snprintf(le, sizeof le, "+Inf");
        else std::snprintf(le, sizeof le, "%.9g", b.le);
        uint64_t c = U(s, key + le + "\"}");
        CHECK(c >= prev);
        prev = c;
      }
      CHECK(prev == U(s, h + "_count"));
      CHECK(s.count(h + "_sum") == 1);
    }
    REQUIRE((*engine)->shutdown().ok());
    CHECK(!Metrics(store).sagas);
    CHECK(store.metrics_text()->find("evstore_sagas_started_total") == std::string::npos);
  }

  TEST_CASE("evstore-inspect stats adds RocksDB's figures of a store on disk") {
    const char* tool = std::getenv("EVSTORE_INSPECT");
    if (tool == nullptr || *tool == '\0') return;  // built without tools
    evtest::TempDir dir;
    {
      Store store = evtest::OpenStore(dir);
      for (int i = 0; i < 40; i++) evtest::Append(store, "k-" + std::to_string(i % 4), 1);
      REQUIRE(store.close().ok());  // flushes: the figures come from table files
    }
    auto run = [&](const std::string& args) {
      std::string cmd = std::string(tool) + " stats --db " + dir.path() + args + " 2>/dev/null";
      FILE* p = popen(cmd.c_str(), "r");
      REQUIRE(p != nullptr);
      std::string out;
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      int status = pclose(p);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
      return out;
    };
    std::string text = run("");
    CHECK_MESSAGE(text.find("\nrocksdb (estimates)\n") != std::string::npos, text);
    size_t at = text.find("\n  events ");
    REQUIRE_MESSAGE(at != std::string::npos, text);
    std::istringstream row(text.substr(at));
    std::string cf;
    uint64_t keys = 0, live = 0, mem = 0, sst = 1;
    row >> cf >> keys >> live >> mem >> sst;
    CHECK(keys == 40);
    CHECK(sst > 0);
    CHECK(text.find("\n  stream_index ") != std::string::npos);
    std::string json = run(" --json");
    CHECK_MESSAGE(json.find("\"rocksdb\":{\"column_families\":[{\"name\":\"default\"") != std::string::npos, json);
    CHECK(json.find("{\"name\":\"events\",\"estimated_keys\":40,") != std::string::npos);
    CHECK(json.substr(json.size() - 3) == "}}\n");
  }

  TEST_CASE("the log hook receives RocksDB's info log") {
    ScratchDir dir;
    LogSink sink;
    auto s = Store::open(dir.path(), sink.Hook(Options(), LogLevel::kInfo));
    REQUIRE(s.ok());
    // RocksDB logs its options at INFO while it opens.
    CHECK(sink.Has(LogLevel::kInfo, "Options"));
    // With a hook, RocksDB writes no LOG file.
    CHECK(!std::filesystem::exists(dir.path() + "/LOG"));
    REQUIRE(s->close().ok());
  }

  TEST_CASE("the log hook receives a forced background error and the fail-stop reason") {
    ScratchDir dir;
    auto fs = std::make_shared<FaultFs>();
    LogSink sink;
    auto opened = evstore::internal::OpenStore(dir.path(), sink.Hook(Options::Durable()), evtest::OnFs(fs));
    REQUIRE(opened.ok());
    Store store = std::move(opened).value();
    evtest::Append(store, "b-1", 3);
    CHECK(sink.Count("stopped accepting writes") == 0);

    // The flush's table file cannot be written: a background error.
    fs->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kSst).Always());
    CHECK(!evstore::internal::StoreAccess::Impl(store)->FlushMemtables().ok());
    CHECK(sink.Has(LogLevel::kError, "RocksDB background error in a memtable flush"));
    CHECK(sink.Has(LogLevel::kError, "the store stopped accepting writes until it is reopened"));
    CHECK(sink.Count("stopped accepting writes") == 1);
    StoreMetrics m = Metrics(store);
    CHECK(m.write_stopped);
    CHECK(m.rocksdb.background_errors == 1);
    auto series = ParseExposition(*store.metrics_text());
    CHECK(U(series, "evstore_write_stopped") == 1);
    CHECK(U(series, "evstore_rocksdb_background_errors_total") == 1);
    // Later failed writes and a second background error (the listener's
    // call) do not log the reason again.
    CHECK(!store.append("b-1", ExpectedVersion::Any(), evtest::Evs(1)).ok());
    evstore::internal::StoreAccess::Impl(store)->FailStop(Status::IOError("a second failure"));
    CHECK(sink.Count("stopped accepting writes") == 1);
    CHECK(store.append("b-1", ExpectedVersion::Any(), evtest::Evs(1)).status().ToString().find("memtable flush") !=
          std::string::npos);
    fs->ClearRules();
  }

  TEST_CASE("a failed log write logs why the store stopped; without a hook it goes to the LOG file") {
    for (bool hook : {true, false}) {
      CAPTURE(hook);
      ScratchDir dir;
      auto fs = std::make_shared<FaultFs>();
      LogSink sink;
      Options o = hook ? sink.Hook(Options::Durable()) : Options::Durable();
      {
        auto opened = evstore::internal::OpenStore(dir.path(), o, evtest::OnFs(fs));
        REQUIRE(opened.ok());
        Store store = std::move(opened).value();
        evtest::Append(store, "c-1", 1);
        fs->AddRule(FaultRule::On(FsOp::kSync, FileKind::kWal).Always());
        auto r = store.append("c-1", ExpectedVersion::Any(), evtest::Evs(1));
        CHECK(r.status().IsIOError());
        CHECK(Metrics(store).write_stopped);
        fs->ClearRules();
        (void)store.close();
      }
      const std::string why = "the store stopped accepting writes until it is reopened: IOError";
      if (hook) {
        CHECK(sink.Has(LogLevel::kError, why));
      } else {
        std::ifstream log(dir.path() + "/LOG");
        std::stringstream text;
        text << log.rdbuf();
        CHECK_MESSAGE(text.str().find("evstore: " + why) != std::string::npos, text.str());
      }
    }
  }
}
