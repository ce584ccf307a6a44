// Readers: iterators over a stream, the global log, a category or a type,
// and point reads. Every event is verified (checksum + schema) when read.
#include <algorithm>

#include "common/utf8.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "log/iterator_impl.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

namespace {
// How far the events iterator steps (instead of seeking) to reach the next
// wanted position: events of one stream are often written close together.
constexpr uint64_t kMaxStep = 8;

std::string_view SV(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

bool ValidStreamName(std::string_view stream, const Options& o) {
  return !stream.empty() && stream.size() <= o.max_stream_name_bytes && IsValidName(stream);
}
}  // namespace

IteratorImpl::IteratorImpl(std::shared_ptr<StoreImpl> store, Kind kind, Direction dir,
                           uint64_t limit)
    : store_(std::move(store)), kind_(kind), dir_(dir), limit_(limit) {
  store_->IteratorOpened();
  visible_ = store_->visible();
}

IteratorImpl::~IteratorImpl() {
  idx_.reset();
  ev_.reset();
  store_->IteratorClosed();
}

void IteratorImpl::Init(Cf idx_cf, std::string lower, std::string upper) {
  rocksdb::ReadOptions ro;
  ev_upper_ = std::string(format::EventKey(visible_).view());
  ev_upper_slice_ = rocksdb::Slice(ev_upper_);
  ro.iterate_upper_bound = &ev_upper_slice_;
  ev_.reset(store_->db()->NewIterator(ro, store_->cf(kCfEvents)));
  if (kind_ == Kind::kAll) return;
  lower_ = std::move(lower);
  upper_ = std::move(upper);
  lower_slice_ = rocksdb::Slice(lower_);
  upper_slice_ = rocksdb::Slice(upper_);
  rocksdb::ReadOptions io;
  io.iterate_lower_bound = &lower_slice_;
  io.iterate_upper_bound = &upper_slice_;
  if (idx_cf == kCfStreamIndex) io.prefix_same_as_start = true;
  idx_.reset(store_->db()->NewIterator(io, store_->cf(idx_cf)));
}

void IteratorImpl::Seek(uint64_t from) {
  if (!interrupted_) interrupted_.emplace(Status::Aborted("read interrupted by an exception (out of memory?)"));
  want_ = from;
  count_ = 0;
  valid_ = false;
  adjacent_run_ = false;
  have_prev_ = false;
  status_ = Status::OK();
  if (limit_ == 0) return;
  bool fwd = dir_ == Direction::kForward;
  switch (kind_) {
    case Kind::kAll: {
      if (fwd) {
        ev_->Seek(format::EventKey(from).view());
      } else {
        if (visible_ == 0) return;
        ev_->SeekForPrev(format::EventKey(std::min(from, visible_ - 1)).view());
      }
      break;
    }
    case Kind::kStream: {
      format::StreamIndexKey k(stream_id_, from);
      if (fwd)
        idx_->Seek(rocksdb::Slice(k.buf, 16));
      else
        idx_->SeekForPrev(rocksdb::Slice(k.buf, 16));
      break;
    }
    case Kind::kIndex: {
      if (!fwd && visible_ == 0) return;
      std::string k = format::NameIndexKey(name_, fwd ? from : std::min(from, visible_ - 1));
      if (fwd)
        idx_->Seek(k);
      else
        idx_->SeekForPrev(k);
      break;
    }
  }
  Settle();
}

void IteratorImpl::Next() {
  if (!valid_) return;
  valid_ = false;
  if (++count_ >= limit_) return;
  bool fwd = dir_ == Direction::kForward;
  uint64_t last = kind_ == Kind::kStream ? view_.version : view_.position;
  want_ = fwd ? last + 1 : last - 1;
  if (kind_ == Kind::kStream && adjacent_run_) {
    if (TryAdjacent()) return;
    // The neighbour is not the stream's next event: back to the index, which
    // has not moved while events were taken from the log directly.
    adjacent_run_ = false;
    if (!fwd && view_.version == 0) return;  // read the whole stream backward
    format::StreamIndexKey k(stream_id_, fwd ? view_.version + 1 : view_.version - 1);
    if (fwd)
      idx_->Seek(rocksdb::Slice(k.buf, 16));
    else
      idx_->SeekForPrev(rocksdb::Slice(k.buf, 16));
    Settle();
    return;
  }
  rocksdb::Iterator* it = kind_ == Kind::kAll ? ev_.get() : idx_.get();
  if (fwd)
    it->Next();
  else
    it->Prev();
  Settle();
}

// A stream's events are often adjacent in the log (written by one append or
// by a burst of appends). When the previous two events were adjacent, the
// stream's next event is probably the log's next event: take it from the
// events iterator directly and confirm it by its own (checksummed) stream
// name and version, which identify it uniquely, instead of reading the index.
bool IteratorImpl::TryAdjacent() {
  bool fwd = dir_ == Direction::kForward;
  uint64_t last_pos = view_.position, last_version = view_.version;
  if (!fwd && (last_pos == 0 || last_version == 0)) return false;
  if (fwd)
    ev_->Next();
  else
    ev_->Prev();
  if (!ev_->Valid() || ev_->key().size() != 8) return false;
  uint64_t pos = format::GetBE64(ev_->key().data());
  if (pos != (fwd ? last_pos + 1 : last_pos - 1) || pos >= visible_) return false;
  EventView v;
  if (!format::DecodeEvent(pos, SV(ev_->value()), &spare_, &v).ok()) return false;  // the index path reports it
  if (v.stream != name_ || v.version != (fwd ? last_version + 1 : last_version - 1)) return false;
  std::swap(scratch_, spare_);
  view_ = v;
  valid_ = true;
  return true;
}

void IteratorImpl::Fail(Status s) {
  status_ = std::move(s);
  valid_ = false;
}

// Positions the events iterator at `pos`, stepping when it is near.
bool IteratorImpl::FetchEvent(uint64_t pos) {
  bool fwd = dir_ == Direction::kForward;
  if (ev_->Valid()) {
    auto cur = format::DecodeEventKey(SV(ev_->key()));
    if (cur && *cur != pos) {
      if (fwd && *cur < pos && pos - *cur <= kMaxStep) {
        while (ev_->Valid() && format::GetBE64(ev_->key().data()) < pos) ev_->Next();
      } else if (!fwd && *cur > pos && *cur - pos <= kMaxStep) {
        while (ev_->Valid() && format::GetBE64(ev_->key().data()) > pos) ev_->Prev();
      }
    }
  }
  if (!ev_->Valid() || ev_->key().size() != 8 || format::GetBE64(ev_->key().data()) != pos)
    ev_->Seek(format::EventKey(pos).view());
  if (!ev_->Valid() || format::GetBE64(ev_->key().data()) != pos) {
    if (!ev_->status().ok()) {
      Fail(StatusFromRocks(ev_->status(), "reading the event at position " + std::to_string(pos)));
    } else {
      Fail(Status::Corruption("index entry points at missing event position " +
                              std::to_string(pos)));
    }
    return false;
  }
  return true;
}

void IteratorImpl::Settle() {
  bool fwd = dir_ == Direction::kForward;
  if (kind_ == Kind::kAll) {
    if (!ev_->Valid()) {
      if (!ev_->status().ok())
        Fail(StatusFromRocks(ev_->status(), "reading the log at position " + std::to_string(want_)));
      return;
    }
    auto pos = format::DecodeEventKey(SV(ev_->key()));
    if (!pos) return Fail(Status::Corruption("malformed key in the events column family"));
    Status s = format::DecodeEvent(*pos, SV(ev_->value()), &scratch_, &view_);
    if (!s.ok()) return Fail(s);
    valid_ = true;
    return;
  }
  while (idx_->Valid()) {
    uint64_t pos;
    if (kind_ == Kind::kStream) {
      auto k = format::DecodeStreamIndexKey(SV(idx_->key()));
      auto p = format::DecodePositionValue(SV(idx_->value()));
      if (!k || !p || k->stream_id != stream_id_)
        return Fail(Status::Corruption("malformed stream_index entry in stream '" + name_ + "'"));
      pos = *p;
      expect_version_ = k->version;
    } else {
      auto k = format::DecodeNameIndexKey(SV(idx_->key()));
      if (!k || k->name != name_)
        return Fail(Status::Corruption("malformed index entry for '" + name_ + "'"));
      pos = k->position;
    }
    if (pos >= visible_) {
      // Not yet published when this read began.
      if (fwd) return;
      idx_->Prev();
      continue;
    }
    if (!FetchEvent(pos)) return;
    Status s = format::DecodeEvent(pos, SV(ev_->value()), &scratch_, &view_);
    if (!s.ok()) return Fail(s);
    bool consistent = true;
    if (kind_ == Kind::kStream)
      consistent = view_.stream == name_ && view_.version == expect_version_;
    else if (index_cf_ == kCfCategoryIndex)
      consistent = CategoryOf(view_.stream) == name_;
    else
      consistent = view_.type == name_;
    if (!consistent)
      return Fail(Status::Corruption("index entry for '" + name_ + "' disagrees with the event at position " +
                                     std::to_string(pos)));
    if (kind_ == Kind::kStream) {
      adjacent_run_ = have_prev_ && (fwd ? prev_pos_ + 1 == pos : pos + 1 == prev_pos_);
      have_prev_ = true;
      prev_pos_ = pos;
    }
    valid_ = true;
    return;
  }
  if (!idx_->status().ok())
    Fail(StatusFromRocks(idx_->status(), "reading the index of '" + name_ + "' at " +
                                             (kind_ == Kind::kStream ? "version " : "position ") +
                                             std::to_string(want_)));
}

// ---- StoreImpl read entry points ----

Result<EventIterator> StoreImpl::ReadAll(uint64_t from, Direction dir, uint64_t limit, uint64_t bound) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  auto impl = std::make_unique<IteratorImpl>(shared_from_this(), IteratorImpl::Kind::kAll, dir, limit);
  impl->visible_ = std::min(impl->visible_, bound);
  impl->Init(kCfEvents, {}, {});
  impl->Seek(from);
  return EventIterator(std::move(impl));
}

Result<EventIterator> StoreImpl::ReadStream(std::string_view stream, uint64_t from, Direction dir,
                                            uint64_t limit, uint64_t bound) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (!ValidStreamName(stream, options_))
    return Status::InvalidArgument("read: invalid stream name");
  uint64_t sid = 0;
  StreamHead cached;
  if (CachedHead(stream, &cached)) sid = cached.stream_id;
  if (sid == 0) {
    std::string value, scratch;
    rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), cfs_[kCfStreams],
                                  rocksdb::Slice(stream.data(), stream.size()), &value);
    if (gs.IsNotFound()) return Status::NotFound("stream '" + std::string(stream) + "' does not exist");
    if (!gs.ok()) return StatusFromRocks(gs, "reading stream '" + std::string(stream) + "'");
    format::StreamFields f{};
    Status ds = format::DecodeStream(stream, value, &scratch, &f);
    if (!ds.ok()) return ds;
    sid = f.stream_id;
  }
  auto impl =
      std::make_unique<IteratorImpl>(shared_from_this(), IteratorImpl::Kind::kStream, dir, limit);
  impl->visible_ = std::min(impl->visible_, bound);
  impl->stream_id_ = sid;
  impl->name_ = std::string(stream);
  impl->Init(kCfStreamIndex, std::string(format::StreamIndexKey(sid, 0).view()),
             std::string(format::StreamIndexKey(sid + 1, 0).view()));
  impl->Seek(from);
  return EventIterator(std::move(impl));
}

Result<EventIterator> StoreImpl::ReadIndex(Cf cf, std::string_view name, uint64_t from,
                                           Direction dir, uint64_t limit, uint64_t bound) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  size_t max = cf == kCfTypeIndex ? options_.max_type_name_bytes : options_.max_stream_name_bytes;
  if (name.empty() || name.size() > max || !IsValidName(name))
    return Status::InvalidArgument(cf == kCfTypeIndex ? "read: invalid event type"
                                                      : "read: invalid category");
  if (cf == kCfCategoryIndex && name.find('-') != std::string_view::npos)
    return Status::InvalidArgument("read: a category never contains '-'");
  auto impl =
      std::make_unique<IteratorImpl>(shared_from_this(), IteratorImpl::Kind::kIndex, dir, limit);
  impl->visible_ = std::min(impl->visible_, bound);
  impl->name_ = std::string(name);
  impl->index_cf_ = cf;
  std::string lower = format::NameIndexKey(name, 0);
  std::string upper = format::NameIndexKey(name, impl->visible_);
  impl->Init(cf, std::move(lower), std::move(upper));
  impl->Seek(from);
  return EventIterator(std::move(impl));
}

Result<RecordRef> StoreImpl::LoadEvent(uint64_t position) {
  if (position >= visible()) return Status::NotFound("no event at position " + std::to_string(position));
  auto load = [&]() -> Result<RecordRef> {
    rocksdb::PinnableSlice value;
    format::Be64 k(position);
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cfs_[kCfEvents], rocksdb::Slice(k.buf, 8), &value);
    if (s.IsNotFound())
      return Status::Corruption("event at position " + std::to_string(position) +
                                " is missing below the end of the log");
    if (!s.ok()) return StatusFromRocks(s, "reading the event at position " + std::to_string(position));
    auto rec = std::make_shared<CachedRecord>();
    Status ds = format::DecodeEvent(position, SV(value), &rec->body, &rec->view);
    if (!ds.ok()) return ds;
    return RecordRef(std::move(rec));
  };
  if (!events_cache_) return load();
  return events_cache_->get_or_load(position, load);
}

RecordRef StoreImpl::CachedEvent(uint64_t position) {
  if (!events_cache_) return nullptr;
  auto r = events_cache_->get(position);
  return r ? std::move(*r) : nullptr;
}

Result<RecordedEvent> StoreImpl::ReadEvent(uint64_t position) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  auto rec = LoadEvent(position);
  if (!rec.ok()) return rec.status();
  return (*rec)->view.ToRecorded();
}

Result<StoreCacheStats> StoreImpl::CacheStatsOf() {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  StoreCacheStats st;
  if (events_cache_) st.events = events_cache_->stats();
  if (heads_) st.heads = heads_->stats();
  return st;
}

Status StoreImpl::ResetCacheStats() {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (events_cache_) events_cache_->reset_stats();
  if (heads_) heads_->reset_stats();
  return Status::OK();
}

Result<StreamInfo> StoreImpl::StreamHeadOf(std::string_view stream) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (!ValidStreamName(stream, options_))
    return Status::InvalidArgument("stream_head: invalid stream name");
  StreamHead h;
  Status s = PublishedHead(stream, &h);
  if (!s.ok()) return s;
  if (!h.exists) return Status::NotFound("stream '" + std::string(stream) + "' does not exist");
  return StreamInfo{std::string(stream), h.stream_id, h.last_version, h.last_position};
}

Result<StreamInfo> StoreImpl::StreamHeadAt(std::string_view stream, uint64_t bound) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (!ValidStreamName(stream, options_))
    return Status::InvalidArgument("stream_head: invalid stream name");
  StreamHead h;
  Status s = PublishedHead(stream, &h);
  if (!s.ok()) return s;
  auto missing = [&] {
    return Status::NotFound("stream '" + std::string(stream) + "' did not exist at position " +
                            std::to_string(bound));
  };
  if (!h.exists) return missing();
  if (h.last_position >= bound) {
    // Its last event before `bound` is the one before its first at or after.
    auto v = FirstVersionFrom(h.stream_id, h, bound);
    if (!v.ok()) return v.status();
    if (*v == 0) return missing();
    h.last_version = *v - 1;
    format::StreamIndexKey k(h.stream_id, h.last_version);
    std::string value;
    rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), cfs_[kCfStreamIndex], rocksdb::Slice(k.buf, 16), &value);
    if (!gs.ok()) return StatusFromRocks(gs, "reading stream_index");
    auto p = format::DecodePositionValue(value);
    if (!p) return Status::Corruption("stream_index entry is malformed");
    h.last_position = *p;
  }
  return StreamInfo{std::string(stream), h.stream_id, h.last_version, h.last_position};
}

Result<StoreStats> StoreImpl::Stats() {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  StoreStats st;
  st.next_position = visible();
  st.appends = stat_appends_.load(std::memory_order_relaxed);
  st.events_appended = stat_events_.load(std::memory_order_relaxed);
  st.commit_groups = stat_groups_.load(std::memory_order_relaxed);
  st.conflicts = stat_conflicts_.load(std::memory_order_relaxed);
  st.idempotent_replays = stat_replays_.load(std::memory_order_relaxed);
  return st;
}

}  // namespace evstore::internal
