// evstore::Store: a durable, append-only event log in one directory.
//
// A Store is opened on a directory (created on first use), appended to with
// optimistic concurrency (expected versions), and read by stream, by
// category, by event type, or as one global log in commit order.
//
// Thread safety: a Store may be shared by any number of threads; every method
// is safe to call concurrently, including close(). Concurrent appends are
// committed together (group commit: one write and one sync for many
// appenders). An EventIterator belongs to one thread at a time.
//
// Visibility: positions are gapless and in commit order. A reader never sees
// position p before every position below p is visible, and an append is
// visible to every reader once it has returned.
//
// Lifetime: the Store object is a handle; moving it moves the handle. close()
// releases the directory; it fails with Busy while iterators are open.
// Destroying an open Store closes it once its last iterator is gone.
#ifndef EVSTORE_STORE_HPP_
#define EVSTORE_STORE_HPP_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/cache_stats.hpp"
#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/metrics.hpp"
#include "evstore/options.hpp"
#include "evstore/status.hpp"
#include "evstore/projection.hpp"
#include "evstore/subscription.hpp"

namespace evstore {

class Snapshot;  // snapshot.hpp, included at the end

namespace internal {
class StoreImpl;
class IteratorImpl;
struct StoreAccess;
}  // namespace internal

enum class Direction : uint8_t { kForward, kBackward };

// Start bound meaning "from the newest end" in a backward read.
inline constexpr uint64_t kEnd = UINT64_MAX;
// Limit meaning "no limit".
inline constexpr uint64_t kNoLimit = UINT64_MAX;

// A read in progress. Reads stream results; nothing is materialised up front.
// The iterator sees the log as it was when the read began, bounded by the
// last position visible then.
//
//   auto it = store.read_stream("order-1", 0);
//   for (; it->Valid(); it->Next()) use(it->value());
//   if (!it->status().ok()) ...
class EVSTORE_EXPORT EventIterator {
 public:
  EventIterator(EventIterator&&) noexcept;
  EventIterator& operator=(EventIterator&&) noexcept;
  ~EventIterator();

  // True while positioned at an event. False at the end or after an error
  // (check status()).
  bool Valid() const;
  // Moves to the next event in the read's direction. REQUIRES: Valid().
  // Out of memory, std::bad_alloc propagates and the read ends with a
  // non-OK status() (never a clean end); Seek starts it afresh.
  void Next();
  // Repositions at `from` (a version for stream reads, a position otherwise)
  // in the same direction, with the limit counted afresh.
  void Seek(uint64_t from);
  // The current event. REQUIRES: Valid(). The view's bytes stay valid until
  // the next call to Next/Seek, or until the iterator is destroyed.
  const EventView& value() const;
  // OK, or the error that ended the read (Corruption names the position).
  Status status() const;

 private:
  friend class internal::StoreImpl;
  EVSTORE_INTERNAL explicit EventIterator(std::unique_ptr<internal::IteratorImpl> impl);
  std::unique_ptr<internal::IteratorImpl> impl_;
};

// The state of one stream.
struct StreamInfo {
  std::string name;
  uint64_t stream_id = 0;      // internal, stable id
  uint64_t last_version = 0;   // version of its newest event
  uint64_t last_position = 0;  // global position of its newest event
};

// Counters since open.
struct StoreStats {
  uint64_t next_position = 0;     // the position the next event will get
  uint64_t appends = 0;           // append/append_multi calls that committed
  uint64_t events_appended = 0;
  uint64_t commit_groups = 0;     // writes to the storage engine
  uint64_t conflicts = 0;         // WrongExpectedVersion results
  uint64_t idempotent_replays = 0;
};

// StoreCacheStats, the statistics of the store's caches, is in metrics.hpp.

class EVSTORE_EXPORT Store {
 public:
  // Opens (or, with create_if_missing, creates) the store in `path`.
  // Errors: InvalidArgument (empty path, a file, a directory that holds
  // something other than an evstore store), NotFound (missing and
  // !create_if_missing), NotSupported (a store written by a newer evstore),
  // Corruption, IOError (including "locked by another process").
  static Result<Store> open(std::string_view path, const Options& options = Options());

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Closes the store: syncs the log, releases the directory and its lock.
  // Afterwards every method returns Closed. Busy (and nothing changes) while
  // iterators from this store are alive. Closing twice is OK.
  Status close();

  // Appends `events` to `stream` if it is at `expected`. All or nothing.
  // Returns where the events landed. Errors: WrongExpectedVersion (with the
  // actual version; nothing written), DuplicateEvent (an event id is already
  // stored with other content or at another place), InvalidArgument (bad
  // names, empty event list, oversize input), IOError
  // (the outcome is then unknown: retry with the same event ids to learn
  // whether it landed), Closed.
  // Idempotency: when every event id is given and already stored, in order,
  // at consecutive versions of this stream with the same type, data,
  // metadata and content type, the original result is returned with
  // idempotent_replay set and nothing is written.
  Result<AppendResult> append(std::string_view stream, ExpectedVersion expected,
                              std::span<const EventData> events);
  Result<AppendResult> append(std::string_view stream, ExpectedVersion expected,
                              std::initializer_list<EventData> events) {
    return append(stream, expected, std::span<const EventData>(events.begin(), events.size()));
  }
  Result<AppendResult> append(std::string_view stream, ExpectedVersion expected,
                              const EventData& event) {
    return append(stream, expected, std::span<const EventData>(&event, 1));
  }

  // Appends to several streams in one commit, each with its own expectation.
  // All or nothing: on any error nothing is written. Results are in the
  // order of `parts`. A stream may appear only once per transaction.
  Result<std::vector<AppendResult>> append_multi(std::span<const StreamAppend> parts);

  // Reads `stream` from version `from` (kEnd: the newest, for backward) in
  // `dir`, at most `limit` events. NotFound if the stream does not exist.
  Result<EventIterator> read_stream(std::string_view stream, uint64_t from,
                                    Direction dir = Direction::kForward,
                                    uint64_t limit = kNoLimit);
  // Reads the global log from position `from` (kEnd: the newest).
  Result<EventIterator> read_all(uint64_t from, Direction dir = Direction::kForward,
                                 uint64_t limit = kNoLimit);
  // Reads every event of the streams in `category`, in global order, from
  // position `from`.
  Result<EventIterator> read_category(std::string_view category, uint64_t from,
                                      Direction dir = Direction::kForward,
                                      uint64_t limit = kNoLimit);
  // Reads every event of type `type`, in global order, from position `from`.
  Result<EventIterator> read_type(std::string_view type, uint64_t from,
                                  Direction dir = Direction::kForward,
                                  uint64_t limit = kNoLimit);

  // One event by global position. NotFound past the end.
  Result<RecordedEvent> read_event(uint64_t position);

  // The head of `stream`. NotFound if it does not exist.
  Result<StreamInfo> stream_head(std::string_view stream);

  // Counters since open (next_position is always current).
  Result<StoreStats> stats();

  // The caches' statistics; reset_cache_stats() zeroes their counters.
  Result<StoreCacheStats> cache_stats();
  Status reset_cache_stats();

  // A snapshot of the store's metrics (metrics.hpp, docs/metrics.md):
  // counters since open, latency histograms, readers' lag, the caches, the
  // saga engine's part when one is open, and RocksDB's figures (read from
  // its properties; a read-only store reports them too). Cheap enough to
  // call on every scrape: no scan, no lock on the write path. Errors: Closed.
  Result<StoreMetrics> metrics();
  // The same as Prometheus text exposition, format 0.0.4
  // (PrometheusText(*metrics())), for a host to serve on its own endpoint.
  // Errors: Closed.
  Result<std::string> metrics_text();

  // ---- Subscriptions and checkpoints (subscription.hpp) ----

  // A pull subscription. Errors: InvalidArgument (an invalid filter,
  // checkpoint name, max_batch or behind_after), Closed, and Corruption or
  // IOError reading its checkpoint.
  Result<Subscription> subscribe(const SubscribeOptions& options);
  // A push subscription: `handler` runs on a thread the store starts. Errors
  // as above, and InvalidArgument for an empty handler.
  Result<std::unique_ptr<PushSubscription>> subscribe(const SubscribeOptions& options,
                                                      DeliveryHandler handler);
  // The checkpoint stored under `name`: NotFound if none.
  Result<CheckpointInfo> get_checkpoint(std::string_view name);
  // Every stored checkpoint, by name.
  Result<std::vector<CheckpointInfo>> list_checkpoints();
  // Sets or removes a checkpoint by hand (a subscription with this name
  // then starts from `position`, or from its `from`). Not synced on its own.
  // InvalidArgument for a position beyond the end of the log.
  Status set_checkpoint(std::string_view name, uint64_t position);
  Status delete_checkpoint(std::string_view name);

  // A point-in-time view of the log, the stream heads and every projection
  // (snapshot.hpp). Errors: Closed.
  Result<Snapshot> snapshot();

  // ---- Projections (projection.hpp) ----

  // Starts projection `name` (1..256 bytes of UTF-8 without NUL): creates
  // it, or resumes it after its checkpoint (rebuilding it online when
  // options.version differs from the stored one). Errors: InvalidArgument
  // (name, filter, options, empty handler), Busy (it runs already in this
  // process), Closed, Corruption or IOError reading its records.
  Result<std::unique_ptr<Projection>> run_projection(std::string_view name,
                                                     const ProjectionOptions& options,
                                                     ProjectionHandler handler);
  // The value under `key` in the serving state of projection `name`.
  // NotFound when the projection or the key does not exist.
  Result<std::string> projection_get(std::string_view name, std::string_view key);
  // The entries of `name` whose keys start with `prefix`, in key order,
  // after `start_after` (exclusive; empty: from the first), at most `limit`
  // (a page: pass the last key back as start_after for the next one).
  // NotFound when the projection does not exist.
  Result<std::vector<ProjectionEntry>> projection_scan(std::string_view name, std::string_view prefix,
                                                       std::string_view start_after = {},
                                                       size_t limit = 1000);
  // A stored projection's checkpoint and counts; NotFound when none.
  Result<ProjectionInfo> projection_info(std::string_view name);
  // Every stored projection, by name.
  Result<std::vector<ProjectionInfo>> list_projections();
  // Deletes projection `name` and all its state. Busy while it runs;
  // NotFound when there is none.
  Status delete_projection(std::string_view name);

  // The directory this store was opened on.
  const std::string& path() const;

 private:
  // The library's own components (sagas, the C API, the inspector) reach
  // the implementation through internal::StoreAccess (lib/log/store_impl.hpp).
  friend struct internal::StoreAccess;
  EVSTORE_INTERNAL explicit Store(std::shared_ptr<internal::StoreImpl> impl);
  std::shared_ptr<internal::StoreImpl> impl_;
};

}  // namespace evstore

// Snapshot needs EventIterator and StreamInfo, declared above.
#include "evstore/snapshot.hpp"  // IWYU pragma: export

#endif  // EVSTORE_STORE_HPP_
