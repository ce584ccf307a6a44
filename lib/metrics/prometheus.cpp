// The Prometheus text exposition of StoreMetrics (metrics.hpp), format 0.0.4:
// https://prometheus.io/docs/instrumenting/exposition_formats/
// Every family gets one HELP and one TYPE line followed by all its samples,
// so families never interleave; label values are escaped (\\, \", \n).
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "evstore/metrics.hpp"

namespace evstore {

namespace {

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}

  // The HELP and TYPE lines of a family.
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    *out_ += "# HELP ";
    *out_ += name;
    *out_ += ' ';
    for (char c : help) {
      if (c == '\\') *out_ += "\\\\";
      else if (c == '\n') *out_ += "\\n";
      else *out_ += c;
    }
    *out_ += "\n# TYPE ";
    *out_ += name;
    *out_ += ' ';
    *out_ += type;
    *out_ += '\n';
  }

  void Sample(std::string_view name, Labels labels, uint64_t v) {
    Name(name, labels);
    char buf[32];
    std::snprintf(buf, sizeof buf, " %" PRIu64 "\n", v);
    *out_ += buf;
  }
  void Sample(std::string_view name, Labels labels, double v) {
    Name(name, labels);
    *out_ += ' ';
    *out_ += Double(v);
    *out_ += '\n';
  }

  // A whole histogram family.
  void Histogram(std::string_view name, std::string_view help, const LatencyHistogram& h) {
    Family(name, "histogram", help);
    std::string bucket = std::string(name) + "_bucket";
    for (const auto& b : h.buckets) {
      std::string le = Double(b.le);
      Sample(bucket, {{"le", le}}, b.cumulative);
    }
    if (h.buckets.empty()) Sample(bucket, {{"le", "+Inf"}}, h.count);
    Sample(std::string(name) + "_sum", {}, h.sum_seconds);
    Sample(std::string(name) + "_count", {}, h.count);
  }

  // One-sample families.
  void Counter(std::string_view name, std::string_view help, uint64_t v) {
    Family(name, "counter", help);
    Sample(name, {}, v);
  }
  void Gauge(std::string_view name, std::string_view help, uint64_t v) {
    Family(name, "gauge", help);
    Sample(name, {}, v);
  }

 private:
  static std::string Double(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }
  void Name(std::string_view name, Labels labels) {
    *out_ += name;
    if (labels.size() == 0) return;
    *out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) *out_ += ',';
      first = false;
      *out_ += k;
      *out_ += "=\"";
      for (char c : v) {
        if (c == '\\') *out_ += "\\\\";
        else if (c == '"') *out_ += "\\\"";
        else if (c == '\n') *out_ += "\\n";
        else *out_ += c;
      }
      *out_ += '"';
    }
    *out_ += '}';
  }

  std::string* out_;
};

void CacheFamilies(Writer& w, const StoreCacheStats& c) {
  const std::pair<const char*, const CacheStats*> caches[] = {{"events", &c.events}, {"heads", &c.heads}};
  auto per_tier = [&](const char* name, const char* type, const char* help, auto field) {
    w.Family(name, type, help);
    for (const auto& [cache, s] : caches) {
      w.Sample(name, {{"cache", cache}, {"tier", "l1"}}, field(s->l1));
      w.Sample(name, {{"cache", cache}, {"tier", "l2"}}, field(s->l2));
    }
  };
  auto per_cache = [&](const char* name, const char* help, auto field) {
    w.Family(name, "counter", help);
    for (const auto& [cache, s] : caches) w.Sample(name, {{"cache", cache}}, field(*s));
  };
  per_tier("evstore_cache_hits_total", "counter", "Lookups answered by a cache tier.",
           [](const CacheTierStats& t) { return t.hits; });
  per_cache("evstore_cache_misses_total", "Lookups found in neither tier.",
            [](const CacheStats& s) { return s.misses; });
  per_tier("evstore_cache_evictions_total", "counter", "Entries dropped from a tier for capacity.",
           [](const CacheTierStats& t) { return t.evictions; });
  per_tier("evstore_cache_expirations_total", "counter", "Entries dropped from a tier because their TTL passed.",
           [](const CacheTierStats& t) { return t.expirations; });
  per_cache("evstore_cache_promotions_total", "Entries moved from L2 to L1.",
            [](const CacheStats& s) { return s.l1.promotions; });
  per_cache("evstore_cache_demotions_total", "Entries moved from L1 to L2.",
            [](const CacheStats& s) { return s.l1.demotions; });
  per_tier("evstore_cache_entries", "gauge", "Entries in a tier now.",
           [](const CacheTierStats& t) { return t.entries; });
  per_tier("evstore_cache_weight", "gauge",
           "Weight in a tier now: bytes for the events cache, entries for the heads cache.",
           [](const CacheTierStats& t) { return t.bytes; });
  per_tier("evstore_cache_capacity_weight", "gauge", "Weight a tier may hold (units as evstore_cache_weight).",
           [](const CacheTierStats& t) { return t.capacity; });
}

void RocksFamilies(Writer& w, const RocksDbMetrics& r) {
  auto per_cf = [&](const char* name, const char* help, auto field) {
    w.Family(name, "gauge", help);
    for (const ColumnFamilyMetrics& cf : r.column_families) w.Sample(name, {{"cf", cf.name}}, field(cf));
  };
  per_cf("evstore_rocksdb_estimated_keys", "RocksDB's estimate of the keys in a column family.",
         [](const ColumnFamilyMetrics& c) { return c.estimated_keys; });
  per_cf("evstore_rocksdb_live_data_bytes", "RocksDB's estimate of the live data of a column family.",
         [](const ColumnFamilyMetrics& c) { return c.live_data_bytes; });
  per_cf("evstore_rocksdb_memtable_bytes", "Bytes of a column family's memtables (not yet flushed).",
         [](const ColumnFamilyMetrics& c) { return c.memtable_bytes; });
  per_cf("evstore_rocksdb_sst_bytes", "Bytes of a column family's table files.",
         [](const ColumnFamilyMetrics& c) { return c.sst_bytes; });
  per_cf("evstore_rocksdb_pending_compaction_bytes",
         "RocksDB's estimate of the bytes compaction must rewrite to settle a column family.",
         [](const ColumnFamilyMetrics& c) { return c.pending_compaction_bytes; });
  w.Gauge("evstore_rocksdb_block_cache_bytes", "Bytes in use in RocksDB's block cache.", r.block_cache_bytes);
  w.Counter("evstore_rocksdb_background_errors_total",
            "RocksDB background errors (flush, compaction, log or MANIFEST writes) since open.",
            r.background_errors);
  w.Counter("evstore_rocksdb_write_stalls_total", "Times a column family entered RocksDB's delayed-write state.",
            r.write_stalls);
  w.Counter("evstore_rocksdb_write_stops_total", "Times a column family entered RocksDB's stopped-write state.",
            r.write_stops);
  w.Gauge("evstore_rocksdb_write_stopped", "1 while RocksDB stops writes (too many memtables or files).",
          r.write_stopped ? 1 : 0);
  w.Gauge("evstore_rocksdb_delayed_write_rate_bytes_per_second",
          "RocksDB's write rate limit while writes are delayed; 0 when they are not.", r.delayed_write_rate);
  w.Counter("evstore_wal_syncs_total", "Syncs of the write-ahead log since open.", r.wal_syncs);
  w.Histogram("evstore_wal_sync_seconds", "Duration of each sync of the write-ahead log.", r.wal_sync);
}

void SagaFamilies(Writer& w, const SagaMetrics& s) {
  w.Counter("evstore_sagas_started_total", "Sagas started since the engine opened.", s.started);
  w.Counter("evstore_sagas_completed_total", "Sagas that completed.", s.completed);
  w.Counter("evstore_sagas_compensated_total", "Sagas that were compensated (or resolved by hand).",
            s.compensated);
  w.Counter("evstore_sagas_stuck_total", "Transitions of a saga into stuck.", s.stuck);
  w.Counter("evstore_saga_step_retries_total", "Failed step attempts that were retried.", s.step_retries);
  w.Counter("evstore_saga_step_timeouts_total", "Step attempts that timed out.", s.timeouts);
  w.Family("evstore_sagas", "gauge", "Unfinished sagas held by the engine, by state.");
  w.Sample("evstore_sagas", {{"state", "pending"}}, s.pending);
  w.Sample("evstore_sagas", {{"state", "running"}}, s.running);
  w.Sample("evstore_sagas", {{"state", "compensating"}}, s.compensating);
  w.Gauge("evstore_saga_handlers_in_flight", "Saga handlers running now.", s.in_flight);
  w.Histogram("evstore_saga_step_seconds", "Run time of each saga action or compensation handler.", s.step);
}

}  // namespace

std::string PrometheusText(const StoreMetrics& m) {
  std::string out;
  out.reserve(16 << 10);
  Writer w(&out);
  w.Counter("evstore_appends_total", "Appends and transactions that committed.", m.appends);
  w.Counter("evstore_events_appended_total", "Events written by committed appends.", m.events_appended);
  w.Counter("evstore_appended_bytes_total", "Data, metadata and names of the committed appends.",
            m.appended_bytes);
  w.Counter("evstore_commit_groups_total", "Writes to RocksDB by the commit pipeline (group commit).",
            m.commit_groups);
  w.Counter("evstore_written_bytes_total", "Bytes of the commit pipeline's RocksDB write batches.",
            m.written_bytes);
  w.Counter("evstore_conflicts_total", "Appends refused with WrongExpectedVersion.", m.conflicts);
  w.Counter("evstore_idempotent_replays_total", "Appends answered from an earlier identical append.",
            m.idempotent_replays);
  w.Family("evstore_reads_total", "counter", "Reads begun, by kind.");
  w.Sample("evstore_reads_total", {{"kind", "stream"}}, m.reads_stream);
  w.Sample("evstore_reads_total", {{"kind", "all"}}, m.reads_all);
  w.Sample("evstore_reads_total", {{"kind", "category"}}, m.reads_category);
  w.Sample("evstore_reads_total", {{"kind", "type"}}, m.reads_type);
  w.Sample("evstore_reads_total", {{"kind", "point"}}, m.reads_point);
  w.Gauge("evstore_next_position", "The end of the log: the position the next event gets.", m.next_position);
  w.Gauge("evstore_write_stopped", "1 once the store refuses writes after a failure (fail-stop) until reopened.",
          m.write_stopped ? 1 : 0);
  w.Gauge("evstore_subscriptions", "Open subscriptions, projections' own included.", m.subscriptions);
  w.Family("evstore_reader_lag_events", "gauge",
           "Positions between what a named subscription or a projection has handled and the end of the log.");
  for (const LagMetrics& l : m.lags)
    w.Sample("evstore_reader_lag_events", {{"kind", l.kind}, {"name", l.name}}, l.lag_events);
  CacheFamilies(w, m.cache);
  w.Histogram("evstore_append_queue_wait_seconds",
              "Time from enqueueing a commit until the group that writes it starts.", m.append_queue_wait);
  w.Histogram("evstore_commit_write_seconds", "Duration of each group's RocksDB write, its sync included.",
              m.commit_write);
  w.Histogram("evstore_read_seconds", "Duration of a point read, or of a read's start up to its first event.",
              m.read);
  RocksFamilies(w, m.rocksdb);
  if (m.sagas) SagaFamilies(w, *m.sagas);
  return out;
}

}  // namespace evstore
