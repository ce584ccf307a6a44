// StoreImpl: the event log on RocksDB. Internal; the public face is
// evstore::Store (include/evstore/store.hpp).
//
// Concurrency model:
// - Every public operation passes gate_ (life_gate.hpp) for its duration;
//   close() shuts it, so it never runs under an operation in flight, and
//   never starves behind new ones.
// - The commit pipeline (commit.cpp) is a leader/follower queue under mu_:
//   the request at the front of the queue is the leader; it takes a group of
//   waiting requests, builds one WriteBatch without holding mu_, writes it
//   once, then publishes under mu_. Only the leader mutates heads_ and
//   next_position_, so the group's checks see a stable state.
// - Readers are bounded by visible_ (the first position not yet published),
//   so a reader never sees a position before every lower one is visible.
#ifndef EVSTORE_LIB_LOG_STORE_IMPL_HPP_
#define EVSTORE_LIB_LOG_STORE_IMPL_HPP_

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "evstore/cache.hpp"
#include "evstore/store.hpp"
#include "evstore/subscription.hpp"
#include "format/checkpoint_record.hpp"
#include "format/projection_record.hpp"
#include "log/life_gate.hpp"

namespace evstore::metrics {
class MetricsHub;
}  // namespace evstore::metrics

namespace evstore::internal {

// Column families, in a fixed order. Names are part of the on-disk format.
enum Cf : int {
  kCfDefault = 0,
  kCfEvents,
  kCfStreamIndex,
  kCfStreams,
  kCfEventIds,
  kCfCategoryIndex,
  kCfTypeIndex,
  kCfSagas,
  kCfCheckpoints,
  kCfSnapshots,
  kCfProjections,
  kCfCommands,
  kNumCfs,
};
extern const char* const kCfNames[kNumCfs];

// Internal seams (not API): open a store on another RocksDB file system
// (the fault-injection tests and the fuzzers) and observe the commit
// pipeline (tests).
struct Seams {
  // Every file and directory operation of the store goes through this file
  // system; null: the local disk.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // Called by the commit leader after a group's write returned OK and before
  // the group is published to readers, with the group's positions
  // [first, end) (equal when it wrote no event). No lock is held.
  std::function<void(uint64_t first, uint64_t end)> after_write;
  // Called by the commit leader after preparing a group, just before its
  // write; what it throws is handled like any failure while preparing.
  std::function<void()> before_write;
};

// A write by another component (sagas, checkpoints) that commits in the same
// batch as a group's events.
struct ExtraWrite {
  Cf cf;
  std::string key;
  std::string value;
  bool erase = false;
};

// One stream's part of a commit request, borrowing the caller's data.
struct PartRef {
  std::string_view stream;
  ExpectedVersion expected;
  std::span<const EventData> events;
};

// A commit request waiting in the pipeline.
struct CommitRequest {
  std::span<const PartRef> parts;
  std::span<const ExtraWrite> extra;
  // Optional check run by the leader, in commit order, just before the
  // request's writes are added to the batch (no lock held; must not call
  // back into the store's write path). A non-OK result fails the request
  // alone.
  std::function<Status()> precheck;
  // False: this request needs no sync of its own. It is written in the next
  // group, synced only if another request of the group needs it (with
  // Options::sync, an acknowledged request is durable only when true).
  bool sync = true;

  // Outputs.
  std::vector<AppendResult> results;
  Status status;
  bool done = false;
  std::condition_variable cv;
  size_t approx_bytes = 0;
  std::chrono::steady_clock::time_point enqueued{};  // metrics: the queue wait
  size_t event_bytes = 0;  // metrics: data, metadata and names of `parts`
};

struct StreamHead {
  uint64_t stream_id = 0;
  bool exists = false;         // has at least one event
  uint64_t last_version = 0;   // valid when exists
  uint64_t last_position = 0;  // valid when exists
};

// A verified event record held by the event cache: the aligned record body
// and a view into it. Never moved after construction (the view points into
// `body`), so it lives behind a shared_ptr.
struct CachedRecord {
  std::string body;
  EventView view;
};
using RecordRef = std::shared_ptr<const CachedRecord>;

class CfSnapshot;  // log/cf_cursor.hpp

// Heterogeneous lookup by string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class StoreImpl : public std::enable_shared_from_this<StoreImpl> {
 public:
  static Result<std::shared_ptr<StoreImpl>> Open(std::string_view path, const Options& options,
                                                  Seams seams = {});
  ~StoreImpl();

  Status Close();
  Status Append(std::span<const PartRef> parts, std::vector<AppendResult>* results);
  // Commits a request through the group-commit pipeline (also used by the
  // saga engine for state records with or without events).
  Status Commit(CommitRequest* req);

  // Reads see the events before min(visible(), bound) (a point-in-time
  // snapshot passes its position as the bound).
  Result<EventIterator> ReadStream(std::string_view stream, uint64_t from, Direction dir,
                                   uint64_t limit, uint64_t bound = UINT64_MAX);
  Result<EventIterator> ReadAll(uint64_t from, Direction dir, uint64_t limit,
                                uint64_t bound = UINT64_MAX);
  Result<EventIterator> ReadIndex(Cf cf, std::string_view name, uint64_t from, Direction dir,
                                  uint64_t limit, uint64_t bound = UINT64_MAX);
  // The stream's head as of `bound` (its last event before that position);
  // NotFound when it had none.
  Result<StreamInfo> StreamHeadAt(std::string_view stream, uint64_t bound);
  Result<RecordedEvent> ReadEvent(uint64_t position);
  Result<StreamInfo> StreamHeadOf(std::string_view stream);
  Result<StoreStats> Stats();

  const std::string& path() const { return path_; }
  const Options& options() const { return options_; }
  // The store's metrics (lib/metrics/hub.hpp); lives as long as the store.
  metrics::MetricsHub* metrics() const { return metrics_.get(); }
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return cfs_[c]; }
  // At most one saga engine runs on a store: true when this call attached
  // one, false when another is attached.
  bool AttachSagaEngine() { return !saga_engine_.exchange(true); }
  void DetachSagaEngine() { saga_engine_.store(false); }

  // Per-store state of a component above the log (the command log's ids in
  // flight): made by `make` on first use under `name`, kept as long as the
  // store's internals.
  std::shared_ptr<void> Attachment(const std::string& name,
                                   const std::function<std::shared_ptr<void>()>& make) {
    std::lock_guard<std::mutex> l(attach_mu_);
    auto it = attachments_.find(name);
    if (it == attachments_.end()) it = attachments_.emplace(name, make()).first;
    return it->second;
  }

  // Commit requests waiting or being written now.
  size_t QueuedCommits() {
    std::lock_guard<std::mutex> l(mu_);
    return queue_.size();
  }

  // Flushes the memtables of every column family to table files (the read
  // benchmark reads from tables, as a long-running store does). Closed
  // once the store is closed.
  Status FlushMemtables();

  // First position not yet visible to readers.
  uint64_t visible() const { return visible_.load(std::memory_order_acquire); }

  // Live readers (subscriptions): waits until visible() > after, `deadline`
  // passes, *stop is set, or the store closes (the gate is shut). True when
  // visible() > after. Waits outside the gate, so close() never waits for it.
  bool WaitVisible(uint64_t after, std::chrono::steady_clock::time_point deadline,
                   const std::atomic<bool>* stop);
  // Wakes every WaitVisible (a stop, a close).
  void WakeTail();
  // Subscriptions (and projections) open on this store. While there are
  // any, each commit puts its events into the event cache as it publishes
  // them, so live readers copy them from there instead of each reading and
  // decoding them from the log.
  void SubscriptionOpened() { live_subscriptions_.fetch_add(1, std::memory_order_relaxed); }
  void SubscriptionClosed() { live_subscriptions_.fetch_sub(1, std::memory_order_relaxed); }
  bool closed() const { return gate_.closed(); }

  // Durable checkpoints (the `checkpoints` column family). Read: nullopt
  // when none is stored. Write: a commit without a sync of its own.
  Result<std::optional<format::CheckpointFields>> ReadCheckpoint(std::string_view name);
  Status WriteCheckpoint(std::string_view name, uint64_t position);
  Status DeleteCheckpoint(std::string_view name);
  Result<std::vector<CheckpointInfo>> ListCheckpoints();

  // Projection records (the `projections` column family; lib/log/
  // projection_store.cpp). Reads take an optional snapshot, so a
  // query sees one instance's state and its checkpoint together. A store
  // from before projections, opened read-only, has no such column family:
  // reads then find nothing.
  Result<std::optional<format::ProjectionMeta>> ReadProjectionMeta(std::string_view name,
                                                                   const CfSnapshot* snap);
  Result<std::optional<format::ProjectionInstance>> ReadProjectionInstance(uint64_t id,
                                                                           const CfSnapshot* snap);
  Result<std::optional<std::string>> ReadProjectionValue(uint64_t id, std::string_view key,
                                                         const CfSnapshot* snap);
  // Appends up to `limit` entries of instance `id` whose keys start with
  // `prefix` and sort after `start_after` (when not empty).
  Status ScanProjectionState(uint64_t id, std::string_view prefix, std::string_view start_after,
                             size_t limit, const CfSnapshot* snap,
                             std::vector<ProjectionEntry>* out);
  Status ListProjectionMetas(const CfSnapshot* snap,
                             std::vector<std::pair<std::string, format::ProjectionMeta>>* out);
  Status ListProjectionInstances(std::vector<std::pair<uint64_t, format::ProjectionInstance>>* out);
  // A fresh instance id: above every id that has keys or was handed out.
  Result<uint64_t> AllocateProjectionInstance();
  // Deletes an instance's state and record, in commits of bounded size.
  Status EraseProjectionInstance(uint64_t id);
  // At most one runner per projection name: true when this call claimed it.
  bool ClaimProjection(std::string_view name);
  void ReleaseProjection(std::string_view name);

  // The first version of stream `stream_id` (whose head is `head`) at a
  // position at or after `position`; head.last_version + 1 when none.
  Result<uint64_t> FirstVersionFrom(uint64_t stream_id, const StreamHead& head, uint64_t position);
  // The stream's head bounded by visible(), or a head with exists=false.
  Status PublishedHead(std::string_view stream, StreamHead* head);

  // Iterator bookkeeping (close() refuses while iterators are alive).
  void IteratorOpened() { live_iterators_.fetch_add(1, std::memory_order_relaxed); }
  void IteratorClosed() { live_iterators_.fetch_sub(1, std::memory_order_relaxed); }

  // One verified event record by position, through the event cache.
  // NotFound at or past visible().
  Result<RecordRef> LoadEvent(uint64_t position);
  // The event at `position` if the event cache holds it; null otherwise.
  // REQUIRES: position < visible().
  RecordRef CachedEvent(uint64_t position);
  Result<StoreCacheStats> CacheStatsOf();
  Status ResetCacheStats();

  // Held by every public operation for its duration (see LifeGate);
  // closed() once the store is closed, and then nothing else may be called.
  class OpGuard {
   public:
    explicit OpGuard(StoreImpl* s) : gate_(&s->gate_), entered_(gate_->Enter()) {}
    ~OpGuard() {
      if (entered_) gate_->Leave();
    }
    OpGuard(const OpGuard&) = delete;
    OpGuard& operator=(const OpGuard&) = delete;
    bool closed() const { return !entered_; }

   private:
    LifeGate* gate_;
    bool entered_;
  };

  // Fail-stop: after `why`, no write reaches RocksDB until the store is
  // reopened; every later commit returns the first such status. Called by the
  // commit leader on a failed write and by RocksDB's background-error
  // callback (flush, compaction, MANIFEST).
  void FailStop(const Status& why);
  // OK, or why the store stopped accepting writes.
  Status WriteError();

 private:
  class ErrorListener;
  StoreImpl(std::string path, const Options& options, Seams seams);
  void MakeCaches();
  Status OpenDb();
  Status CreateStore();
  rocksdb::DBOptions BaseDbOptions();
  // Syncs the log, flushes and closes RocksDB; the first error, if any.
  Status CloseDb();
  // The handles of every column family the store opened (not the unknown
  // ones it keeps open).
  std::vector<rocksdb::ColumnFamilyHandle*> OpenHandles() const;

  // Commit pipeline helpers (commit.cpp).
  struct GroupState;
  // Leads the group at the front of the queue. REQUIRES: `l` holds mu_ and
  // `req` is at the front. Returns with `l` held, the group's requests done
  // and off the queue, and the next leader woken, whatever fails.
  void LeadGroup(CommitRequest* req, std::unique_lock<std::mutex>& l);
  void RunGroup(std::vector<CommitRequest*>& group);
  // The group failed before or while writing: every request not already
  // failed on its own gets `why`.
  static void FailGroup(std::vector<CommitRequest*>& group, const Status& why);
  Status PrepareRequest(CommitRequest* req, GroupState* gs, rocksdb::WriteBatch* batch);
  static Status RunPrecheck(CommitRequest* req);
  void AddExtraWrites(const CommitRequest* req, rocksdb::WriteBatch* batch);
  // Makes a written group visible: positions, heads. REQUIRES: the group's
  // batch was written.
  void Publish(GroupState* gs);
  Status LoadHead(std::string_view stream, StreamHead* head, bool bounded);
  // The newest head entry at a position below `limit`; `head` starts empty.
  Status LoadHeadBelow(std::string_view stream, uint64_t limit, StreamHead* head);
  Status CheckReplay(const PartRef& part, GroupState* gs, bool* replay, AppendResult* result);
  // Where event `id` is stored, if anywhere (NotFound otherwise).
  Result<uint64_t> FindEventId(const Uuid& id);

  const std::string path_;
  const Options options_;
  const Seams seams_;
  const std::shared_ptr<metrics::MetricsHub> metrics_;
  // The file system behind every file of the store, and the RocksDB
  // environment over it (null: RocksDB's default environment).
  std::shared_ptr<rocksdb::FileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;

  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;        // kNumCfs entries
  std::vector<rocksdb::ColumnFamilyHandle*> other_cfs_;  // unknown families kept open
  std::shared_ptr<rocksdb::Cache> block_cache_;

  LifeGate gate_;
  std::atomic<int64_t> live_iterators_{0};
  std::mutex attach_mu_;
  std::map<std::string, std::shared_ptr<void>, std::less<>> attachments_;  // guarded by attach_mu_
  std::atomic<bool> saga_engine_{false};

  // Commit pipeline.
  std::mutex mu_;
  std::deque<CommitRequest*> queue_;  // guarded by mu_
  Status write_error_;                // guarded by mu_; sticky once set
  // A write to the log failed: its writer may not be used again.
  std::atomic<bool> log_failed_{false};
  // Adaptive group commit (guarded by mu_): the size and duration of the
  // last group, and whether a leader is waiting for `want_group_` requests.
  size_t last_group_size_ = 0;
  std::chrono::steady_clock::duration last_sync_{0};
  bool leader_waiting_ = false;
  size_t want_group_ = 0;
  uint64_t next_position_ = 0;        // leader only
  uint64_t next_stream_id_ = 1;       // leader only
  uint64_t id_tag_ = 0;               // this store's tag in generated event ids
  std::atomic<uint64_t> visible_{0};
  // Live readers waiting for visible_ to grow (WaitVisible). A leader that
  // published takes tail_mu_ to notify only when some wait, after handing
  // the queue on (Commit); the seq_cst
  // store of visible_ and load of tail_waiters_ (and the waiters' seq_cst
  // increment and load of visible_) make sure no waiter misses a publish.
  std::mutex tail_mu_;
  std::condition_variable tail_cv_;
  std::atomic<int> tail_waiters_{0};
  std::atomic<int> live_subscriptions_{0};

  // Projections running in this process, and the next instance id (0: not
  // read from disk yet).
  std::mutex proj_mu_;
  std::set<std::string, std::less<>> running_projections_;
  uint64_t next_projection_instance_ = 0;

  // Stream heads, bounded. Only the leader writes it (after publishing a
  // group), so it never holds a head older than the log; readers that miss
  // load the head from the log without caching it, so they cannot put back
  // a head that a later group has already replaced. Null when disabled.
  using HeadCache = TieredCache<std::string, StreamHead, StringHash, std::equal_to<>>;
  std::unique_ptr<HeadCache> heads_;
  // Event records by position (immutable, so never stale). Null when disabled.
  using EventCache = TieredCache<uint64_t, RecordRef>;
  std::unique_ptr<EventCache> events_cache_;
  // The head of `stream` from the head cache, if cached.
  bool CachedHead(std::string_view stream, StreamHead* head);

  // Stats.
  std::atomic<uint64_t> stat_appends_{0}, stat_events_{0}, stat_groups_{0}, stat_conflicts_{0},
      stat_replays_{0};
};

// How the library's own components reach a Store's internals.
struct StoreAccess {
  static Store Wrap(std::shared_ptr<StoreImpl> impl) { return Store(std::move(impl)); }
  static StoreImpl* Impl(const Store& s) { return s.impl_.get(); }
};

// Store::open through the seams.
Result<Store> OpenStore(std::string_view path, const Options& options, Seams seams);

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_STORE_IMPL_HPP_
