// The background snapshot writer (snapshot_writer.hpp).
#include "command/snapshot_writer.hpp"

#include <vector>

#include "command/aggregate_impl.hpp"
#include "common/thread_name.hpp"
#include "format/snapshot_record.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

namespace {
// Snapshots of one batch commit in writes of about this size, so that none
// makes a commit group large.
constexpr size_t kCommitBytes = 4u << 20;
}  // namespace

SnapshotWriter::SnapshotWriter(std::shared_ptr<StoreImpl> store, std::string aggregate,
                               size_t max_pending, Encode encode,
                               std::function<void(const Status&)> on_error,
                               std::function<void(uint64_t)> on_written)
    : store_(std::move(store)),
      aggregate_(std::move(aggregate)),
      max_pending_(max_pending),
      encode_(std::move(encode)),
      on_error_(std::move(on_error)),
      on_written_(std::move(on_written)) {}

SnapshotWriter::~SnapshotWriter() { Stop(); }

bool SnapshotWriter::Enqueue(const std::string& stream, std::shared_ptr<const AggregateEntry> e) {
  std::unique_lock<std::mutex> l(mu_);
  if (stop_) return false;
  auto it = pending_.find(stream);
  if (it != pending_.end()) {
    if (it->second->version < e->version) it->second = std::move(e);
    return true;
  }
  if (pending_.size() >= max_pending_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  pending_.emplace(stream, std::move(e));
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] {
      NameThisThread("evs-snapshots");
      Run();
    });
  }
  cv_.notify_one();
  return true;
}

void SnapshotWriter::Flush() {
  std::unique_lock<std::mutex> l(mu_);
  if (!started_) return;
  uint64_t target = batches_started_ + (pending_.empty() ? 0 : 1);
  if (!busy_ && pending_.empty()) return;
  done_cv_.wait(l, [&] { return batches_done_ >= target || (stop_ && !busy_ && pending_.empty()); });
}

void SnapshotWriter::Stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_all();
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

void SnapshotWriter::Run() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !pending_.empty(); });
    if (pending_.empty()) break;  // stopping, nothing left
    std::unordered_map<std::string, std::shared_ptr<const AggregateEntry>> batch;
    batch.swap(pending_);
    batches_started_++;
    busy_ = true;
    l.unlock();
    try {
      WriteBatch(batch);
    } catch (const std::exception& e) {
      // Out of memory, most likely: the batch is dropped (snapshots are
      // only a cache), and the writer goes on.
      on_error_(Status::Aborted(std::string("writing snapshots: ") + e.what()));
    }
    batch.clear();  // states are released outside the lock
    l.lock();
    busy_ = false;
    batches_done_++;
    done_cv_.notify_all();
  }
  done_cv_.notify_all();
}

void SnapshotWriter::WriteBatch(
    std::unordered_map<std::string, std::shared_ptr<const AggregateEntry>>& batch) {
  std::vector<ExtraWrite> writes;
  size_t bytes = 0;
  auto commit = [&] {
    if (writes.empty()) return;
    CommitRequest req;
    req.extra = writes;
    req.sync = false;
    Status s;
    try {
      s = store_->Commit(&req);
    } catch (const std::exception& e) {
      s = Status::Aborted(std::string("writing snapshots: ") + e.what());
    }
    if (s.ok())
      on_written_(writes.size());
    else if (!s.IsClosed())
      on_error_(Status(s));
    writes.clear();
    bytes = 0;
  };
  for (auto& [stream, entry] : batch) {
    if (store_->closed()) return;
    Result<std::string> rec = Status::Aborted("snapshot not encoded");
    try {
      rec = encode_(stream, *entry);
    } catch (const std::exception& e) {
      rec = Status::Aborted(std::string("snapshot codec threw: ") + e.what());
    } catch (...) {
      rec = Status::Aborted("snapshot codec threw");
    }
    if (!rec.ok()) {
      on_error_(rec.status());
      continue;
    }
    ExtraWrite w;
    w.cf = kCfSnapshots;
    w.key = format::SnapshotKey(aggregate_, stream);
    w.value = std::move(rec).value();
    bytes += w.key.size() + w.value.size();
    writes.push_back(std::move(w));
    if (bytes >= kCommitBytes) commit();
  }
  commit();
}

}  // namespace evstore::internal
