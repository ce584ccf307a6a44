// evstore::Store and evstore::EventIterator: thin handles over StoreImpl.
#include "evstore/store.hpp"

#include "log/iterator_impl.hpp"
#include "log/store_impl.hpp"
#include "log/snapshot_impl.hpp"
#include "log/subscription_impl.hpp"
#include "metrics/hub.hpp"

namespace evstore {

using internal::StoreImpl;

// ---- EventIterator ----

EventIterator::EventIterator(std::unique_ptr<internal::IteratorImpl> impl) : impl_(std::move(impl)) {}
EventIterator::EventIterator(EventIterator&&) noexcept = default;
EventIterator& EventIterator::operator=(EventIterator&&) noexcept = default;
EventIterator::~EventIterator() = default;

namespace {
// An exception while moving (out of memory) propagates to the caller, and
// also ends the read with a status saying so: afterwards the iterator shows
// !Valid() and a non-OK status(), never a clean end. A later Seek starts
// afresh.
template <typename Move>
void Guarded(internal::IteratorImpl* it, Move&& move) {
  try {
    move();
  } catch (...) {
    it->Abandon();
    throw;
  }
}
}  // namespace

bool EventIterator::Valid() const { return impl_ && impl_->Valid(); }
void EventIterator::Next() {
  if (impl_) Guarded(impl_.get(), [&] { impl_->Next(); });
}
void EventIterator::Seek(uint64_t from) {
  if (impl_) Guarded(impl_.get(), [&] { impl_->Seek(from); });
}
const EventView& EventIterator::value() const { return impl_->value(); }
Status EventIterator::status() const {
  return impl_ ? impl_->status() : Status::Closed("iterator was moved from");
}

// ---- Store ----

Store::Store(std::shared_ptr<StoreImpl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;  // the impl closes the database when its last user is gone

Result<Store> Store::open(std::string_view path, const Options& options) {
  return internal::OpenStore(path, options, {});
}

Result<Store> internal::OpenStore(std::string_view path, const Options& options, Seams seams) {
  auto r = StoreImpl::Open(path, options, std::move(seams));
  if (!r.ok()) return r.status();
  return StoreAccess::Wrap(std::move(r).value());
}

static Status MovedFrom() { return Status::Closed("store handle was moved from"); }

namespace {
// Counts a read of `kind` and times it (for iterators: until the first event).
struct ReadTimer {
  ReadTimer(StoreImpl* s, metrics::ReadKind kind) : t(&s->metrics()->read) {
    s->metrics()->CountRead(kind);
  }
  metrics::ScopedTimer t;
};
}  // namespace

Status Store::close() { return impl_ ? impl_->Close() : MovedFrom(); }

Result<AppendResult> Store::append(std::string_view stream, ExpectedVersion expected,
                                   std::span<const EventData> events) {
  if (!impl_) return MovedFrom();
  internal::PartRef part{stream, expected, events};
  std::vector<AppendResult> results;
  Status s = impl_->Append(std::span<const internal::PartRef>(&part, 1), &results);
  if (!s.ok()) return s;
  return results[0];
}

Result<std::vector<AppendResult>> Store::append_multi(std::span<const StreamAppend> parts) {
  if (!impl_) return MovedFrom();
  std::vector<internal::PartRef> refs;
  refs.reserve(parts.size());
  for (const StreamAppend& p : parts) refs.push_back({p.stream, p.expected, p.events});
  std::vector<AppendResult> results;
  Status s = impl_->Append(refs, &results);
  if (!s.ok()) return s;
  return results;
}

Result<EventIterator> Store::read_stream(std::string_view stream, uint64_t from, Direction dir,
                                         uint64_t limit) {
  if (!impl_) return MovedFrom();
  ReadTimer timer(impl_.get(), metrics::ReadKind::kStream);
  return impl_->ReadStream(stream, from, dir, limit);
}

Result<EventIterator> Store::read_all(uint64_t from, Direction dir, uint64_t limit) {
  if (!impl_) return MovedFrom();
  ReadTimer timer(impl_.get(), metrics::ReadKind::kAll);
  return impl_->ReadAll(from, dir, limit);
}

Result<EventIterator> Store::read_category(std::string_view category, uint64_t from, Direction dir,
                                           uint64_t limit) {
  if (!impl_) return MovedFrom();
  ReadTimer timer(impl_.get(), metrics::ReadKind::kCategory);
  return impl_->ReadIndex(internal::kCfCategoryIndex, category, from, dir, limit);
}

Result<EventIterator> Store::read_type(std::string_view type, uint64_t from, Direction dir,
                                       uint64_t limit) {
  if (!impl_) return MovedFrom();
  ReadTimer timer(impl_.get(), metrics::ReadKind::kType);
  return impl_->ReadIndex(internal::kCfTypeIndex, type, from, dir, limit);
}

Result<RecordedEvent> Store::read_event(uint64_t position) {
  if (!impl_) return MovedFrom();
  ReadTimer timer(impl_.get(), metrics::ReadKind::kPoint);
  return impl_->ReadEvent(position);
}

Result<StreamInfo> Store::stream_head(std::string_view stream) {
  if (!impl_) return MovedFrom();
  return impl_->StreamHeadOf(stream);
}

Result<StoreStats> Store::stats() {
  if (!impl_) return MovedFrom();
  return impl_->Stats();
}

Result<StoreCacheStats> Store::cache_stats() {
  if (!impl_) return MovedFrom();
  return impl_->CacheStatsOf();
}

Status Store::reset_cache_stats() {
  if (!impl_) return MovedFrom();
  return impl_->ResetCacheStats();
}

Result<Subscription> Store::subscribe(const SubscribeOptions& options) {
  if (!impl_) return MovedFrom();
  return internal::SubscriptionImpl::Make(impl_, options);
}

Result<std::unique_ptr<PushSubscription>> Store::subscribe(const SubscribeOptions& options,
                                                           DeliveryHandler handler) {
  if (!impl_) return MovedFrom();
  return internal::PushImpl::Make(impl_, options, std::move(handler));
}

Result<Snapshot> Store::snapshot() {
  if (!impl_) return MovedFrom();
  internal::StoreImpl::OpGuard g(impl_.get());
  if (g.closed()) return Status::Closed("store is closed");
  return internal::SnapshotImpl::Wrap(std::make_unique<internal::SnapshotImpl>(impl_));
}

Result<CheckpointInfo> Store::get_checkpoint(std::string_view name) {
  if (!impl_) return MovedFrom();
  Status s = internal::ValidCheckpointName(name);
  if (!s.ok()) return s;
  auto cp = impl_->ReadCheckpoint(name);
  if (!cp.ok()) return cp.status();
  if (!cp->has_value()) return Status::NotFound("no checkpoint '" + std::string(name) + "'");
  return CheckpointInfo{std::string(name), (*cp)->position, (*cp)->updated_ms};
}

Result<std::vector<CheckpointInfo>> Store::list_checkpoints() {
  if (!impl_) return MovedFrom();
  return impl_->ListCheckpoints();
}

Status Store::set_checkpoint(std::string_view name, uint64_t position) {
  if (!impl_) return MovedFrom();
  Status s = internal::ValidCheckpointName(name);
  if (!s.ok()) return s;
  return impl_->WriteCheckpoint(name, position);
}

Status Store::delete_checkpoint(std::string_view name) {
  if (!impl_) return MovedFrom();
  Status s = internal::ValidCheckpointName(name);
  if (!s.ok()) return s;
  return impl_->DeleteCheckpoint(name);
}

const std::string& Store::path() const {
  static const std::string kEmpty;
  return impl_ ? impl_->path() : kEmpty;
}

}  // namespace evstore
