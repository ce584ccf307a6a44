// UntypedAggregate::Impl: loading aggregate state from the cache, snapshots
// and the log (include/evstore/aggregate.hpp has the contract,
// docs/event-sourcing.md the design).
//
// Concurrency model:
// - States are immutable once built (Entry, behind shared_ptr<const>): the
//   cache, the snapshot writer and callers share them. A load that must fold
//   events clones the newest state it finds and folds into the clone.
// - The cache's single flight is keyed by (stream, version): loads of one
//   stream at one head fold once. hints_ remembers, per stream, the version
//   of its newest cached state, so a load at a newer head starts from it.
// - No lock of ours is held while user code (StateOps) runs; hint_mu_
//   guards hints_ only.
#ifndef EVSTORE_LIB_COMMAND_AGGREGATE_IMPL_HPP_
#define EVSTORE_LIB_COMMAND_AGGREGATE_IMPL_HPP_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "command/snapshot_writer.hpp"
#include "evstore/aggregate.hpp"
#include "evstore/cache.hpp"
#include "log/store_impl.hpp"

namespace evstore {

namespace internal {

// A state and where it stands.
struct AggregateEntry {
  std::shared_ptr<const void> state;
  int64_t version = -1;
  uint64_t position = 0;
  uint64_t stream_id = 0;
  // Folded since the stream's last snapshot (or its start).
  uint64_t events_since_snapshot = 0;
  uint64_t bytes_since_snapshot = 0;
};
using EntryPtr = std::shared_ptr<const AggregateEntry>;

struct StateKey {
  std::string stream;
  uint64_t version = 0;
  friend bool operator==(const StateKey&, const StateKey&) = default;
};
struct StateKeyHash {
  size_t operator()(const StateKey& k) const noexcept {
    return std::hash<std::string>{}(k.stream) ^ (k.version * 0x9E3779B97F4A7C15ull);
  }
};

// InvalidArgument unless `name` is 1..256 bytes of UTF-8 without NUL.
Status ValidAggregateName(std::string_view name);

}  // namespace internal

// Hidden although nested in an exported class: the shared library exports
// only the public API.
class [[gnu::visibility("hidden")]] UntypedAggregate::Impl {
 public:
  Impl(std::shared_ptr<internal::StoreImpl> store, AggregateOptions options, StateOps ops);
  ~Impl();

  Status Init();
  Result<Loaded> Load(std::string_view stream);
  Status SaveSnapshot(std::string_view stream);
  Status FlushSnapshots();
  void ClearCache();
  AggregateStats Stats() const;
  const std::string& name() const { return o_.name; }
  internal::StoreImpl* store() const { return store_.get(); }
  const std::shared_ptr<internal::StoreImpl>& store_ptr() const { return store_; }
  const AggregateOptions& options() const { return o_; }

  // The encoded snapshot record of `e` for `stream` (the writer's and
  // SaveSnapshot's work); errors are the codec's or "too large".
  Result<std::string> EncodeSnapshot(std::string_view stream, const internal::AggregateEntry& e);
  void NoteSnapshotError(const Status& s);
  void NoteSnapshotWritten(uint64_t n) { st_snapshots_written_.fetch_add(n, std::memory_order_relaxed); }

 private:
  using Cache = TieredCache<internal::StateKey, internal::EntryPtr, internal::StateKeyHash>;

  // Builds the state of `stream` at `head` (at least): from the newest
  // cached state, a snapshot, or the initial state, plus the events after.
  Result<internal::EntryPtr> Compute(std::string_view stream, const StreamInfo& head,
                                     LoadSource* source);
  // The stream's snapshot, if one is usable for `head`; errors only for a
  // failed read (a damaged or foreign snapshot is counted and skipped).
  Result<internal::EntryPtr> ReadSnapshot(std::string_view stream, const StreamInfo& head);
  // Folds the events of `stream` after `base`'s version up to `head` into
  // `state` (a private copy).
  Status Fold(std::string_view stream, const StreamInfo& head, int64_t from_version, void* state,
              uint64_t* events, uint64_t* bytes);
  // Queues a snapshot of `e` (not yet shared with anyone) if the policy
  // says so; if queued, the entry's counters restart.
  void MaybeQueueSnapshot(std::string_view stream, const std::shared_ptr<internal::AggregateEntry>& e);
  void SetHint(std::string_view stream, uint64_t version);
  std::optional<uint64_t> GetHint(std::string_view stream);
  void CountSource(LoadSource s);

  const std::shared_ptr<internal::StoreImpl> store_;
  const AggregateOptions o_;
  const StateOps ops_;
  std::shared_ptr<const void> initial_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<internal::SnapshotWriter> writer_;

  std::mutex hint_mu_;
  std::unordered_map<std::string, uint64_t> hints_;  // guarded by hint_mu_

  std::atomic<uint64_t> st_loads_{0}, st_cache_{0}, st_cache_log_{0}, st_snapshot_{0},
      st_log_{0}, st_folded_{0}, st_snapshots_written_{0}, st_snapshot_errors_{0},
      st_snapshots_ignored_{0};
  mutable std::mutex err_mu_;
  std::string last_snapshot_error_;  // guarded by err_mu_
};

}  // namespace evstore

#endif  // EVSTORE_LIB_COMMAND_AGGREGATE_IMPL_HPP_
