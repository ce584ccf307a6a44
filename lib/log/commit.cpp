// The commit pipeline: group commit with a leader among waiting appenders,
// fail-stop after a failed write, and publication to readers. See
// store_impl.hpp for the concurrency model; a request's checks and encoding
// are in prepare.cpp, idempotent replays in replay.cpp.
#include <algorithm>
#include <chrono>

#include "common/time.hpp"
#include "format/keys.hpp"
#include "log/group_state.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"
#include "log/validate.hpp"
#include "metrics/hub.hpp"

namespace evstore::internal {

Status StoreImpl::Append(std::span<const PartRef> parts, std::vector<AppendResult>* results) {
  if (parts.empty()) return Status::InvalidArgument("append: no streams given");
  CommitRequest req;
  req.parts = parts;
  Status s = Commit(&req);
  if (s.ok()) *results = std::move(req.results);
  return s;
}

Status StoreImpl::Commit(CommitRequest* req) {
  // Every path that commits events (appends, transactions, saga steps)
  // passes this one validation.
  size_t bytes = 0;
  if (!req->parts.empty()) {
    Status s = ValidateParts(req->parts, options_, &bytes);
    if (!s.ok()) return s;
  }
  req->event_bytes = bytes;
  for (const ExtraWrite& w : req->extra) bytes += w.key.size() + w.value.size();
  req->approx_bytes = bytes;
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (options_.read_only) return Status::NotSupported("the store is open read-only");
  req->enqueued = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> l(mu_);
  if (!write_error_.ok()) return write_error_;
  queue_.push_back(req);  // may throw: then nothing was queued
  if (leader_waiting_ && queue_.size() >= want_group_) queue_.front()->cv.notify_one();
  while (!req->done && req != queue_.front()) req->cv.wait(l);
  if (!req->done) {
    const uint64_t was_visible = visible_.load(std::memory_order_relaxed);
    LeadGroup(req, l);
    // Live subscribers are woken last, after the group's followers and the
    // next leader: waking many threads is kept off the commit path, so the
    // next group is written meanwhile. Publish's store to visible_ comes
    // first in this thread, which keeps WaitVisible's handshake sound.
    const bool published = visible_.load(std::memory_order_relaxed) != was_visible;
    l.unlock();
    if (published && tail_waiters_.load(std::memory_order_seq_cst) > 0) WakeTail();
  }
  return req->status;
}

void StoreImpl::FailGroup(std::vector<CommitRequest*>& group, const Status& why) {
  for (CommitRequest* r : group) {
    if (!r->status.ok()) continue;  // failed on its own, before the write
    r->status = why;
    r->results.clear();
  }
}

void StoreImpl::LeadGroup(CommitRequest* req, std::unique_lock<std::mutex>& l) {
  // With synced commits, appenders that the previous group released are
  // usually about to append again; wait a fraction of a sync for the group
  // to fill back to its previous size, so that they share the next sync
  // instead of paying for one each. The wait adapts: it is only as long as
  // half the last sync, and the target drops as soon as fewer appenders show
  // up (a lone appender never waits).
  if (options_.sync && last_group_size_ > 1 && queue_.size() < last_group_size_ &&
      write_error_.ok()) {
    want_group_ = last_group_size_;
    leader_waiting_ = true;
    auto deadline = std::chrono::steady_clock::now() + last_sync_ / 2;
    while (queue_.size() < want_group_ &&
           req->cv.wait_until(l, deadline) != std::cv_status::timeout) {
    }
    leader_waiting_ = false;
  }

  // The group: the first n requests of the queue. Counted without
  // allocating, so that whatever throws below, exactly these are finished.
  size_t n = 0, bytes = 0;
  for (CommitRequest* r : queue_) {
    if (n > 0 && (n >= options_.max_group_requests ||
                  bytes + r->approx_bytes > options_.max_group_bytes))
      break;
    n++;
    bytes += r->approx_bytes;
  }
  thread_local std::vector<CommitRequest*> group;
  Status stopped = write_error_;
  try {
    group.assign(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
  } catch (...) {
    // Out of memory before anything happened: fail the group in place.
    for (size_t i = 0; i < n; i++) {
      queue_[i]->status = Status::Aborted("commit failed: out of memory; nothing was written");
      queue_[i]->results.clear();
    }
    stopped = Status::Aborted("out of memory");
    group.clear();
  }
  if (!group.empty()) {
    l.unlock();
    if (!stopped.ok()) {
      // Fail-stop: once a write has failed, nothing more reaches RocksDB.
      FailGroup(group, stopped);
    } else {
      auto t0 = std::chrono::steady_clock::now();
      for (CommitRequest* r : group) metrics_->append_queue_wait.Record(t0 - r->enqueued);
      try {
        RunGroup(group);
      } catch (const std::exception& e) {
        FailGroup(group, Status::Aborted(std::string("commit failed before writing: ") + e.what() +
                                         "; nothing was written"));
      } catch (...) {
        FailGroup(group, Status::Aborted("commit failed before writing (an exception); nothing "
                                         "was written"));
      }
      if (options_.sync) {
        auto took = std::chrono::steady_clock::now() - t0;
        l.lock();
        last_group_size_ = n;
        last_sync_ = std::min<std::chrono::steady_clock::duration>(took, std::chrono::milliseconds(2));
        l.unlock();
      }
    }
    l.lock();
  }
  for (size_t i = 0; i < n; i++) {
    CommitRequest* r = queue_.front();
    queue_.pop_front();
    r->done = true;
    if (r != req) r->cv.notify_one();
  }
  group.clear();
  if (!queue_.empty()) queue_.front()->cv.notify_one();
}

void StoreImpl::RunGroup(std::vector<CommitRequest*>& group) {
  thread_local std::unique_ptr<GroupState> tls_gs;
  if (!tls_gs) tls_gs = std::make_unique<GroupState>();
  GroupState& gs = *tls_gs;
  // The scratch state is reused across groups on this thread; a large group
  // must not pin its memory afterwards.
  constexpr size_t kKeepBytes = 1u << 20;
  if (gs.batch.GetDataSize() > kKeepBytes) gs.batch = rocksdb::WriteBatch();
  if (gs.value.capacity() > kKeepBytes) std::string().swap(gs.value);
  if (gs.heads.bucket_count() > 1024) decltype(gs.heads)().swap(gs.heads);
  if (gs.ids.bucket_count() > 1024) decltype(gs.ids)().swap(gs.ids);
  gs.heads.clear();
  gs.ids.clear();
  gs.fresh.clear();
  gs.next_position = next_position_;
  gs.next_stream_id = next_stream_id_;
  gs.now_ms = NowMs();

  rocksdb::WriteBatch& batch = gs.batch;
  batch.Clear();
  bool sync = false;
  for (CommitRequest* r : group) {
    // PrepareRequest fails only before it touches the batch or the group
    // state, so a failed request leaves nothing to roll back. An exception
    // leaves both half done: it propagates, and LeadGroup fails the group.
    Status s = PrepareRequest(r, &gs, &batch);
    if (!s.ok()) {
      r->status = s;
      r->results.clear();
      continue;
    }
    sync |= r->sync;
  }

  if (seams_.before_write) seams_.before_write();
  if (batch.Count() > 0) {
    if (gs.next_stream_id != next_stream_id_)
      batch.Put(cfs_[kCfDefault], std::string(format::kNextStreamIdKey),
                rocksdb::Slice(format::Be64(gs.next_stream_id).buf, 8));
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync && sync;
    // From here on nothing propagates: the write's outcome decides.
    rocksdb::Status ws;
    try {
      metrics::ScopedTimer timer(&metrics_->commit_write);
      ws = db_->Write(wo, &batch);
    } catch (const std::exception& e) {
      ws = rocksdb::Status::Aborted(std::string("exception in the storage engine: ") + e.what());
    } catch (...) {
      ws = rocksdb::Status::Aborted("exception in the storage engine");
    }
    stat_groups_.fetch_add(1, std::memory_order_relaxed);
    if (ws.ok()) metrics_->written_bytes.Add(batch.GetDataSize());
    if (!ws.ok()) {
      // The outcome is unknown (a failed synced write may be present after
      // a reopen) and RocksDB refuses further writes: fail the group and
      // stop the store's write path. Callers resolve the outcome by
      // retrying with the same event ids after reopening.
      // A write refused because a background job (a flush, a compaction)
      // had already failed reports that first failure; RocksDB refuses
      // such writes before they reach the log. Otherwise the log itself
      // failed, and its writer may not be used again (not even to sync).
      Status prior = WriteError();
      Status err;
      if (prior.ok()) {
        err = Status::IOError("write failed; the outcome of this commit is unknown and the store "
                              "accepts no more writes until it is reopened: " +
                              ws.ToString());
        log_failed_.store(true, std::memory_order_release);
        FailStop(err);
      } else {
        err = Status::IOError("write failed; the outcome of this commit is unknown: " +
                              std::string(prior.message()));
      }
      FailGroup(group, err);
      return;
    }
    Publish(&gs);
  }
  for (CommitRequest* r : group) {
    // Appends are commits of events; checkpoints, projection batches and
    // saga state records written alone are not.
    if (!r->status.ok() || r->parts.empty()) continue;
    stat_appends_.fetch_add(1, std::memory_order_relaxed);
    if (!r->results.empty() && !r->results[0].idempotent_replay) {
      for (const PartRef& p : r->parts)
        stat_events_.fetch_add(p.events.size(), std::memory_order_relaxed);
      metrics_->appended_bytes.Add(r->event_bytes);
    }
  }
}

void StoreImpl::Publish(GroupState* gs) {
  if (seams_.after_write) {
    try {
      seams_.after_write(next_position_, gs->next_position);
    } catch (...) {
    }
  }
  next_position_ = gs->next_position;
  next_stream_id_ = gs->next_stream_id;
  // Heads first, then visibility: a reader that sees the new positions also
  // sees the new heads; one that sees a head past what is visible falls back
  // to a bounded load (StreamHeadOf, PublishedHead).
  if (heads_) {
    try {
      // Unit weights: a put cannot be refused for weight.
      for (auto& [name, t] : gs->heads) (void)heads_->put(std::string(name), t);
    } catch (...) {
      // A head left older than the log would let a later append reuse a
      // version: drop the group's heads (a miss reloads them from the log)
      // and, if even that fails, stop writing.
      try {
        for (auto& [name, t] : gs->heads) (void)heads_->erase(std::string(name));
      } catch (...) {
        FailStop(Status::Aborted("out of memory while publishing a commit; the store accepts no "
                                 "more writes until it is reopened"));
      }
    }
  }
  // Live readers find the group's events in the cache. A failure to cache
  // costs only a read from the log later.
  if (!gs->fresh.empty()) {
    try {
      for (auto& [pos, rec] : gs->fresh) (void)events_cache_->put(pos, std::move(rec));
    } catch (...) {
    }
    gs->fresh.clear();
  }
  // The leader wakes waiting readers once it has handed the queue on
  // (Commit).
  visible_.store(next_position_, std::memory_order_seq_cst);
}

void StoreImpl::FailStop(const Status& why) {
  bool first = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    first = write_error_.ok();
    if (first) write_error_ = why;
  }
  // Logged once, with no lock held (the host's callback runs here).
  if (first) {
    try {
      metrics_->Log(LogLevel::kError, "the store stopped accepting writes until it is reopened: " +
                                          why.ToString());
    } catch (...) {
    }
  }
}

Status StoreImpl::WriteError() {
  std::lock_guard<std::mutex> l(mu_);
  return write_error_;
}

}  // namespace evstore::internal
