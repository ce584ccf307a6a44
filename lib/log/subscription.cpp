// Subscriptions (include/evstore/subscription.hpp): catch-up and live
// delivery from the published log, durable checkpoints, and the push form.
#include <algorithm>
#include <chrono>
#include <thread>

#include "common/thread_name.hpp"
#include "common/time.hpp"
#include "common/utf8.hpp"
#include "format/keys.hpp"
#include "log/iterator_impl.hpp"
#include "log/rocks_status.hpp"
#include "log/subscription_impl.hpp"
#include "metrics/hub.hpp"

namespace evstore {

namespace internal {

constexpr size_t kMaxCheckpointName = 256;
// Up to this many events past the cursor, an all-events read uses point reads.
constexpr uint64_t kPointReadRun = 64;

Status ValidCheckpointName(std::string_view name) {
  if (name.empty() || name.size() > kMaxCheckpointName || !IsValidName(name))
    return Status::InvalidArgument("checkpoint name must be 1.." + std::to_string(kMaxCheckpointName) +
                                   " bytes of UTF-8 without NUL");
  return Status::OK();
}

Status ValidateSubscribeOptions(const SubscribeOptions& o, const Options& so) {
  const SubscriptionFilter& f = o.filter;
  switch (f.kind) {
    case SubscriptionFilter::Kind::kAll: break;
    case SubscriptionFilter::Kind::kStream:
      if (f.name.empty() || f.name.size() > so.max_stream_name_bytes || !IsValidName(f.name))
        return Status::InvalidArgument("subscribe: invalid stream name");
      break;
    case SubscriptionFilter::Kind::kCategory:
      if (f.name.empty() || f.name.size() > so.max_stream_name_bytes || !IsValidName(f.name) ||
          f.name.find('-') != std::string::npos)
        return Status::InvalidArgument("subscribe: invalid category (a category never contains '-')");
      break;
    case SubscriptionFilter::Kind::kTypes:
      if (f.types.empty()) return Status::InvalidArgument("subscribe: no event types given");
      for (const std::string& t : f.types)
        if (t.empty() || t.size() > so.max_type_name_bytes || !IsValidName(t))
          return Status::InvalidArgument("subscribe: invalid event type");
      break;
  }
  if (o.max_batch == 0) return Status::InvalidArgument("subscribe: max_batch must be at least 1");
  if (o.behind_after == 0) return Status::InvalidArgument("subscribe: behind_after must be at least 1");
  if (o.min_wake_interval.count() < 0 || o.min_wake_interval > std::chrono::seconds(1))
    return Status::InvalidArgument("subscribe: min_wake_interval must be 0..1 s");
  if (!o.checkpoint.empty()) return ValidCheckpointName(o.checkpoint);
  return Status::OK();
}

// ---- StoreImpl: waiting for commits, checkpoints ----

bool StoreImpl::WaitVisible(uint64_t after, std::chrono::steady_clock::time_point deadline,
                            const std::atomic<bool>* stop) {
  auto ready = [&] {
    return visible_.load(std::memory_order_seq_cst) > after ||
           (stop != nullptr && stop->load(std::memory_order_acquire)) || gate_.closed();
  };
  if (ready()) return visible() > after;
  tail_waiters_.fetch_add(1, std::memory_order_seq_cst);
  {
    std::unique_lock<std::mutex> l(tail_mu_);
    tail_cv_.wait_until(l, deadline, ready);
  }
  tail_waiters_.fetch_sub(1, std::memory_order_relaxed);
  return visible() > after;
}

void StoreImpl::WakeTail() {
  std::lock_guard<std::mutex> l(tail_mu_);
  tail_cv_.notify_all();
}

Result<std::optional<format::CheckpointFields>> StoreImpl::ReadCheckpoint(std::string_view name) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[kCfCheckpoints],
                               rocksdb::Slice(name.data(), name.size()), &value);
  if (s.IsNotFound()) return std::optional<format::CheckpointFields>();
  if (!s.ok()) return StatusFromRocks(s, "reading checkpoint '" + std::string(name) + "'");
  format::CheckpointFields f;
  Status ds = format::DecodeCheckpoint(name, value, &f);
  if (!ds.ok()) return ds;
  return std::optional<format::CheckpointFields>(f);
}

Status StoreImpl::WriteCheckpoint(std::string_view name, uint64_t position) {
  // A checkpoint past the end of the log would claim events that do not
  // exist (verify reports one as damage).
  if (position > visible())
    return Status::InvalidArgument("checkpoint: position " + std::to_string(position) +
                                   " is beyond the end of the log (" + std::to_string(visible()) + ")");
  ExtraWrite w;
  w.cf = kCfCheckpoints;
  w.key = std::string(name);
  w.value = format::EncodeCheckpoint(name, format::CheckpointFields{position, NowMs()});
  CommitRequest req;
  req.extra = std::span<const ExtraWrite>(&w, 1);
  // At least once: a checkpoint lost to a power loss only delivers again.
  req.sync = false;
  return Commit(&req);
}

Status StoreImpl::DeleteCheckpoint(std::string_view name) {
  ExtraWrite w;
  w.cf = kCfCheckpoints;
  w.key = std::string(name);
  w.erase = true;
  CommitRequest req;
  req.extra = std::span<const ExtraWrite>(&w, 1);
  return Commit(&req);
}

Result<std::vector<CheckpointInfo>> StoreImpl::ListCheckpoints() {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  std::vector<CheckpointInfo> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kCfCheckpoints]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view name(it->key().data(), it->key().size());
    format::CheckpointFields f;
    Status ds = format::DecodeCheckpoint(name, std::string_view(it->value().data(), it->value().size()), &f);
    if (!ds.ok()) return ds;
    out.push_back(CheckpointInfo{std::string(name), f.position, f.updated_ms});
  }
  if (!it->status().ok()) return StatusFromRocks(it->status(), "reading checkpoints");
  return out;
}

Status StoreImpl::PublishedHead(std::string_view stream, StreamHead* head) {
  // The commit leader caches a group's heads just before publishing it: a
  // cached head past what is visible is read again, bounded.
  if (CachedHead(stream, head) && (!head->exists || head->last_position < visible())) return Status::OK();
  return LoadHead(stream, head, /*bounded=*/true);
}

Result<uint64_t> StoreImpl::FirstVersionFrom(uint64_t stream_id, const StreamHead& head,
                                             uint64_t position) {
  if (!head.exists || head.last_position < position) return head.exists ? head.last_version + 1 : 0;
  // Positions grow with versions: the first version at or after `position`
  // by bisection over stream_index, one point read per step.
  uint64_t lo = 0, hi = head.last_version;  // the answer is in [lo, hi]
  std::string value;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    format::StreamIndexKey k(stream_id, mid);
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[kCfStreamIndex],
                                 rocksdb::Slice(k.buf, 16), &value);
    if (!s.ok()) {
      if (s.IsNotFound())
        return Status::Corruption("stream_index entry of stream id " + std::to_string(stream_id) +
                                  " version " + std::to_string(mid) + " is missing");
      return StatusFromRocks(s, "reading stream_index");
    }
    auto p = format::DecodePositionValue(value);
    if (!p) return Status::Corruption("stream_index entry is malformed");
    if (*p < position)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// ---- SubscriptionImpl ----

namespace {

// Fills a batch, reusing the storage of the events already in it (a
// Delivery handed back to next() keeps its strings' capacity).
class BatchOut {
 public:
  explicit BatchOut(std::vector<RecordedEvent>* v) : v_(v) {}
  ~BatchOut() { v_->resize(n_); }
  void Add(const EventView& e) {
    if (n_ < v_->size())
      e.CopyTo(&(*v_)[n_]);
    else
      v_->push_back(e.ToRecorded());
    n_++;
  }
  size_t size() const { return n_; }
  uint64_t last_position() const { return (*v_)[n_ - 1].position; }

 private:
  std::vector<RecordedEvent>* const v_;
  size_t n_ = 0;
};

}  // namespace

SubscriptionImpl::SubscriptionImpl(std::shared_ptr<StoreImpl> store, const SubscribeOptions& o,
                                   uint64_t next)
    : store_(std::move(store)), o_(o), next_(next), delivered_(next) {
  // Before SubscriptionOpened: if this throws, nothing needs undoing.
  metrics_token_ = store_->metrics()->AddReader(
      "subscription", o_.checkpoint, [this] { return next_.load(std::memory_order_acquire); });
  store_->SubscriptionOpened();
}

SubscriptionImpl::~SubscriptionImpl() {
  store_->metrics()->RemoveReader(metrics_token_);
  store_->SubscriptionClosed();
}

Result<Subscription> SubscriptionImpl::Make(std::shared_ptr<StoreImpl> store,
                                            const SubscribeOptions& o) {
  auto impl = Create(std::move(store), o);
  if (!impl.ok()) return impl.status();
  return Subscription(std::move(impl).value());
}

Result<std::unique_ptr<SubscriptionImpl>> SubscriptionImpl::Create(std::shared_ptr<StoreImpl> store,
                                                                   const SubscribeOptions& o) {
  Status s = ValidateSubscribeOptions(o, store->options());
  if (!s.ok()) return s;
  uint64_t next = o.from == kNow ? store->visible() : o.from;
  if (!o.checkpoint.empty()) {
    auto cp = store->ReadCheckpoint(o.checkpoint);
    if (!cp.ok()) return cp.status();
    if (cp->has_value()) next = (*cp)->position;
  } else if (store->closed()) {
    return Status::Closed("store is closed");
  }
  return std::unique_ptr<SubscriptionImpl>(new SubscriptionImpl(std::move(store), o, next));
}

void SubscriptionImpl::Stop() {
  stopped_.store(true, std::memory_order_release);
  store_->WakeTail();
}

Status SubscriptionImpl::Checkpoint(std::optional<uint64_t> position) {
  if (o_.checkpoint.empty())
    return Status::InvalidArgument("checkpoint: this subscription has no checkpoint name");
  uint64_t p = position.value_or(delivered_);
  if (p > delivered_)
    return Status::InvalidArgument("checkpoint: position " + std::to_string(p) +
                                   " is beyond the last delivery (" + std::to_string(delivered_) + ")");
  return store_->WriteCheckpoint(o_.checkpoint, p);
}

Result<Delivery> SubscriptionImpl::Next(std::chrono::milliseconds timeout) {
  Delivery d;
  Status s = NextInto(&d, timeout);
  if (!s.ok()) return s;
  return d;
}

Status SubscriptionImpl::NextInto(Delivery* d, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (stopped_.load(std::memory_order_acquire)) return Status::Closed("subscription was stopped");
    {
      StoreImpl::OpGuard g(store_.get());
      if (g.closed()) return Status::Closed("store is closed");
      const uint64_t end = store_->visible();
      const uint64_t at = next_.load(std::memory_order_relaxed);
      if (live_ && end > at && end - at > o_.behind_after) {
        live_ = false;
        d->events.clear();
        d->kind = Delivery::Kind::kFellBehind;
        d->position = delivered_ = at;
        return Status::OK();
      }
      if (at < end) {
        Status s = ReadBatch(end, &d->events);
        if (!s.ok()) {
          d->events.clear();
          return s;
        }
        if (!d->events.empty()) {
          d->kind = Delivery::Kind::kEvents;
          d->position = delivered_ = next_.load(std::memory_order_relaxed);
          return Status::OK();
        }
      }
      d->events.clear();
      if (!live_) {
        live_ = true;
        d->kind = Delivery::Kind::kCaughtUp;
        d->position = delivered_ = next_.load(std::memory_order_relaxed);
        return Status::OK();
      }
    }
    // Caught up (next_ is the end of the published log): wait, outside the
    // gate, for a publish past it. A stop or a close is seen at the top.
    uint64_t at = next_.load(std::memory_order_relaxed);
    if (!store_->WaitVisible(at, deadline, &stopped_) && !stopped_.load(std::memory_order_acquire) &&
        !store_->closed()) {
      d->kind = Delivery::Kind::kTimedOut;
      d->position = delivered_ = at;
      return Status::OK();
    }
    // Woken by a commit soon after the previous wake-up: let the commits
    // of the rest of the interval join this batch. The wait is short and
    // bounded, so a stop or a close is seen right after it.
    auto now = std::chrono::steady_clock::now();
    if (o_.min_wake_interval.count() > 0 && now - last_wake_ < o_.min_wake_interval) {
      std::this_thread::sleep_until(std::min(last_wake_ + o_.min_wake_interval, deadline));
      now = std::chrono::steady_clock::now();
    }
    last_wake_ = now;
  }
}

Status SubscriptionImpl::ReadBatch(uint64_t end, std::vector<RecordedEvent>* events) {
  const SubscriptionFilter& f = o_.filter;
  if (f.kind == SubscriptionFilter::Kind::kStream) return ReadStream(end, events);
  if (f.kind == SubscriptionFilter::Kind::kTypes && f.types.size() > 1) return ReadMerged(end, events);
  const uint64_t from = next_.load(std::memory_order_relaxed);
  BatchOut out(events);
  uint64_t p = from;
  const uint64_t stop = std::min<uint64_t>(end, from + o_.max_batch);
  if (f.kind == SubscriptionFilter::Kind::kAll) {
    // Recent events are in the event cache (commits put them there while
    // subscriptions are open): copy them from there. A few events past the
    // cursor, point reads through the cache also cost less than a RocksDB
    // iterator (built and seeked per read); further, the iterator reads on.
    for (; p < stop; p++) {
      RecordRef rec = store_->CachedEvent(p);
      if (!rec) {
        if (stop - p > kPointReadRun) break;
        auto loaded = store_->LoadEvent(p);
        if (!loaded.ok()) return loaded.status();
        rec = std::move(loaded).value();
      }
      out.Add(rec->view);
    }
    if (p == stop) {
      next_.store(stop, std::memory_order_release);
      return Status::OK();
    }
  }
  Result<EventIterator> it =
      f.kind == SubscriptionFilter::Kind::kAll
          ? store_->ReadAll(p, Direction::kForward, stop - p)
          : store_->ReadIndex(f.kind == SubscriptionFilter::Kind::kCategory ? kCfCategoryIndex
                                                                             : kCfTypeIndex,
                              f.kind == SubscriptionFilter::Kind::kCategory ? f.name : f.types[0],
                              p, Direction::kForward, o_.max_batch);
  if (!it.ok()) return it.status();
  for (; it->Valid(); it->Next()) {
    const EventView& v = it->value();
    if (v.position >= end) break;  // published after this read began
    out.Add(v);
  }
  if (!it->status().ok()) return it->status();
  // A full batch resumes after its last event; otherwise everything
  // published before `end` has been seen.
  next_.store(out.size() == o_.max_batch ? out.last_position() + 1 : end, std::memory_order_release);
  return Status::OK();
}

Status SubscriptionImpl::ReadStream(uint64_t end, std::vector<RecordedEvent>* events) {
  const uint64_t from = next_.load(std::memory_order_relaxed);
  BatchOut out(events);
  if (!version_known_) {
    StreamHead head;
    Status s = store_->PublishedHead(o_.filter.name, &head);
    if (!s.ok()) return s;
    if (!head.exists) {  // no event yet: nothing selected before `end`
      next_.store(end, std::memory_order_release);
      return Status::OK();
    }
    auto v = store_->FirstVersionFrom(head.stream_id, head, from);
    if (!v.ok()) return v.status();
    next_version_ = *v;
    version_known_ = true;
  }
  auto it = store_->ReadStream(o_.filter.name, next_version_, Direction::kForward, o_.max_batch);
  if (!it.ok()) return it.status();
  for (; it->Valid(); it->Next()) {
    const EventView& v = it->value();
    if (v.position >= end) break;
    if (v.position < from) continue;  // before the start (only before the first read)
    out.Add(v);
    next_version_ = v.version + 1;
  }
  if (!it->status().ok()) return it->status();
  next_.store(out.size() == o_.max_batch ? out.last_position() + 1 : end, std::memory_order_release);
  return Status::OK();
}

// Several event types: one type-index read each, merged by position.
Status SubscriptionImpl::ReadMerged(uint64_t end, std::vector<RecordedEvent>* events) {
  const uint64_t from = next_.load(std::memory_order_relaxed);
  BatchOut out(events);
  std::vector<EventIterator> its;
  for (const std::string& t : o_.filter.types) {
    auto it = store_->ReadIndex(kCfTypeIndex, t, from, Direction::kForward, o_.max_batch);
    if (!it.ok()) return it.status();
    its.push_back(std::move(it).value());
  }
  while (out.size() < o_.max_batch) {
    EventIterator* best = nullptr;
    for (EventIterator& it : its) {
      if (!it.status().ok()) return it.status();
      if (it.Valid() && it.value().position < end &&
          (best == nullptr || it.value().position < best->value().position))
        best = &it;
    }
    if (best == nullptr) break;
    out.Add(best->value());
    best->Next();
  }
  for (EventIterator& it : its)
    if (!it.status().ok()) return it.status();
  next_.store(out.size() == o_.max_batch ? out.last_position() + 1 : end, std::memory_order_release);
  return Status::OK();
}

// ---- PushImpl ----

PushImpl::PushImpl(std::unique_ptr<SubscriptionImpl> sub, DeliveryHandler handler)
    : sub_(std::move(sub)), handler_(std::move(handler)) {}

Result<std::unique_ptr<PushSubscription>> PushImpl::Make(std::shared_ptr<StoreImpl> store,
                                                         const SubscribeOptions& o,
                                                         DeliveryHandler handler) {
  if (!handler) return Status::InvalidArgument("subscribe: no handler given");
  auto sub = SubscriptionImpl::Create(std::move(store), o);
  if (!sub.ok()) return sub.status();
  std::shared_ptr<PushImpl> p(new PushImpl(std::move(sub).value(), std::move(handler)));
  // The thread shares ownership: a handler that destroys its own
  // PushSubscription does not pull the state out from under itself.
  {
    // Run() takes mu_ first: the thread sees thread_ assigned (Wait and Join
    // read it to recognise the handler's own thread).
    std::lock_guard<std::mutex> l(p->mu_);
    p->thread_ = std::thread([self = p] {
      NameThisThread("evs-push");
      self->Run();
    });
  }
  return std::unique_ptr<PushSubscription>(new PushSubscription(std::move(p)));
}

PushImpl::~PushImpl() {
  // Joinable only when the handler destroyed its own PushSubscription: the
  // thread then holds the last reference and ends right after this.
  if (thread_.joinable()) thread_.detach();
}

void PushImpl::Join() {
  if (!thread_.joinable() || std::this_thread::get_id() == thread_.get_id()) return;
  thread_.join();
}

void PushImpl::Run() {
  { std::lock_guard<std::mutex> l(mu_); }  // thread_ is assigned (Make)
  Status result;
  for (;;) {
    if (stop_.load(std::memory_order_acquire)) break;
    auto d = sub_->Next(std::chrono::hours(1));
    if (!d.ok()) {
      // stop() closes the pull side too; that is not an error.
      if (!stop_.load(std::memory_order_acquire)) result = d.status();
      break;
    }
    if (d->kind == Delivery::Kind::kTimedOut) continue;
    Status h;
    try {
      h = handler_(*d);
    } catch (const std::exception& e) {
      h = Status::Aborted(std::string("subscription handler threw: ") + e.what());
    } catch (...) {
      h = Status::Aborted("subscription handler threw");
    }
    if (!h.ok()) {
      result = h;
      break;
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  done_ = true;
  result_ = result;
  done_cv_.notify_all();
}

void PushImpl::Stop() {
  stop_.store(true, std::memory_order_release);
  sub_->Stop();
}

Status PushImpl::Wait() {
  if (thread_.joinable() && std::this_thread::get_id() == thread_.get_id())
    return Status::Busy("wait() called from the subscription's own handler");
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [&] { return done_; });
  return result_;
}

bool PushImpl::done() const {
  std::lock_guard<std::mutex> l(mu_);
  return done_;
}

uint64_t PushImpl::position() const { return sub_->position(); }

}  // namespace internal

// ---- Public handles ----

Subscription::Subscription(std::unique_ptr<internal::SubscriptionImpl> impl) : impl_(std::move(impl)) {}
Subscription::Subscription(Subscription&&) noexcept = default;
Subscription& Subscription::operator=(Subscription&&) noexcept = default;
Subscription::~Subscription() = default;

Result<Delivery> Subscription::next(std::chrono::milliseconds timeout) {
  if (!impl_) return Status::Closed("subscription was moved from");
  return impl_->Next(timeout);
}
Status Subscription::next(Delivery* into, std::chrono::milliseconds timeout) {
  if (into == nullptr) return Status::InvalidArgument("next: no delivery given");
  if (!impl_) return Status::Closed("subscription was moved from");
  return impl_->NextInto(into, timeout);
}
Status Subscription::checkpoint() {
  if (!impl_) return Status::Closed("subscription was moved from");
  return impl_->Checkpoint(std::nullopt);
}
Status Subscription::checkpoint(uint64_t position) {
  if (!impl_) return Status::Closed("subscription was moved from");
  return impl_->Checkpoint(position);
}
void Subscription::stop() {
  if (impl_) impl_->Stop();
}
uint64_t Subscription::position() const { return impl_ ? impl_->position() : 0; }

PushSubscription::PushSubscription(std::shared_ptr<internal::PushImpl> impl) : impl_(std::move(impl)) {}
PushSubscription::~PushSubscription() {
  impl_->Stop();
  impl_->Join();  // from the handler's own thread: it ends after the handler returns
}
void PushSubscription::stop() { impl_->Stop(); }
Status PushSubscription::wait() { return impl_->Wait(); }
bool PushSubscription::done() const { return impl_->done(); }
uint64_t PushSubscription::position() const { return impl_->position(); }

}  // namespace evstore
