// evstore::StoreMetrics: what a running store reports about itself (counters,
// latency histograms, RocksDB figures), and its Prometheus text exposition.
// See docs/metrics.md for every metric, its unit and its cost.
//
//   auto m = store.metrics();           // a snapshot, as a struct
//   std::string text = *store.metrics_text();  // Prometheus format 0.0.4
//
// Thread safety: plain values, copied out of the store. Store::metrics()
// may be called from any thread at any time while the store is open; the
// store records metrics with relaxed atomics, so one snapshot is not atomic
// across metrics (a commit in flight may show in one counter and not yet in
// another).
#ifndef EVSTORE_METRICS_HPP_
#define EVSTORE_METRICS_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "evstore/cache_stats.hpp"
#include "evstore/export.hpp"

namespace evstore {

// Statistics of the store's caches (see cache_stats.hpp for the fields).
struct StoreCacheStats {
  CacheStats events;  // event records by position
  CacheStats heads;   // stream heads
};

// A latency distribution since the store opened. Durations are bucketed
// log-linearly (four buckets per power of two from about 1 us to about
// 137 s), so the quantiles are estimates within 25% of the true value.
struct LatencyHistogram {
  struct Bucket {
    double le = 0;            // upper bound in seconds (+infinity for the last)
    uint64_t cumulative = 0;  // observations at or below `le`
  };
  uint64_t count = 0;
  double sum_seconds = 0;
  // Cumulative, ascending, exact at every bound; the last has le = +inf and
  // cumulative == count. The finite bounds are the powers of two
  // nanoseconds from 2.048e-06 s to 137.4 s: the same for every histogram
  // and every snapshot.
  std::vector<Bucket> buckets;
  // Estimated quantiles in seconds; 0 when count is 0.
  double p50 = 0;
  double p99 = 0;
  double p999 = 0;
};

// RocksDB's figures for one column family (estimates where RocksDB says so).
struct ColumnFamilyMetrics {
  std::string name;
  uint64_t estimated_keys = 0;            // rocksdb.estimate-num-keys
  uint64_t live_data_bytes = 0;           // rocksdb.estimate-live-data-size
  uint64_t memtable_bytes = 0;            // rocksdb.cur-size-all-mem-tables
  uint64_t sst_bytes = 0;                 // rocksdb.total-sst-files-size
  uint64_t pending_compaction_bytes = 0;  // rocksdb.estimate-pending-compaction-bytes
};

struct RocksDbMetrics {
  std::vector<ColumnFamilyMetrics> column_families;  // in the store's fixed order
  uint64_t block_cache_bytes = 0;   // block cache in use
  uint64_t background_errors = 0;   // since open (flush, compaction, log and MANIFEST writes)
  uint64_t write_stalls = 0;        // times a column family entered the delayed-write state
  uint64_t write_stops = 0;         // times a column family entered the stopped-write state
  bool write_stopped = false;       // writes are stopped now (rocksdb.is-write-stopped)
  uint64_t delayed_write_rate = 0;  // bytes/s while delayed; 0 when not
  uint64_t wal_syncs = 0;           // syncs of the write-ahead log since open
  LatencyHistogram wal_sync;        // their durations
};

// How far a named reader is behind the end of the log.
struct LagMetrics {
  std::string kind;  // "subscription" (named by its checkpoint) or "projection"
  std::string name;
  uint64_t lag_events = 0;  // positions between what it has handled and the end of the log
};

// The saga engine attached to the store, if one is open.
struct SagaMetrics {
  // Counters since the engine opened.
  uint64_t started = 0;
  uint64_t completed = 0;
  uint64_t compensated = 0;
  uint64_t stuck = 0;          // transitions into stuck
  uint64_t step_retries = 0;
  uint64_t timeouts = 0;
  // Gauges: sagas held by the engine now, by state.
  uint64_t pending = 0;
  uint64_t running = 0;
  uint64_t compensating = 0;
  uint64_t in_flight = 0;  // handlers running now
  // Action and compensation handler run times, since the store opened.
  LatencyHistogram step;
};

struct StoreMetrics {
  // ---- Counters since open ----
  uint64_t appends = 0;             // appends and transactions that committed
  uint64_t events_appended = 0;
  uint64_t appended_bytes = 0;      // data + metadata + names of the committed appends
  uint64_t commit_groups = 0;       // writes to RocksDB (group commit)
  uint64_t written_bytes = 0;       // bytes of those writes (RocksDB write batches)
  uint64_t conflicts = 0;           // WrongExpectedVersion results
  uint64_t idempotent_replays = 0;
  // Reads begun, by kind: read_stream, read_all, read_category, read_type,
  // and point reads (read_event).
  uint64_t reads_stream = 0;
  uint64_t reads_all = 0;
  uint64_t reads_category = 0;
  uint64_t reads_type = 0;
  uint64_t reads_point = 0;
  // ---- Gauges ----
  uint64_t next_position = 0;  // the end of the log
  bool write_stopped = false;  // fail-stop: the store refuses writes until reopened
  uint64_t subscriptions = 0;  // open subscriptions (projections' own included)
  // Named subscriptions (one entry per checkpoint name, the largest lag of
  // those sharing it) and running projections.
  std::vector<LagMetrics> lags;
  StoreCacheStats cache;
  // ---- Latencies ----
  LatencyHistogram append_queue_wait;  // from enqueueing a commit until its group starts
  LatencyHistogram commit_write;       // RocksDB write of a group (its sync included)
  LatencyHistogram read;               // a point read, or a read's start up to its first event
  RocksDbMetrics rocksdb;
  std::optional<SagaMetrics> sagas;    // when a saga engine is open on the store
};

// The Prometheus text exposition (format 0.0.4) of `m`: every metric named
// evstore_*, with HELP and TYPE lines, units in the names, histograms as
// _bucket{le=...}/_sum/_count. Serve it with the content type
// "text/plain; version=0.0.4; charset=utf-8".
EVSTORE_EXPORT std::string PrometheusText(const StoreMetrics& m);

}  // namespace evstore

#endif  // EVSTORE_METRICS_HPP_
