// The RocksDB side of a store's metrics and logging: a rocksdb::Logger that
// hands RocksDB's info log to Options::log, and a file system wrapper that
// times syncs of the write-ahead log. Internal; wired in by the store's open
// path (lib/log/db.cpp).
#ifndef EVSTORE_LIB_METRICS_ROCKS_HOOKS_HPP_
#define EVSTORE_LIB_METRICS_ROCKS_HOOKS_HPP_

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <memory>

#include "metrics/hub.hpp"

namespace evstore::metrics {

// RocksDB's level for ours.
rocksdb::InfoLogLevel RocksLevel(LogLevel level);

// A logger passing each message at or above hub->log_level() to the hub's
// callback. REQUIRES: hub->has_callback().
std::shared_ptr<rocksdb::Logger> NewCallbackLogger(std::shared_ptr<MetricsHub> hub);

// A file system over `base` that records every Sync/Fsync of a write-ahead
// log file (*.log) in hub->wal_sync, and passes everything else through.
std::shared_ptr<rocksdb::FileSystem> NewSyncTimingFs(std::shared_ptr<rocksdb::FileSystem> base,
                                                     std::shared_ptr<MetricsHub> hub);

}  // namespace evstore::metrics

#endif  // EVSTORE_LIB_METRICS_ROCKS_HOOKS_HPP_
