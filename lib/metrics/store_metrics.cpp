// Store::metrics(): gathers a StoreMetrics from the store's counters, its
// metrics hub and RocksDB's properties.
#include <rocksdb/db.h>

#include "evstore/store.hpp"
#include "log/store_impl.hpp"
#include "metrics/hub.hpp"

namespace evstore {

namespace {

uint64_t IntProperty(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& name) {
  uint64_t v = 0;
  // A property RocksDB cannot give (a read-only instance lacks some) reads as 0.
  if (!(cf ? db->GetIntProperty(cf, name, &v) : db->GetIntProperty(name, &v))) return 0;
  return v;
}

}  // namespace

Result<StoreMetrics> Store::metrics() {
  if (!impl_) return Status::Closed("store handle was moved from");
  internal::StoreImpl* s = impl_.get();
  // Stats() and CacheStatsOf() pass the gate themselves; this guard keeps the
  // database open while its properties are read.
  internal::StoreImpl::OpGuard g(s);
  if (g.closed()) return Status::Closed("store is closed");
  auto stats = s->Stats();
  if (!stats.ok()) return stats.status();
  auto cache = s->CacheStatsOf();
  if (!cache.ok()) return cache.status();
  metrics::MetricsHub* hub = s->metrics();

  StoreMetrics m;
  m.appends = stats->appends;
  m.events_appended = stats->events_appended;
  m.appended_bytes = hub->appended_bytes.Get();
  m.commit_groups = stats->commit_groups;
  m.written_bytes = hub->written_bytes.Get();
  m.conflicts = stats->conflicts;
  m.idempotent_replays = stats->idempotent_replays;
  m.reads_stream = hub->Reads(metrics::ReadKind::kStream);
  m.reads_all = hub->Reads(metrics::ReadKind::kAll);
  m.reads_category = hub->Reads(metrics::ReadKind::kCategory);
  m.reads_type = hub->Reads(metrics::ReadKind::kType);
  m.reads_point = hub->Reads(metrics::ReadKind::kPoint);
  m.next_position = stats->next_position;
  m.write_stopped = !s->WriteError().ok();
  hub->ReaderLags(m.next_position, &m);
  m.cache = *cache;
  m.append_queue_wait = hub->append_queue_wait.Snapshot();
  m.commit_write = hub->commit_write.Snapshot();
  m.read = hub->read.Snapshot();

  rocksdb::DB* db = s->db();
  RocksDbMetrics& r = m.rocksdb;
  for (int c = 0; c < internal::kNumCfs; c++) {
    rocksdb::ColumnFamilyHandle* h = s->cf(static_cast<internal::Cf>(c));
    if (h == nullptr) continue;  // read-only, a family the store predates
    ColumnFamilyMetrics cf;
    cf.name = internal::kCfNames[c];
    cf.estimated_keys = IntProperty(db, h, rocksdb::DB::Properties::kEstimateNumKeys);
    cf.live_data_bytes = IntProperty(db, h, rocksdb::DB::Properties::kEstimateLiveDataSize);
    cf.memtable_bytes = IntProperty(db, h, rocksdb::DB::Properties::kCurSizeAllMemTables);
    cf.sst_bytes = IntProperty(db, h, rocksdb::DB::Properties::kTotalSstFilesSize);
    cf.pending_compaction_bytes =
        IntProperty(db, h, rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
    r.column_families.push_back(std::move(cf));
  }
  r.block_cache_bytes = IntProperty(db, nullptr, rocksdb::DB::Properties::kBlockCacheUsage);
  r.background_errors = hub->background_errors.load(std::memory_order_relaxed);
  r.write_stalls = hub->write_stalls.load(std::memory_order_relaxed);
  r.write_stops = hub->write_stops.load(std::memory_order_relaxed);
  r.write_stopped = IntProperty(db, nullptr, rocksdb::DB::Properties::kIsWriteStopped) != 0;
  r.delayed_write_rate = IntProperty(db, nullptr, rocksdb::DB::Properties::kActualDelayedWriteRate);
  r.wal_sync = hub->wal_sync.Snapshot();
  r.wal_syncs = r.wal_sync.count;
  m.sagas = hub->Sagas();
  return m;
}

Result<std::string> Store::metrics_text() {
  auto m = metrics();
  if (!m.ok()) return m.status();
  return PrometheusText(*m);
}

}  // namespace evstore
