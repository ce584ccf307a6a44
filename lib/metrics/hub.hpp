// MetricsHub: one store's metrics as they are recorded (histograms,
// counters), the readers whose lag it reports, the saga engine's part, and
// the route of log messages to the host's callback (Options::log). Owned by
// the store (StoreImpl) and shared with the RocksDB adapters that feed it
// (rocks_hooks.hpp), which may outlive the store's handle for a moment.
//
// Thread safety: everything may be called from any thread. Recording is
// lock-free (histogram.hpp). The reader and saga registries take their own
// mutex, and call the registered functions under it: those must not call
// back into the hub's registries (lock order: hub, then the registered
// component's own lock). Log() holds no lock while the callback runs.
#ifndef EVSTORE_LIB_METRICS_HUB_HPP_
#define EVSTORE_LIB_METRICS_HUB_HPP_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "evstore/metrics.hpp"
#include "evstore/options.hpp"
#include "metrics/histogram.hpp"

namespace rocksdb {
class Logger;
}  // namespace rocksdb

namespace evstore::metrics {

enum class ReadKind : uint8_t { kStream, kAll, kCategory, kType, kPoint, kCount };

class MetricsHub {
 public:
  explicit MetricsHub(const Options& options);

  // ---- Recording (lock-free) ----
  Histogram append_queue_wait;
  Histogram commit_write;
  Histogram wal_sync;
  Histogram read;
  Histogram saga_step;
  Counter appended_bytes;
  Counter written_bytes;
  std::atomic<uint64_t> background_errors{0};
  std::atomic<uint64_t> write_stalls{0};
  std::atomic<uint64_t> write_stops{0};
  void CountRead(ReadKind k) noexcept { reads_[static_cast<size_t>(k)].Add(); }
  uint64_t Reads(ReadKind k) const noexcept { return reads_[static_cast<size_t>(k)].Get(); }

  // ---- Readers whose lag is reported ----
  // Registers a reader of `kind` ("subscription" or "projection") named
  // `name` (empty: counted, not listed); `position` returns the first
  // position it has not handled. Returns a token for RemoveReader.
  uint64_t AddReader(std::string kind, std::string name, std::function<uint64_t()> position);
  void RemoveReader(uint64_t token) noexcept;
  // Fills m->subscriptions and m->lags against the end of the log `end`.
  void ReaderLags(uint64_t end, StoreMetrics* m) const;

  // ---- The saga engine's part ----
  // Set by an engine at open, cleared (null) at its shutdown.
  void SetSagaSource(std::function<void(SagaMetrics*)> source);
  // The engine's part, if one is attached (step from saga_step).
  std::optional<SagaMetrics> Sagas() const;

  // ---- Logging ----
  // Passes `msg` to Options::log when `level` is at or above
  // Options::log_level; without a callback, to RocksDB's info log (the LOG
  // file) once SetFallbackLog has given it. Never throws; an exception from
  // the callback is swallowed (it must not unwind into RocksDB).
  void Log(LogLevel level, std::string_view msg) noexcept;
  bool has_callback() const { return static_cast<bool>(log_); }
  LogLevel log_level() const { return log_level_; }
  // Calls the host's callback. REQUIRES: has_callback().
  void CallLog(LogLevel level, std::string_view msg) const noexcept;
  void SetFallbackLog(std::shared_ptr<rocksdb::Logger> logger);

 private:
  std::array<Counter, static_cast<size_t>(ReadKind::kCount)> reads_;

  struct Reader {
    std::string kind;
    std::string name;
    std::function<uint64_t()> position;
  };
  mutable std::mutex readers_mu_;
  std::map<uint64_t, Reader> readers_;  // guarded by readers_mu_
  uint64_t next_token_ = 1;             // guarded by readers_mu_

  mutable std::mutex saga_mu_;
  std::function<void(SagaMetrics*)> saga_source_;  // guarded by saga_mu_

  const LogFunction log_;
  const LogLevel log_level_;
  std::mutex fallback_mu_;
  std::shared_ptr<rocksdb::Logger> fallback_;  // guarded by fallback_mu_
};

}  // namespace evstore::metrics

#endif  // EVSTORE_LIB_METRICS_HUB_HPP_
