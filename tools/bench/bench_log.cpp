// evstore-bench append | read | open | recover: the event log against raw RocksDB doing
// the minimal equivalent work (one Put per event with the same bytes, same
// WAL and sync settings), in the same process run.
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "evstore/store.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "log/cf_cursor.hpp"
#include "log/store_impl.hpp"

namespace evbench {
namespace {

using evstore::EventData;
using evstore::ExpectedVersion;
using evstore::Options;
using evstore::Store;

EventData Payload(size_t bytes) {
  EventData e;
  e.type = "OrderPlaced";
  e.content_type = "application/json";
  e.data.assign(bytes, 'x');
  return e;
}

}  // namespace

double EvstoreAppendRate(const std::string& path, bool sync, int threads, double seconds,
                         size_t bytes) {
  Options o;
  o.sync = sync;
  auto s = Store::open(path, o);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  EventData e = Payload(bytes);
  double r = RunTimed(threads, seconds, [&](int t, uint64_t i) {
    std::string stream = "order-" + std::to_string(t * 1000 + i % 1000);
    auto a = s->append(stream, ExpectedVersion::Any(), e);
    return a.ok();
  });
  (void)s->close();
  return r;
}

namespace {

double EvstoreAppend(ScratchDir& sc, bool sync, int threads, double seconds, size_t bytes) {
  return EvstoreAppendRate(sc.Fresh("ev"), sync, threads, seconds, bytes);
}

// The same record bytes evstore writes, under an 8-byte position key.
double RawAppend(ScratchDir& sc, bool sync, int threads, double seconds, size_t bytes) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(o, sc.Fresh("raw"), &db).ok()) std::exit(1);
  // The very bytes evstore stores for such an event: its encoded record.
  EventData e = Payload(bytes);
  std::string value;
  evstore::format::RecordEncoder enc;
  enc.EncodeEvent(evstore::format::EventFields{evstore::Uuid::Random(), 0, "order-1000", 1, 0,
                                               e.type, e.content_type, e.data, e.metadata, 0},
                  &value);
  std::atomic<uint64_t> next{0};
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  double r = RunTimed(threads, seconds, [&](int, uint64_t) {
    evstore::format::Be64 k(next.fetch_add(1));
    return db->Put(wo, rocksdb::Slice(k.buf, 8), value).ok();
  });
  delete db;
  return r;
}

void PrintRow(const char* name, double evs, double base, const char* base_name, double ratio) {
  std::printf("%-40s %12.0f %12.0f  %-22s %6.2fx\n", name, evs, base, base_name, ratio);
}

int RunAppend(const std::vector<std::string>& args) {
  double seconds = std::stod(Flag(args, "seconds", "2"));
  int repeat = std::stoi(Flag(args, "repeat", "3"));
  size_t bytes = std::stoul(Flag(args, "bytes", "100"));
  int threads = std::stoi(Flag(args, "threads", "8"));
  ScratchDir sc;
  std::vector<double> ev1f, raw1f, ev1s, ev8s, raw8s;
  for (int r = 0; r < repeat; r++) {
    ev1f.push_back(EvstoreAppend(sc, false, 1, seconds, bytes));
    raw1f.push_back(RawAppend(sc, false, 1, seconds, bytes));
    ev8s.push_back(EvstoreAppend(sc, true, threads, seconds, bytes));
    raw8s.push_back(RawAppend(sc, true, threads, seconds, bytes));
    ev1s.push_back(EvstoreAppend(sc, true, 1, seconds, bytes));
  }
  // Ratios are taken per repeat (both sides measured back to back) and then
  // the median, which is steadier than a ratio of medians on a busy machine.
  std::vector<double> r1, r8, rg;
  for (int r = 0; r < repeat; r++) {
    r1.push_back(ev1f[r] / raw1f[r]);
    r8.push_back(ev8s[r] / raw8s[r]);
    rg.push_back(ev8s[r] / ev1s[r]);
  }
  double a = Median(ev1f), b = Median(raw1f), c = Median(ev8s), d = Median(raw8s),
         e = Median(ev1s);
  std::printf("append: %zu-byte events, one event per append, median of %d x %.1fs "
              "(ratio: median of per-repeat ratios)\n",
              bytes, repeat, seconds);
  std::printf("%-40s %12s %12s  %-22s %7s\n", "case", "evstore/s", "baseline/s", "baseline",
              "ratio");
  PrintRow("sync=false, 1 appender", a, b, "raw RocksDB, 1 thread", Median(r1));
  char label[64];
  std::snprintf(label, sizeof label, "sync=true, %d appenders", threads);
  PrintRow(label, c, d, "raw RocksDB, N threads", Median(r8));
  PrintRow(label, c, e, "evstore, 1 appender", Median(rg));
  std::printf(
      "{\"scenario\":\"append\",\"bytes\":%zu,\"threads\":%d,\"evstore_nosync_1\":%.0f,"
      "\"raw_nosync_1\":%.0f,\"ratio_nosync_1\":%.3f,\"evstore_sync_n\":%.0f,\"raw_sync_n\":%.0f,"
      "\"ratio_sync_n\":%.3f,\"evstore_sync_1\":%.0f,\"group_commit_gain\":%.3f}\n",
      bytes, threads, a, b, Median(r1), c, d, Median(r8), e, Median(rg));
  return 0;
}

int RunRead(const std::vector<std::string>& args) {
  int events = std::stoi(Flag(args, "events", "10000"));
  int repeat = std::stoi(Flag(args, "repeat", "21"));
  size_t bytes = std::stoul(Flag(args, "bytes", "100"));
  ScratchDir sc;
  Options o = Options::Fast();
  auto s = Store::open(sc.Fresh("ev"), o);
  if (!s.ok()) return 1;
  std::vector<EventData> batch(100, Payload(bytes));
  for (int i = 0; i < events; i += 100)
    if (!s->append("order-1", ExpectedVersion::Any(), batch).ok()) return 1;
  // Both sides read from table files, not memtables.
  evstore::internal::StoreImpl* impl = evstore::internal::StoreAccess::Impl(*s);
  (void)impl->FlushMemtables();

  // Raw RocksDB holding the very same record bytes under the same keys.
  rocksdb::Options ro;
  ro.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(ro, sc.Fresh("raw"), &raw).ok()) return 1;
  {
    auto it = s->read_all(0);
    evstore::internal::CfCursor src(*impl, evstore::internal::kCfEvents);
    for (src.SeekToFirst(); src.Valid(); src.Next())
      raw->Put(rocksdb::WriteOptions(), src.key(), src.value()).PermitUncheckedError();
    raw->Flush(rocksdb::FlushOptions()).PermitUncheckedError();
  }
  std::vector<double> ev_t, raw_t;
  uint64_t sink = 0;
  for (int r = 0; r < repeat; r++) {
    double t0 = Now();
    auto it = s->read_stream("order-1", 0);
    uint64_t n = 0;
    for (; it->Valid(); it->Next()) {
      sink += it->value().data.size();
      n++;
    }
    ev_t.push_back(Now() - t0);
    if (n != static_cast<uint64_t>(events) || !it->status().ok()) {
      std::fprintf(stderr, "read: got %lu events: %s\n", static_cast<unsigned long>(n),
                   it->status().ToString().c_str());
      return 1;
    }
    t0 = Now();
    std::unique_ptr<rocksdb::Iterator> rit(raw->NewIterator(rocksdb::ReadOptions()));
    for (rit->SeekToFirst(); rit->Valid(); rit->Next()) sink += rit->value().size();
    raw_t.push_back(Now() - t0);
  }
  delete raw;
  std::vector<double> ratios;
  for (int r = 0; r < repeat; r++) ratios.push_back(raw_t[r] / ev_t[r]);
  double a = events / Median(ev_t), b = events / Median(raw_t), ratio = Median(ratios);
  std::printf("read: forward read of a %d-event stream (%zu-byte payloads), median of %d\n",
              events, bytes, repeat);
  std::printf("%-40s %12s %12s  %-22s %7s\n", "case", "evstore/s", "baseline/s", "baseline",
              "ratio");
  PrintRow("read_stream forward, verified", a, b, "raw RocksDB iterator", ratio);
  std::printf(
      "{\"scenario\":\"read\",\"events\":%d,\"evstore_events_per_s\":%.0f,"
      "\"raw_events_per_s\":%.0f,\"ratio\":%.3f,\"sink\":%lu}\n",
      events, a, b, ratio, static_cast<unsigned long>(sink % 10));
  return 0;
}

double OpenSeconds(const std::string& path, int repeat) {
  std::vector<double> ts;
  for (int r = 0; r < repeat; r++) {
    double t0 = Now();
    auto s = Store::open(path);
    if (!s.ok()) std::exit(1);
    ts.push_back(Now() - t0);
    (void)s->close();
  }
  return Median(ts);
}

void Fill(const std::string& path, int events) {
  auto s = Store::open(path, Options::Fast());
  if (!s.ok()) std::exit(1);
  std::vector<EventData> batch(1000, Payload(100));
  for (int i = 0; i < events; i += 1000) {
    size_t n = std::min(1000, events - i);
    std::string stream = "order-" + std::to_string(i / 1000);
    if (!s->append(stream, ExpectedVersion::Any(), std::span<const EventData>(batch.data(), n)).ok())
      std::exit(1);
  }
  (void)s->close();
}

int RunOpen(const std::vector<std::string>& args) {
  int small = std::stoi(Flag(args, "small", "1000"));
  int large = std::stoi(Flag(args, "large", "1000000"));
  int repeat = std::stoi(Flag(args, "repeat", "7"));
  ScratchDir sc;
  std::string ps = sc.Fresh("small"), pl = sc.Fresh("large");
  Fill(ps, small);
  Fill(pl, large);
  double a = OpenSeconds(ps, repeat), b = OpenSeconds(pl, repeat);
  std::printf("open: median of %d opens of a cleanly closed store\n", repeat);
  std::printf("%-40s %12.2f ms\n", (std::to_string(small) + " events").c_str(), a * 1e3);
  std::printf("%-40s %12.2f ms\n", (std::to_string(large) + " events").c_str(), b * 1e3);
  std::printf("%-40s %12.2fx\n", "large / small", b / a);
  std::printf(
      "{\"scenario\":\"open\",\"small_events\":%d,\"large_events\":%d,\"small_ms\":%.3f,"
      "\"large_ms\":%.3f,\"ratio\":%.3f}\n",
      small, large, a * 1e3, b * 1e3, b / a);
  return 0;
}

// Fills `path` and exits without closing the store: a crash, as far as
// RocksDB can tell (nothing flushed, the log left as it is). Runs in a
// process of its own (see CrashAfterFill).
[[noreturn]] void FillAndCrash(const std::string& path, uint64_t bytes, size_t event_bytes,
                               size_t wal_limit) {
  Options o = Options::Fast();
  o.max_wal_bytes = wal_limit;
  auto s = Store::open(path, o);
  if (!s.ok()) _exit(1);
  std::vector<EventData> batch(100, Payload(event_bytes));
  // A few streams, all made at the start: the families holding stream names
  // are written once, then never again.
  for (uint64_t done = 0, i = 0; done < bytes; done += 100 * event_bytes, i++)
    if (!s->append("order-" + std::to_string(i % 8), ExpectedVersion::Any(), batch).ok()) _exit(1);
  _exit(0);
}

// Runs FillAndCrash in a new process (this program again: a fork of a
// process that has used RocksDB inherits its thread pools without their
// threads) and returns the bytes of write-ahead log it left behind.
uint64_t CrashAfterFill(const std::string& path, uint64_t bytes, size_t event_bytes,
                        size_t wal_limit) {
  std::vector<std::string> argv = {"evstore-bench", "recover",           "--fill", path,
                                   "--bytes",       std::to_string(bytes), "--event-bytes",
                                   std::to_string(event_bytes), "--wal-limit",
                                   std::to_string(wal_limit)};
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) std::exit(1);
  if (pid == 0) {
    execv("/proc/self/exe", cargv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "recover: the filling process failed\n");
    std::exit(1);
  }
  uint64_t wal = 0;
  for (const auto& f : std::filesystem::directory_iterator(path))
    if (f.path().extension() == ".log") wal += f.file_size();
  return wal;
}

int RunRecover(const std::vector<std::string>& args) {
  uint64_t bytes = std::stoull(Flag(args, "bytes", "2000000000"));
  size_t event_bytes = std::stoul(Flag(args, "event-bytes", "1000"));
  size_t limit = std::stoul(Flag(args, "wal-limit", std::to_string(Options().max_wal_bytes)));
  if (HasFlag(args, "fill")) FillAndCrash(Flag(args, "fill", ""), bytes, event_bytes, limit);
  ScratchDir sc;
  struct Run {
    const char* name;
    size_t limit;
    uint64_t wal = 0;
    double open_s = 0;
  } runs[] = {{"bounded log (max_wal_bytes)", limit}, {"RocksDB's own bound (0)", 0}};
  for (Run& r : runs) {
    std::string path = sc.Fresh(r.limit ? "bounded" : "unbounded");
    r.wal = CrashAfterFill(path, bytes, event_bytes, r.limit);
    double t0 = Now();
    auto s = Store::open(path);
    if (!s.ok()) {
      std::fprintf(stderr, "reopen: %s\n", s.status().ToString().c_str());
      return 1;
    }
    r.open_s = Now() - t0;
    (void)s->close();
  }
  std::printf("recover: open after a crash that left the write-ahead log behind (%.0f MB written)\n",
              static_cast<double>(bytes) / 1e6);
  for (const Run& r : runs)
    std::printf("%-32s %10.1f MB of log %10.1f ms to open\n", r.name,
                static_cast<double>(r.wal) / 1e6, r.open_s * 1e3);
  std::printf("%-32s %10.2fx\n", "open time, unbounded / bounded", runs[1].open_s / runs[0].open_s);
  std::printf(
      "{\"scenario\":\"recover\",\"bytes\":%llu,\"wal_limit\":%zu,\"bounded_wal_bytes\":%llu,"
      "\"bounded_open_ms\":%.1f,\"unbounded_wal_bytes\":%llu,\"unbounded_open_ms\":%.1f,"
      "\"ratio\":%.3f}\n",
      static_cast<unsigned long long>(bytes), limit, static_cast<unsigned long long>(runs[0].wal),
      runs[0].open_s * 1e3, static_cast<unsigned long long>(runs[1].wal), runs[1].open_s * 1e3,
      runs[1].open_s / runs[0].open_s);
  return 0;
}

Registrar reg_append("append",
                     "appends/s vs raw RocksDB (sync=false 1 thread; sync=true N threads) "
                     "[--seconds 2 --repeat 3 --bytes 100 --threads 8]",
                     &RunAppend);
Registrar reg_read("read", "forward stream read vs raw RocksDB iteration [--events 10000]",
                   &RunRead);
Registrar reg_open("open", "open time, 1,000 vs 1,000,000 events [--small --large --repeat]",
                   &RunOpen);
Registrar reg_recover("recover",
                      "open after a crash with a large log, bounded vs unbounded log "
                      "[--bytes 2000000000 --event-bytes 1000 --wal-limit B]",
                      &RunRecover);

}  // namespace
}  // namespace evbench
