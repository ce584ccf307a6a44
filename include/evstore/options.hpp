// evstore::Options: how a store is opened. A plain struct; every field has
// its default written here and a comment saying what it means. Options are
// read once at open; changing the struct afterwards has no effect.
#ifndef EVSTORE_OPTIONS_HPP_
#define EVSTORE_OPTIONS_HPP_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace evstore {

// Severity of a log message (Options::log).
enum class LogLevel : uint8_t { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kFatal = 4 };

// Receives one log message: its level and its text (no trailing newline;
// the view is valid only during the call).
using LogFunction = std::function<void(LogLevel level, std::string_view message)>;

struct Options {
  // ---- Behaviour ----

  // Create the directory and an empty store when none exists. When false,
  // opening a missing store returns NotFound.
  bool create_if_missing = true;

  // Open without taking the directory's lock and refuse every write
  // (NotSupported). Works while another process has the store open; the
  // reader sees the store as it was when opened. Never modifies the store.
  bool read_only = false;

  // Make every acknowledged append durable against a machine crash (fsync of
  // the write-ahead log before the append returns). Concurrent appenders
  // share one sync (group commit). When false, an append survives a process
  // crash but not a power loss; a clean close still syncs.
  bool sync = true;

  // ---- Limits (InvalidArgument beyond them) ----

  // Largest data + metadata of one event, in bytes.
  size_t max_event_bytes = 4u << 20;  // 4 MiB
  // Longest stream name, in bytes of UTF-8.
  size_t max_stream_name_bytes = 1024;
  // Longest event type, in bytes of UTF-8.
  size_t max_type_name_bytes = 256;
  // Longest content type, in bytes.
  size_t max_content_type_bytes = 128;
  // Most events in one append (all streams of a transaction together).
  size_t max_events_per_append = 10000;
  // Most bytes (data + metadata + names) in one append.
  size_t max_append_bytes = 64u << 20;  // 64 MiB
  // Most streams in one multi-stream transaction.
  size_t max_streams_per_transaction = 1000;

  // ---- Cache (see docs/cache.md) ----

  // Event records cached by position: L1 holds verified records ready to
  // read, L2 their compact stored bytes. Capacities in bytes; 0 disables a
  // tier (both 0: no event cache). Records are immutable, so the cache never
  // holds stale data. Filled by point reads (read_event) and index-driven
  // reads; scans of the log bypass it.
  size_t event_cache_l1_bytes = 8u << 20;   // 8 MiB
  size_t event_cache_l2_bytes = 24u << 20;  // 24 MiB
  // Expire cached events this long after they were cached; 0: never.
  uint64_t event_cache_ttl_ms = 0;
  // Stream heads kept in memory (entries). Heads not cached are loaded with
  // one lookup and one seek. 0 keeps none (every append looks its head up).
  size_t head_cache_entries = 1u << 16;  // 65,536 streams

  // ---- Performance ----

  // RocksDB block cache shared by every column family, in bytes.
  size_t block_cache_bytes = 64u << 20;  // 64 MiB
  // Most appends the committer folds into one write (one sync).
  size_t max_group_requests = 1024;
  // Most bytes the committer folds into one write.
  size_t max_group_bytes = 16u << 20;  // 16 MiB
  // Bound on the write-ahead log's total size. Past it, the column families
  // that still hold the oldest log file in memory are flushed, so that file
  // can be deleted; otherwise a rarely written one (stream names, sagas)
  // keeps every later log alive. Recovery after a crash replays at most
  // about this much. 0: RocksDB's own bound (four times all memtables,
  // about 1.3 GiB here).
  size_t max_wal_bytes = 256u << 20;  // 256 MiB

  // ---- Logging (see docs/metrics.md) ----

  // Receives RocksDB's info log, RocksDB's background errors and the reason
  // a store stops accepting writes (fail-stop), at log_level and above.
  // Null (the default): they go to the LOG file in the store's directory.
  // It may run on any thread, RocksDB's background threads included, and
  // sometimes while RocksDB holds its own locks (never an evstore lock): it
  // must be quick, must not throw, and must not call back into the store.
  LogFunction log;
  // The least severe level passed on (to `log` or to the LOG file).
  LogLevel log_level = LogLevel::kWarn;

  // Presets.
  // Durable (the defaults): sync on every commit.
  static Options Durable() { return Options(); }
  // Fast: no fsync per commit. Survives a process crash, not a power loss.
  static Options Fast() {
    Options o;
    o.sync = false;
    return o;
  }
};

}  // namespace evstore

#endif  // EVSTORE_OPTIONS_HPP_
