// The filled-log comparison of `evstore-bench all --compare`: the same events
// (random payloads, appends of 10 events to uniformly chosen streams) go into
// evstore, SQLite and raw RocksDB; each is compacted and measured for bytes on
// disk per event, then read (streams cold and cached, the global log, one
// category) and reopened, engine after engine in every repeat.
//
// Raw RocksDB here keeps the minimal layout that answers the same reads:
// evstore's record bytes under the position, a (stream id, version) ->
// position index and a category index, read without any verification.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <random>
#include <unordered_map>

#include "compare.hpp"
#include "evstore/store.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "log/store_impl.hpp"
#include "sqlite_events.hpp"

namespace evbench {
namespace {

constexpr int kPerAppend = 10;
constexpr const char* kContentType = "application/octet-stream";

// The payload of event i: the same random bytes for every engine.
void PayloadOf(uint64_t i, size_t bytes, std::string* out) {
  out->resize(bytes);
  // Distinct counters for every word of every event (up to 256 bytes
  // each; longer payloads repeat words across events only past that).
  uint64_t x = (i * 32 + 1) * 0x9E3779B97F4A7C15ull;
  for (size_t k = 0; k < bytes; k += 8) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::memcpy(out->data() + k, &z, std::min<size_t>(8, bytes - k));
  }
}

// The fill: append a goes to stream Stream(a); event i has type i % types.
struct Fill {
  Fill(const Workload& w, uint64_t events) : appends(events / kPerAppend) {
    std::mt19937_64 rng(7);
    for (uint64_t a = 0; a < appends; a++) stream_of.push_back(static_cast<uint32_t>(rng() % w.streams.size()));
  }
  uint64_t appends;
  std::vector<uint32_t> stream_of;
};

[[noreturn]] void Fail(const char* what, const std::string& why) {
  std::fprintf(stderr, "evstore-bench: %s: %s\n", what, why.c_str());
  std::exit(1);
}

evstore::Store OpenEvstore(const std::string& path, bool sync) {
  evstore::Options o;
  o.sync = sync;
  auto s = evstore::Store::open(path, o);
  if (!s.ok()) Fail("open", s.status().ToString());
  return std::move(s).value();
}

// ---- raw RocksDB: events, stream index, category index ----

struct RawDb {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;  // default, events, streams, categories
  std::unordered_map<std::string, uint64_t> stream_ids;
  RawDb(const std::string& path, const Workload& w) {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> d;
    for (const char* n : {"default", "events", "streams", "categories"})
      d.emplace_back(n, rocksdb::ColumnFamilyOptions());
    if (!rocksdb::DB::Open(o, path, d, &cfs, &db).ok()) Fail("raw RocksDB", "open");
    for (size_t i = 0; i < w.streams.size(); i++) stream_ids[w.streams[i]] = i + 1;
  }
  ~RawDb() {
    for (auto* h : cfs) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  int64_t ReadStream(const std::string& name, uint64_t* sink) {
    auto it = stream_ids.find(name);
    if (it == stream_ids.end()) return -1;
    evstore::format::Be64 prefix(it->second);
    std::unique_ptr<rocksdb::Iterator> ix(db->NewIterator(rocksdb::ReadOptions(), cfs[2]));
    int64_t n = 0;
    rocksdb::PinnableSlice v;
    for (ix->Seek(rocksdb::Slice(prefix.buf, 8)); ix->Valid() && ix->key().starts_with(rocksdb::Slice(prefix.buf, 8));
         ix->Next()) {
      v.Reset();
      if (!db->Get(rocksdb::ReadOptions(), cfs[1], ix->value(), &v).ok()) return -1;
      *sink += v.size();
      n++;
    }
    return ix->status().ok() ? n : -1;
  }
  int64_t ReadCategory(const std::string& cat, uint64_t* sink) {
    std::string prefix = cat + std::string(1, '\0');
    std::unique_ptr<rocksdb::Iterator> ix(db->NewIterator(rocksdb::ReadOptions(), cfs[3]));
    int64_t n = 0;
    rocksdb::PinnableSlice v;
    for (ix->Seek(prefix); ix->Valid() && ix->key().starts_with(prefix); ix->Next()) {
      v.Reset();
      rocksdb::Slice pos(ix->key().data() + prefix.size(), 8);
      if (!db->Get(rocksdb::ReadOptions(), cfs[1], pos, &v).ok()) return -1;
      *sink += v.size();
      n++;
    }
    return ix->status().ok() ? n : -1;
  }
  int64_t ReadAll(uint64_t* sink) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cfs[1]));
    int64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      *sink += it->value().size();
      n++;
    }
    return it->status().ok() ? n : -1;
  }
};

// Flushes and compacts every column family to the bottom level, then returns
// the live table bytes of each, by name.
Json CompactAndMeasure(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs,
                       uint64_t events, uint64_t* sst_total) {
  rocksdb::FlushOptions fo;
  if (!db->Flush(fo, cfs).ok()) Fail("compaction", "flush failed");
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  Json per_cf;
  *sst_total = 0;
  for (auto* h : cfs) {
    if (!db->CompactRange(co, h, nullptr, nullptr).ok()) Fail("compaction", h->GetName());
    uint64_t bytes = 0;
    db->GetIntProperty(h, "rocksdb.total-sst-files-size", &bytes);
    *sst_total += bytes;
    if (bytes > 0) per_cf.Num(h->GetName(), static_cast<double>(bytes) / static_cast<double>(events));
  }
  return per_cf;
}

// Where the bytes of one record go, for an event of this payload size and
// the names the fill uses. The FlatBuffers overhead is everything in the
// table that is not a field's own bytes: vtable, offsets, length prefixes,
// NUL terminators and alignment padding.
Json RecordBreakdown(const Workload& w, size_t bytes, const std::string& stream, const std::string& type,
                     const std::string& content_type) {
  std::string data(bytes, 'x'), value;
  evstore::format::RecordEncoder enc;
  evstore::Uuid uuid = evstore::Uuid::Random();
  enc.EncodeEvent(evstore::format::EventFields{uuid, 123456, stream, 42, 7, type, content_type, data, "",
                                               1733390000000},
                  &value);
  (void)w;
  size_t fields = 16 /*id*/ + 8 /*position*/ + 8 /*stream_id*/ + 8 /*version*/ + 8 /*timestamp*/;
  size_t names = stream.size() + type.size() + content_type.size();
  Json j;
  j.Int("payload_bytes", static_cast<int64_t>(bytes));
  j.Int("record_bytes", static_cast<int64_t>(value.size()));
  j.Int("checksum", static_cast<int64_t>(evstore::format::kChecksumBytes));
  j.Int("fixed_fields", static_cast<int64_t>(fields));
  j.Int("names", static_cast<int64_t>(names));
  j.Str("stream", stream).Str("type", type).Str("content_type", content_type);
  j.Int("flatbuffers_overhead",
        static_cast<int64_t>(value.size() - evstore::format::kChecksumBytes - fields - names - bytes));
  // The index keys each event adds, before RocksDB's own per-entry costs
  // (an 8-byte sequence number and type, length varints, restart points,
  // index blocks and a Bloom filter of 10 bits per key).
  std::string cat = stream.substr(0, stream.find('-'));
  j.Int("key_events", 8);
  j.Int("key_value_stream_index", 16 + 8);
  j.Int("key_category_index", static_cast<int64_t>(cat.size() + 1 + 8));
  j.Int("key_type_index", static_cast<int64_t>(type.size() + 1 + 8));
  return j;
}

struct ReadSeries {
  std::vector<double> cold, cached, global, category, open_ms;
  Histogram cold_lat, cached_lat;
};

// Reads every stream of `names` with `read` (returns events or -1), each
// read's time into *lat; each must return as many events as `expect` says
// the fill wrote. Returns events per second.
template <typename Read>
double ReadStreams(const std::vector<std::string>& names, const std::vector<uint64_t>& expect,
                   Histogram* lat, Read read) {
  uint64_t events = 0;
  double t0 = Now();
  for (size_t i = 0; i < names.size(); i++) {
    auto s = std::chrono::steady_clock::now();
    int64_t got = read(names[i]);
    lat->Record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - s).count()));
    if (got < 0 || static_cast<uint64_t>(got) != expect[i])
      Fail("stream read", names[i] + ": read " + std::to_string(got) + " events, expected " +
                              std::to_string(expect[i]));
    events += static_cast<uint64_t>(got);
  }
  return static_cast<double>(events) / (Now() - t0);
}

template <typename Read>
double Timed(uint64_t expect, const char* what, Read read) {
  double t0 = Now();
  int64_t got = read();
  double t = Now() - t0;
  if (got < 0 || (expect && static_cast<uint64_t>(got) != expect))
    Fail(what, "read " + std::to_string(got) + " events, expected " + std::to_string(expect));
  return static_cast<double>(got) / t;
}

int64_t EvstoreDrain(evstore::Result<evstore::EventIterator> it, uint64_t* sink) {
  if (!it.ok()) return -1;
  int64_t n = 0;
  for (; it->Valid(); it->Next()) {
    const evstore::EventView& e = it->value();
    *sink += e.position + e.version + e.type.size() + e.data.size() + e.id.bytes[0];
    n++;
  }
  return it->status().ok() ? n : -1;
}

Json ReadJson(const ReadSeries& s) {
  Json j;
  j.Num("stream_cold_events_per_s", Median(s.cold));
  j.Num("stream_cached_events_per_s", Median(s.cached));
  j.Num("global_events_per_s", Median(s.global));
  j.Num("category_events_per_s", Median(s.category));
  j.Num("open_ms", Median(s.open_ms));
  j.Obj("stream_cold_latency", LatencyJson(s.cold_lat));
  j.Obj("stream_cached_latency", LatencyJson(s.cached_lat));
  return j;
}

}  // namespace

Json RunLogComparison(const CompareConfig& c, const Workload& w, ScratchDir& dir, Json* ratios) {
  Fill fill(w, c.events);
  const uint64_t events = fill.appends * kPerAppend;
  std::string payload;
  std::string ev_path = dir.Fresh("log-evstore"), sq_path = dir.Fresh("log-sqlite"),
              raw_path = dir.Fresh("log-raw");
  Json out, bytes;
  out.Int("events", static_cast<int64_t>(events)).Int("events_per_append", kPerAppend);
  out.Int("payload_bytes", static_cast<int64_t>(c.bytes));

  double ev_bpe = 0, sq_bpe = 0;
  // ---- fill and compact: evstore ----
  double t0 = Now();
  {
    evstore::Store s = OpenEvstore(ev_path, false);
    std::vector<evstore::EventData> batch(kPerAppend);
    for (uint64_t a = 0; a < fill.appends; a++) {
      for (int k = 0; k < kPerAppend; k++) {
        uint64_t i = a * kPerAppend + static_cast<uint64_t>(k);
        batch[static_cast<size_t>(k)].type = w.types[i % w.types.size()];
        batch[static_cast<size_t>(k)].content_type = kContentType;
        PayloadOf(i, c.bytes, &batch[static_cast<size_t>(k)].data);
      }
      auto r = s.append(w.streams[fill.stream_of[a]], evstore::ExpectedVersion::Any(),
                        std::span<const evstore::EventData>(batch));
      if (!r.ok()) Fail("fill", r.status().ToString());
    }
    auto* impl = evstore::internal::StoreAccess::Impl(s);
    std::vector<rocksdb::ColumnFamilyHandle*> cfs;
    for (int i = 0; i < evstore::internal::kNumCfs; i++)
      cfs.push_back(impl->cf(static_cast<evstore::internal::Cf>(i)));
    uint64_t sst = 0;
    Json per_cf = CompactAndMeasure(impl->db(), cfs, events, &sst);
    if (s.close().ok() == false) Fail("close", "evstore");
    Json e;
    ev_bpe = static_cast<double>(DirBytes(ev_path)) / static_cast<double>(events);
    e.Num("bytes_per_event", ev_bpe);
    e.Num("sst_bytes_per_event", static_cast<double>(sst) / static_cast<double>(events));
    e.Obj("sst_bytes_per_event_by_column_family", per_cf);
    bytes.Obj("evstore", e);
  }
  std::fprintf(stderr, "log: evstore filled and compacted in %.1fs\n", Now() - t0);
  if (c.baselines) {
    t0 = Now();
    {
      SqliteEvents db(SqlitePath(sq_path), false);
      std::vector<std::string> data(kPerAppend);
      std::vector<BenchEvent> batch(kPerAppend);
      if (!db.Begin()) Fail("fill", "SQLite begin");
      for (uint64_t a = 0; a < fill.appends; a++) {
        for (int k = 0; k < kPerAppend; k++) {
          uint64_t i = a * kPerAppend + static_cast<uint64_t>(k);
          PayloadOf(i, c.bytes, &data[static_cast<size_t>(k)]);
          batch[static_cast<size_t>(k)] = {w.ids[i % w.ids.size()], w.types[i % w.types.size()], kContentType,
                                           data[static_cast<size_t>(k)]};
        }
        // Transactions of 100 appends: filling is not what is measured.
        if (!db.AppendInTransaction(w.streams[fill.stream_of[a]], batch)) Fail("fill", "SQLite insert");
        if (a % 100 == 99 && !(db.Commit() && db.Begin())) Fail("fill", "SQLite commit");
      }
      if (!db.Commit() || !db.Compact()) Fail("fill", "SQLite compact");
    }
    Json sq;
    sq_bpe = static_cast<double>(DirBytes(sq_path)) / static_cast<double>(events);
    sq.Num("bytes_per_event", sq_bpe);
    ratios->Num("bytes_per_event_vs_sqlite", ev_bpe / sq_bpe);
    bytes.Obj("sqlite", sq);
    std::fprintf(stderr, "log: SQLite filled and vacuumed in %.1fs\n", Now() - t0);
    t0 = Now();
    {
      RawDb raw(raw_path, w);
      std::vector<uint64_t> next_version(w.streams.size(), 0);
      evstore::format::RecordEncoder enc;
      std::string value, data;
      for (uint64_t a = 0; a < fill.appends; a++) {
        rocksdb::WriteBatch b;
        const std::string& stream = w.streams[fill.stream_of[a]];
        uint64_t sid = fill.stream_of[a] + 1;
        for (int k = 0; k < kPerAppend; k++) {
          uint64_t i = a * kPerAppend + static_cast<uint64_t>(k);
          PayloadOf(i, c.bytes, &data);
          uint64_t ver = next_version[fill.stream_of[a]]++;
          enc.EncodeEvent(evstore::format::EventFields{evstore::Uuid::Random(), i, stream, sid, ver,
                                                       w.types[i % w.types.size()], kContentType, data, "", 0},
                          &value);
          evstore::format::Be64 pos(i);
          evstore::format::StreamIndexKey sk(sid, ver);
          std::string cat = evstore::format::NameIndexKey(stream.substr(0, stream.find('-')), i);
          if (!b.Put(raw.cfs[1], pos.view(), value).ok() || !b.Put(raw.cfs[2], sk.view(), pos.view()).ok() ||
              !b.Put(raw.cfs[3], cat, "").ok())
            Fail("fill", "raw batch");
        }
        if (!raw.db->Write(rocksdb::WriteOptions(), &b).ok()) Fail("fill", "raw write");
      }
      uint64_t sst = 0;
      Json per_cf = CompactAndMeasure(raw.db, raw.cfs, events, &sst);
      Json r;
      r.Num("sst_bytes_per_event", static_cast<double>(sst) / static_cast<double>(events));
      r.Obj("sst_bytes_per_event_by_column_family", per_cf);
      bytes.Obj("raw_rocksdb", r);
    }
    std::fprintf(stderr, "log: raw RocksDB filled and compacted in %.1fs\n", Now() - t0);
  }
  bytes.Obj("record", RecordBreakdown(w, c.bytes, w.streams[1234 % w.streams.size()], w.types[0], kContentType));
  bytes.Obj("record_23_byte_event", RecordBreakdown(w, 23, "order-1", "OrderPlaced", "application/json"));
  out.Obj("bytes", bytes);

  // ---- reads ----
  std::vector<std::string> sample;
  std::vector<uint64_t> expect;
  uint64_t sample_events = 0;
  {
    std::vector<uint64_t> per_stream(w.streams.size(), 0);
    for (uint32_t s : fill.stream_of) per_stream[s] += kPerAppend;
    std::mt19937_64 rng(11);
    // Streams the fill wrote to (a small fill leaves most streams empty).
    for (int i = 0; i < c.stream_reads; i++) {
      uint32_t s = fill.stream_of[rng() % fill.appends];
      sample.push_back(w.streams[s]);
      expect.push_back(per_stream[s]);
      sample_events += per_stream[s];
    }
  }
  const std::string& category = w.categories[0];
  uint64_t category_events = 0;
  for (uint64_t a = 0; a < fill.appends; a++)
    if (w.streams[fill.stream_of[a]].rfind(category + "-", 0) == 0) category_events += kPerAppend;
  ReadSeries ev, sq, raw;
  uint64_t sink = 0;
  for (int r = 0; r < c.repeat; r++) {
    std::fprintf(stderr, "log: read repeat %d/%d\n", r + 1, c.repeat);
    {
      DropPageCache(ev_path);
      double t = Now();
      evstore::Store s = OpenEvstore(ev_path, true);
      ev.open_ms.push_back((Now() - t) * 1e3);
      ev.cold.push_back(ReadStreams(sample, expect, &ev.cold_lat,
                                    [&](const std::string& n) { return EvstoreDrain(s.read_stream(n, 0), &sink); }));
      ev.cached.push_back(ReadStreams(
          sample, expect, &ev.cached_lat, [&](const std::string& n) { return EvstoreDrain(s.read_stream(n, 0), &sink); }));
      ev.global.push_back(Timed(events, "global read", [&] { return EvstoreDrain(s.read_all(0), &sink); }));
      ev.category.push_back(
          Timed(category_events, "category read", [&] { return EvstoreDrain(s.read_category(category, 0), &sink); }));
      if (!s.close().ok()) Fail("close", "evstore");
    }
    if (!c.baselines) continue;
    {
      DropPageCache(sq_path);
      double t = Now();
      SqliteEvents db(SqlitePath(sq_path), true);
      uint64_t first = 0;
      if (db.ReadAll(0, 1, &first) != 1) Fail("open", "SQLite");
      sq.open_ms.push_back((Now() - t) * 1e3);
      sq.cold.push_back(
          ReadStreams(sample, expect, &sq.cold_lat, [&](const std::string& n) { return db.ReadStream(n, &sink); }));
      sq.cached.push_back(
          ReadStreams(sample, expect, &sq.cached_lat, [&](const std::string& n) { return db.ReadStream(n, &sink); }));
      sq.global.push_back(Timed(events, "global read", [&] { return db.ReadAll(0, UINT64_MAX, &sink); }));
      sq.category.push_back(Timed(category_events, "category read", [&] { return db.ReadCategory(category, &sink); }));
    }
    {
      DropPageCache(raw_path);
      double t = Now();
      RawDb db(raw_path, w);
      raw.open_ms.push_back((Now() - t) * 1e3);
      raw.cold.push_back(
          ReadStreams(sample, expect, &raw.cold_lat, [&](const std::string& n) { return db.ReadStream(n, &sink); }));
      raw.cached.push_back(
          ReadStreams(sample, expect, &raw.cached_lat, [&](const std::string& n) { return db.ReadStream(n, &sink); }));
      raw.global.push_back(Timed(events, "global read", [&] { return db.ReadAll(&sink); }));
      raw.category.push_back(Timed(category_events, "category read", [&] { return db.ReadCategory(category, &sink); }));
    }
  }
  Json reads;
  reads.Int("streams_per_pass", c.stream_reads).Str("category", category);
  reads.Num("events_per_stream_read", static_cast<double>(sample_events) / static_cast<double>(sample.size()));
  reads.Int("category_events", static_cast<int64_t>(category_events));
  reads.Obj("evstore", ReadJson(ev));
  if (c.baselines) {
    reads.Obj("sqlite", ReadJson(sq));
    reads.Obj("raw_rocksdb", ReadJson(raw));
    ratios->Num("stream_read_vs_sqlite", MedianRatio(ev.cached, sq.cached));
    ratios->Num("stream_read_cold_vs_sqlite", MedianRatio(ev.cold, sq.cold));
    ratios->Num("global_read_vs_sqlite", MedianRatio(ev.global, sq.global));
    ratios->Num("category_read_vs_sqlite", MedianRatio(ev.category, sq.category));
    ratios->Num("open_time_vs_sqlite", MedianRatio(ev.open_ms, sq.open_ms));
    ratios->Num("stream_read_vs_raw_rocksdb", MedianRatio(ev.cached, raw.cached));
  }
  reads.Int("sink", static_cast<int64_t>(sink % 10));
  out.Obj("reads", reads);
  return out;
}

}  // namespace evbench
