// StoreImpl: the event log on RocksDB. Internal; the public face is
// evstore::Store (include/evstore/store.hpp).
//
// Concurrency model:
// - life_mu_ (shared) is held by every public operation; close() takes it
//   exclusively, so it never runs under an operation in flight.
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
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "evstore/cache.hpp"
#include "evstore/store.hpp"

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
  kNumCfs,
};
extern const char* const kCfNames[kNumCfs];

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

  // Outputs.
  std::vector<AppendResult> results;
  Status status;
  bool done = false;
  std::condition_variable cv;
  size_t approx_bytes = 0;
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

// Heterogeneous lookup by string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class StoreImpl : public std::enable_shared_from_this<StoreImpl> {
 public:
  static Result<std::shared_ptr<StoreImpl>> Open(std::string_view path, const Options& options);
  ~StoreImpl();

  Status Close();
  Status Append(std::span<const PartRef> parts, std::vector<AppendResult>* results);
  // Commits a request through the group-commit pipeline (also used by the
  // saga engine for state records with or without events).
  Status Commit(CommitRequest* req);

  Result<EventIterator> ReadStream(std::string_view stream, uint64_t from, Direction dir,
                                   uint64_t limit);
  Result<EventIterator> ReadAll(uint64_t from, Direction dir, uint64_t limit);
  Result<EventIterator> ReadIndex(Cf cf, std::string_view name, uint64_t from, Direction dir,
                                  uint64_t limit);
  Result<RecordedEvent> ReadEvent(uint64_t position);
  Result<StreamInfo> StreamHeadOf(std::string_view stream);
  Result<StoreStats> Stats();

  const std::string& path() const { return path_; }
  const Options& options() const { return options_; }
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return cfs_[c]; }
  // First position not yet visible to readers.
  uint64_t visible() const { return visible_.load(std::memory_order_acquire); }

  // Iterator bookkeeping (close() refuses while iterators are alive).
  void IteratorOpened() { live_iterators_.fetch_add(1, std::memory_order_relaxed); }
  void IteratorClosed() { live_iterators_.fetch_sub(1, std::memory_order_relaxed); }

  // One verified event record by position, through the event cache.
  // NotFound at or past visible().
  Result<RecordRef> LoadEvent(uint64_t position);
  Result<StoreCacheStats> CacheStatsOf();
  Status ResetCacheStats();

  // The shared guard every public operation holds; Closed once closed.
  class OpGuard {
   public:
    explicit OpGuard(StoreImpl* s) : lock_(s->life_mu_), closed_(s->closed_) {}
    bool closed() const { return closed_; }

   private:
    std::shared_lock<std::shared_mutex> lock_;
    bool closed_;
  };

 private:
  StoreImpl(std::string path, const Options& options);
  void MakeCaches();
  Status OpenDb();
  Status CreateStore();
  rocksdb::DBOptions BaseDbOptions() const;
  void CloseDb();

  // Commit pipeline helpers (commit.cpp).
  struct GroupState;
  void RunGroup(std::vector<CommitRequest*>& group);
  Status PrepareRequest(CommitRequest* req, GroupState* gs, rocksdb::WriteBatch* batch);
  Status LoadHead(std::string_view stream, StreamHead* head, bool bounded);
  Status CheckReplay(const PartRef& part, GroupState* gs, bool* replay, AppendResult* result);
  // Where event `id` is stored, if anywhere (NotFound otherwise).
  Result<uint64_t> FindEventId(const Uuid& id);

  const std::string path_;
  const Options options_;

  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;        // kNumCfs entries
  std::vector<rocksdb::ColumnFamilyHandle*> other_cfs_;  // unknown families kept open
  std::shared_ptr<rocksdb::Cache> block_cache_;

  std::shared_mutex life_mu_;
  bool closed_ = false;
  std::atomic<int64_t> live_iterators_{0};

  // Commit pipeline.
  std::mutex mu_;
  std::deque<CommitRequest*> queue_;  // guarded by mu_
  Status write_error_;                // guarded by mu_; sticky once set
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

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_STORE_IMPL_HPP_
