// SnapshotWriter: writes an aggregate's snapshots on a thread of its own, so
// that neither loads nor commands wait for a codec or a write.
//
// Loads queue the states the snapshot policy picks; a stream queued twice
// keeps only its newer state. The thread takes everything queued as one
// batch, encodes each state (user code, no lock held) and commits the batch
// through the store's commit pipeline in writes of bounded size that need
// no sync of their own (a snapshot is a cache: after a power loss an older
// one, or none, only means folding more events).
//
// Thread safety: every method may be called from any thread. The thread
// starts with the first snapshot queued and stops in Stop() (also called by
// the destructor), after writing what is queued.
#ifndef EVSTORE_LIB_COMMAND_SNAPSHOT_WRITER_HPP_
#define EVSTORE_LIB_COMMAND_SNAPSHOT_WRITER_HPP_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "evstore/status.hpp"

namespace evstore::internal {

struct AggregateEntry;
class StoreImpl;

class SnapshotWriter {
 public:
  // encode: the record to store under the stream's snapshot key, or the
  // error (reported through on_error). on_written: snapshots committed.
  using Encode = std::function<Result<std::string>(const std::string& stream,
                                                   const AggregateEntry& e)>;
  SnapshotWriter(std::shared_ptr<StoreImpl> store, std::string aggregate, size_t max_pending,
                 Encode encode, std::function<void(const Status&)> on_error,
                 std::function<void(uint64_t)> on_written);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Queues `e` for `stream`; false when the queue is full (dropped) or the
  // writer has stopped.
  bool Enqueue(const std::string& stream, std::shared_ptr<const AggregateEntry> e);
  // Waits until everything queued before the call is written or failed.
  void Flush();
  // Writes what is queued (unless the store is closed), then stops the
  // thread. Idempotent.
  void Stop();
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void Run();
  void WriteBatch(std::unordered_map<std::string, std::shared_ptr<const AggregateEntry>>& batch);

  const std::shared_ptr<StoreImpl> store_;
  const std::string aggregate_;
  const size_t max_pending_;
  const Encode encode_;
  const std::function<void(const Status&)> on_error_;
  const std::function<void(uint64_t)> on_written_;

  std::mutex mu_;
  std::condition_variable cv_;       // work queued, stop
  std::condition_variable done_cv_;  // a batch finished
  std::unordered_map<std::string, std::shared_ptr<const AggregateEntry>> pending_;
  bool stop_ = false;
  bool started_ = false;
  // Batches taken off the queue and finished: a flush waits for the batch
  // under way and, if anything is queued, for the next.
  uint64_t batches_started_ = 0;
  uint64_t batches_done_ = 0;
  bool busy_ = false;
  std::thread thread_;
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_COMMAND_SNAPSHOT_WRITER_HPP_
