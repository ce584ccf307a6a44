// The append comparison of `evstore-bench all --compare`: every combination of
// appenders, sync and events per append, on evstore, raw RocksDB (one Put per
// event of evstore's record bytes: the floor) and SQLite (one connection per
// appender; with sync and several appenders also one writer thread batching
// every queued append into one transaction), back to back in every repeat.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include "compare.hpp"
#include "evstore/store.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "sqlite_events.hpp"

namespace evbench {
namespace {

struct Shape {
  int appenders;
  bool sync;
  int batch;
  std::string Key() const {
    return "a" + std::to_string(appenders) + (sync ? "_sync" : "_nosync") + "_e" + std::to_string(batch);
  }
};

// One engine's figures for one shape, over the repeats.
struct Series {
  std::vector<double> events_per_s, appends_per_s, events_per_sync;
  Histogram latency;
};

struct Run {
  double appends_per_s = 0;
  double events_per_sync = 0;  // 0: not measured
};

std::vector<evstore::EventData> EvstoreEvents(const Workload& w, int thread, int batch) {
  std::vector<evstore::EventData> v(static_cast<size_t>(batch));
  for (int i = 0; i < batch; i++) {
    size_t k = static_cast<size_t>(thread * 997 + i) % w.payloads.size();
    v[static_cast<size_t>(i)].type = w.types[k % w.types.size()];
    v[static_cast<size_t>(i)].content_type = "application/octet-stream";
    v[static_cast<size_t>(i)].data = w.payloads[k];
  }
  return v;
}

std::vector<BenchEvent> SqliteEventsOf(const Workload& w, int thread, int batch) {
  std::vector<BenchEvent> v;
  for (int i = 0; i < batch; i++) {
    size_t k = static_cast<size_t>(thread * 997 + i) % w.payloads.size();
    v.push_back({w.ids[k], w.types[k % w.types.size()], "application/octet-stream", w.payloads[k]});
  }
  return v;
}

Run Evstore(const std::string& path, const Shape& s, const Workload& w, double seconds,
            Histogram* lat) {
  evstore::Options o;
  o.sync = s.sync;
  auto st = evstore::Store::open(path, o);
  if (!st.ok()) {
    std::fprintf(stderr, "evstore-bench: open: %s\n", st.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<std::vector<evstore::EventData>> evs;
  for (int t = 0; t < s.appenders; t++) evs.push_back(EvstoreEvents(w, t, s.batch));
  Run r;
  r.appends_per_s = RunTimedLatency(s.appenders, seconds, lat, [&](int t, uint64_t i) {
    return st->append(w.ZipfStream(t, i), evstore::ExpectedVersion::Any(),
                      std::span<const evstore::EventData>(evs[static_cast<size_t>(t)]))
        .ok();
  });
  auto stats = st->stats();
  // With sync on, each commit group is one write and one WAL sync.
  if (s.sync && stats.ok() && stats->commit_groups > 0)
    r.events_per_sync =
        static_cast<double>(stats->events_appended) / static_cast<double>(stats->commit_groups);
  (void)st->close();
  return r;
}

Run Raw(const std::string& path, const Shape& s, const Workload& w, double seconds, Histogram* lat) {
  rocksdb::Options o;
  o.create_if_missing = true;
  // Only the durable runs count WAL syncs: statistics cost the floor time.
  if (s.sync) o.statistics = rocksdb::CreateDBStatistics();
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(o, path, &db).ok()) std::exit(1);
  // The very bytes evstore stores for such an event: its encoded record.
  std::string value;
  evstore::format::RecordEncoder enc;
  enc.EncodeEvent(evstore::format::EventFields{evstore::Uuid::Random(), 0, w.streams[0], 1, 0, w.types[0],
                                               "application/octet-stream", w.payloads[0], "", 0},
                  &value);
  std::atomic<uint64_t> next{0};
  rocksdb::WriteOptions wo;
  wo.sync = s.sync;
  Run r;
  r.appends_per_s = RunTimedLatency(s.appenders, seconds, lat, [&](int, uint64_t) {
    rocksdb::WriteBatch b;
    uint64_t first = next.fetch_add(static_cast<uint64_t>(s.batch));
    for (int i = 0; i < s.batch; i++) {
      evstore::format::Be64 k(first + static_cast<uint64_t>(i));
      if (!b.Put(rocksdb::Slice(k.buf, 8), value).ok()) return false;
    }
    return db->Write(wo, &b).ok();
  });
  uint64_t syncs = s.sync ? o.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED) : 0;
  if (s.sync && syncs > 0)
    r.events_per_sync = static_cast<double>(next.load()) / static_cast<double>(syncs);
  delete db;
  return r;
}

// SQLite as most users write it: each appender its own connection, waiting
// out the write lock with busy_timeout.
Run Sqlite(const std::string& path, const Shape& s, const Workload& w, double seconds, Histogram* lat) {
  std::vector<std::unique_ptr<SqliteEvents>> conns;
  for (int t = 0; t < s.appenders; t++) conns.push_back(std::make_unique<SqliteEvents>(path, s.sync));
  std::vector<std::vector<BenchEvent>> evs;
  for (int t = 0; t < s.appenders; t++) evs.push_back(SqliteEventsOf(w, t, s.batch));
  Run r;
  r.appends_per_s = RunTimedLatency(s.appenders, seconds, lat, [&](int t, uint64_t i) {
    return conns[static_cast<size_t>(t)]->Append(w.ZipfStream(t, i), evs[static_cast<size_t>(t)]);
  });
  // synchronous=FULL in WAL mode syncs the log once per transaction.
  if (s.sync) r.events_per_sync = s.batch;
  return r;
}

// SQLite's best honest shape for concurrent durable appends: one writer
// thread takes every queued append and commits them in one transaction
// (one WAL sync), then wakes their appenders: group commit by hand.
Run SqliteBatched(const std::string& path, const Shape& s, const Workload& w, double seconds,
                  Histogram* lat) {
  struct Request {
    const std::string* stream;
    const std::vector<BenchEvent>* events;
    bool done = false, ok = false;
  };
  SqliteEvents db(path, s.sync);
  std::mutex mu;
  std::condition_variable work, done;
  std::deque<Request*> queue;
  bool stop = false;
  uint64_t transactions = 0, appends = 0;
  std::thread writer([&] {
    std::vector<Request*> group;
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mu);
        work.wait(l, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        group.assign(queue.begin(), queue.end());
        queue.clear();
      }
      bool ok = db.Begin();
      for (Request* r : group) ok = ok && db.AppendInTransaction(*r->stream, *r->events);
      ok = ok ? db.Commit() : (db.Exec("ROLLBACK"), false);
      {
        std::lock_guard<std::mutex> l(mu);
        for (Request* r : group) {
          r->ok = ok;
          r->done = true;
        }
        transactions++;
        appends += group.size();
      }
      done.notify_all();
    }
  });
  std::vector<std::vector<BenchEvent>> evs;
  for (int t = 0; t < s.appenders; t++) evs.push_back(SqliteEventsOf(w, t, s.batch));
  Run r;
  r.appends_per_s = RunTimedLatency(s.appenders, seconds, lat, [&](int t, uint64_t i) {
    Request req{&w.ZipfStream(t, i), &evs[static_cast<size_t>(t)]};
    std::unique_lock<std::mutex> l(mu);
    queue.push_back(&req);
    work.notify_one();
    done.wait(l, [&] { return req.done; });
    return req.ok;
  });
  {
    std::lock_guard<std::mutex> l(mu);
    stop = true;
  }
  work.notify_one();
  writer.join();
  if (transactions > 0)
    r.events_per_sync = static_cast<double>(appends) * s.batch / static_cast<double>(transactions);
  return r;
}

Json SeriesJson(const Series& s) {
  Json j;
  j.Num("events_per_s", Median(s.events_per_s));
  j.Num("appends_per_s", Median(s.appends_per_s));
  if (!s.events_per_sync.empty()) j.Num("events_per_sync", Median(s.events_per_sync));
  j.Obj("latency", LatencyJson(s.latency));
  return j;
}

}  // namespace

Json RunAppendComparison(const CompareConfig& c, const Workload& w, ScratchDir& dir, Json* ratios,
                         double* fsync_rate, double* fsync8_rate) {
  std::vector<Shape> shapes;
  for (int a : c.appenders)
    for (bool sync : {false, true})
      for (int b : c.batch) shapes.push_back({a, sync, b});
  // shape key -> engine -> series
  std::map<std::string, std::map<std::string, Series>> res;
  std::vector<double> fsyncs, fsyncs8;
  for (int r = 0; r < c.repeat; r++) {
    fsyncs.push_back(FdatasyncRate(dir.Fresh("fsync"), std::min(1.0, c.seconds)));
    fsyncs8.push_back(FdatasyncRate(dir.Fresh("fsync"), std::min(1.0, c.seconds), 8));
    std::fprintf(stderr, "append: repeat %d/%d, fdatasync %.0f/s, by 8 threads %.0f/s\n", r + 1, c.repeat,
                 fsyncs.back(), fsyncs8.back());
    for (const Shape& s : shapes) {
      auto record = [&](const char* engine, auto fn) {
        Series& se = res[s.Key()][engine];
        Run run = fn(dir.Fresh(engine), s, w, c.seconds, &se.latency);
        se.appends_per_s.push_back(run.appends_per_s);
        se.events_per_s.push_back(run.appends_per_s * s.batch);
        if (run.events_per_sync > 0) se.events_per_sync.push_back(run.events_per_sync);
      };
      record("evstore", Evstore);
      if (c.baselines) {
        record("raw_rocksdb", Raw);
        record("sqlite", [](const std::string& p, const Shape& sh, const Workload& wl, double secs,
                            Histogram* h) { return Sqlite(SqlitePath(p), sh, wl, secs, h); });
        if (s.sync && s.appenders > 1)
          record("sqlite_batched", [](const std::string& p, const Shape& sh, const Workload& wl,
                                      double secs, Histogram* h) {
            return SqliteBatched(SqlitePath(p), sh, wl, secs, h);
          });
      }
      std::fprintf(stderr, "  %-16s evstore %9.0f ev/s", s.Key().c_str(),
                   res[s.Key()]["evstore"].events_per_s.back());
      for (const char* e : {"raw_rocksdb", "sqlite", "sqlite_batched"})
        if (res[s.Key()].count(e)) std::fprintf(stderr, "  %s %9.0f", e, res[s.Key()][e].events_per_s.back());
      std::fprintf(stderr, "\n");
    }
  }
  *fsync_rate = Median(fsyncs);
  *fsync8_rate = Median(fsyncs8);
  std::vector<Json> rows;
  for (const Shape& s : shapes) {
    Json row, engines;
    row.Str("key", s.Key()).Int("appenders", s.appenders).Bool("sync", s.sync).Int("events_per_append", s.batch);
    for (auto& [name, se] : res[s.Key()]) engines.Obj(name, SeriesJson(se));
    auto& m = res[s.Key()];
    if (m.count("raw_rocksdb"))
      row.Num("evstore_vs_raw_rocksdb", MedianRatio(m["evstore"].events_per_s, m["raw_rocksdb"].events_per_s));
    if (m.count("sqlite"))
      row.Num("evstore_vs_sqlite", MedianRatio(m["evstore"].events_per_s, m["sqlite"].events_per_s));
    if (m.count("sqlite_batched"))
      row.Num("evstore_vs_sqlite_batched",
              MedianRatio(m["evstore"].events_per_s, m["sqlite_batched"].events_per_s));
    row.Obj("engines", engines);
    rows.push_back(row);
  }
  Json out;
  out.Num("seconds", c.seconds).Int("repeat", c.repeat).Int("streams", static_cast<int64_t>(c.streams));
  out.Num("zipf_theta", c.theta).Int("payload_bytes", static_cast<int64_t>(c.bytes));
  out.Num("fdatasync_per_s", *fsync_rate).Num("fdatasync_8_threads_per_s", *fsync8_rate);
  out.Arr("runs", rows);

  // The targets, each a median of per-repeat ratios.
  auto series = [&](const Shape& s, const char* e) -> const std::vector<double>* {
    auto it = res.find(s.Key());
    if (it == res.end() || !it->second.count(e)) return nullptr;
    return &it->second.at(e).events_per_s;
  };
  const std::vector<double>* d8 = series({8, true, 1}, "evstore");
  const std::vector<double>* d8s = series({8, true, 1}, "sqlite_batched");
  const std::vector<double>* d8n = series({8, true, 1}, "sqlite");
  const std::vector<double>* n1 = series({1, false, 1}, "evstore");
  const std::vector<double>* n1s = series({1, false, 1}, "sqlite");
  if (d8 && d8s) ratios->Num("durable8_vs_sqlite", MedianRatio(*d8, *d8s));
  if (d8 && d8n) ratios->Num("durable8_vs_sqlite_naive", MedianRatio(*d8, *d8n));
  if (n1 && n1s) ratios->Num("nosync1_vs_sqlite", MedianRatio(*n1, *n1s));
  if (d8) {
    std::vector<double> limit;
    for (double f : fsyncs) limit.push_back(8 * f);
    ratios->Num("durable8_vs_limit", MedianRatio(*d8, limit));
    // What 8 appenders syncing each on their own reach on this disk, which
    // may overlap syncs (virtual disks do): the limit measured rather than
    // multiplied.
    ratios->Num("durable8_vs_parallel_fdatasync", MedianRatio(*d8, fsyncs8));
  }
  return out;
}

}  // namespace evbench
