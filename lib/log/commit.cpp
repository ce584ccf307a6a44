// The commit pipeline: group commit with a leader among waiting appenders
// (DESIGN.md §4). See store_impl.hpp for the concurrency model.
#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "common/utf8.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "log/store_impl.hpp"
#include "log/validate.hpp"

namespace evstore::internal {

Status StatusFromRocks(const rocksdb::Status& s, std::string_view what);

namespace {

struct UuidHash {
  size_t operator()(const Uuid& u) const noexcept {
    uint64_t a, b;
    std::memcpy(&a, u.bytes, 8);
    std::memcpy(&b, u.bytes + 8, 8);
    return static_cast<size_t>(a ^ (b * 0x9E3779B97F4A7C15ull));
  }
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ExpectationHolds(const ExpectedVersion& ev, const StreamHead& h) {
  switch (ev.kind()) {
    case ExpectedVersion::Kind::kAny: return true;
    case ExpectedVersion::Kind::kNoStream: return !h.exists;
    case ExpectedVersion::Kind::kStreamExists: return h.exists;
    case ExpectedVersion::Kind::kExact: return h.exists && h.last_version == ev.version();
  }
  return false;
}

std::string DescribeExpected(const ExpectedVersion& ev) {
  switch (ev.kind()) {
    case ExpectedVersion::Kind::kAny: return "any";
    case ExpectedVersion::Kind::kNoStream: return "no stream";
    case ExpectedVersion::Kind::kStreamExists: return "stream exists";
    case ExpectedVersion::Kind::kExact: return "version " + std::to_string(ev.version());
  }
  return "?";
}

bool SameContent(const EventData& e, const EventView& v) {
  return e.type == v.type && e.data == v.data && e.metadata == v.metadata &&
         e.content_type == v.content_type;
}

}  // namespace

// Per-group scratch: tentative heads and ids added earlier in the group.
struct StoreImpl::GroupState {
  struct GroupId {
    uint64_t position;
    std::string_view stream;
    uint64_t version;
    const EventData* event;
  };
  std::unordered_map<std::string_view, StreamHead> heads;
  std::unordered_map<Uuid, GroupId, UuidHash> ids;
  uint64_t next_position = 0;
  uint64_t next_stream_id = 0;
  int64_t now_ms = 0;
  format::RecordEncoder enc;
  std::string value;  // encoding scratch
  std::string key;
  std::vector<StreamHead> tentative;
  rocksdb::WriteBatch batch;
};

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
  for (const ExtraWrite& w : req->extra) bytes += w.key.size() + w.value.size();
  req->approx_bytes = bytes;
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (options_.read_only) return Status::NotSupported("the store is open read-only");
  std::unique_lock<std::mutex> l(mu_);
  if (!write_error_.ok()) return write_error_;
  queue_.push_back(req);  // may throw: then nothing was queued
  if (leader_waiting_ && queue_.size() >= want_group_) queue_.front()->cv.notify_one();
  while (!req->done && req != queue_.front()) req->cv.wait(l);
  if (!req->done) LeadGroup(req, l);
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

Status StoreImpl::LoadHead(std::string_view stream, StreamHead* head, bool bounded) {
  *head = StreamHead();
  rocksdb::ReadOptions ro;
  std::string value;
  rocksdb::Status gs = db_->Get(ro, cfs_[kCfStreams], rocksdb::Slice(stream.data(), stream.size()), &value);
  if (gs.IsNotFound()) return Status::OK();
  if (!gs.ok()) return StatusFromRocks(gs, "reading stream '" + std::string(stream) + "'");
  std::string scratch;
  format::StreamFields f{};
  Status ds = format::DecodeStream(stream, value, &scratch, &f);
  if (!ds.ok()) return ds;
  head->stream_id = f.stream_id;
  // The head is the stream's last key in stream_index: one seek.
  format::StreamIndexKey lower(f.stream_id, 0), upper(f.stream_id + 1, 0);
  rocksdb::Slice ub(upper.view().data(), 16);
  ro.iterate_upper_bound = &ub;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfStreamIndex]));
  format::StreamIndexKey last(f.stream_id, UINT64_MAX);
  it->SeekForPrev(rocksdb::Slice(last.view().data(), 16));
  uint64_t limit = bounded ? visible() : UINT64_MAX;
  while (it->Valid()) {
    auto k = format::DecodeStreamIndexKey(std::string_view(it->key().data(), it->key().size()));
    auto p = format::DecodePositionValue(std::string_view(it->value().data(), it->value().size()));
    if (!k || !p || k->stream_id != f.stream_id)
      return Status::Corruption("stream_index entry of stream '" + std::string(stream) +
                                "' is malformed");
    if (*p < limit) {
      head->exists = true;
      head->last_version = k->version;
      head->last_position = *p;
      return Status::OK();
    }
    it->Prev();  // written by a group that is not published yet
  }
  if (!it->status().ok()) return StatusFromRocks(it->status(), "reading stream_index");
  return Status::OK();
}

bool StoreImpl::CachedHead(std::string_view stream, StreamHead* head) {
  if (!heads_) return false;
  auto h = heads_->get(std::string(stream));
  if (!h) return false;
  *head = *h;
  return true;
}

Result<uint64_t> StoreImpl::FindEventId(const Uuid& id) {
  if (auto gp = format::GeneratedIdPosition(id_tag_, id.bytes)) {
    if (*gp < visible()) {
      auto rec = LoadEvent(*gp);
      if (rec.ok() && (*rec)->view.id == id) return *gp;
    }
  }
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[kCfEventIds],
                               rocksdb::Slice(reinterpret_cast<const char*>(id.bytes), 16), &v);
  if (s.IsNotFound()) return Status::NotFound("event id " + id.ToString() + " is not stored");
  if (!s.ok()) return StatusFromRocks(s, "reading event_ids");
  auto p = format::DecodePositionValue(v);
  if (!p) return Status::Corruption("event_ids entry of " + id.ToString() + " is malformed");
  return *p;
}

Status StoreImpl::CheckReplay(const PartRef& part, GroupState* gs, bool* replay,
                              AppendResult* result) {
  *replay = false;
  bool any_id = false;
  for (const EventData& e : part.events) any_id |= !e.id.is_nil();
  if (!any_id) return Status::OK();
  size_t known = 0;
  std::vector<uint64_t> positions(part.events.size(), UINT64_MAX);
  for (size_t i = 0; i < part.events.size(); i++) {
    const Uuid& id = part.events[i].id;
    if (id.is_nil()) continue;
    if (gs->ids.count(id)) {
      positions[i] = gs->ids[id].position;
      known++;
      continue;
    }
    auto found = FindEventId(id);
    if (!found.ok()) {
      if (found.status().IsNotFound()) continue;
      return found.status();
    }
    positions[i] = *found;
    known++;
  }
  if (known == 0) return Status::OK();
  if (known != part.events.size())
    return Status::DuplicateEvent("append to '" + std::string(part.stream) +
                                  "': some event ids are already stored and others are not");
  // Every id is stored: it is a replay only if each sits, with the same
  // content, at consecutive versions of this stream.
  for (size_t i = 0; i < part.events.size(); i++) {
    const EventData& e = part.events[i];
    std::string_view stream;
    uint64_t version;
    bool same;
    auto git = gs->ids.find(e.id);
    if (git != gs->ids.end()) {
      stream = git->second.stream;
      version = git->second.version;
      const EventData& o = *git->second.event;
      same = o.type == e.type && o.data == e.data && o.metadata == e.metadata &&
             o.content_type == e.content_type;
    } else {
      auto rec = LoadEvent(positions[i]);
      if (!rec.ok())
        return rec.status().IsNotFound()
                   ? Status::Corruption("event id " + e.id.ToString() +
                                        " points at missing position " +
                                        std::to_string(positions[i]))
                   : rec.status();
      const EventView& v = (*rec)->view;
      stream = v.stream;
      version = v.version;
      same = SameContent(e, v);
      if (v.id != e.id)
        return Status::Corruption("event_ids entry of " + e.id.ToString() +
                                  " points at an event with another id");
      if (stream != part.stream || !same) {
        return Status::DuplicateEvent("event id " + e.id.ToString() +
                                      " is already stored " +
                                      (stream != part.stream ? "in stream '" + std::string(stream) + "'"
                                                             : std::string("with other content")) +
                                      " at position " + std::to_string(positions[i]));
      }
    }
    if (stream != part.stream || !same)
      return Status::DuplicateEvent("event id " + e.id.ToString() +
                                    " is already used by another event in this commit group");
    if (i == 0) {
      result->first_version = version;
      result->first_position = positions[i];
    } else if (version != result->first_version + i) {
      return Status::DuplicateEvent("event id " + e.id.ToString() +
                                    " is stored at another version than this append implies");
    }
    result->last_version = version;
    result->last_position = positions[i];
  }
  result->idempotent_replay = true;
  *replay = true;
  return Status::OK();
}

Status StoreImpl::PrepareRequest(CommitRequest* req, GroupState* gs, rocksdb::WriteBatch* batch) {
  req->results.assign(req->parts.size(), AppendResult());
  // Idempotent replays first: a retry of a landed append returns its result.
  size_t replays = 0;
  for (size_t i = 0; i < req->parts.size(); i++) {
    bool replay = false;
    Status s = CheckReplay(req->parts[i], gs, &replay, &req->results[i]);
    if (!s.ok()) return s;
    replays += replay;
  }
  const bool replay = replays == req->parts.size() && !req->parts.empty();
  if (replays > 0 && !replay)
    return Status::DuplicateEvent(
        "transaction: some streams' events are already stored and others are not");
  if (replay) {
    // The events are stored; the request's other writes (a saga's record,
    // say) are not, and must still be written, or fail the request.
    if (!req->extra.empty()) {
      Status s = RunPrecheck(req);
      if (!s.ok()) return s;
      AddExtraWrites(req, batch);
    }
    stat_replays_.fetch_add(1, std::memory_order_relaxed);
    return Status::OK();
  }

  // Expectations against the tentative heads.
  std::vector<StreamHead>& heads = gs->tentative;
  heads.assign(req->parts.size(), StreamHead());
  for (size_t i = 0; i < req->parts.size(); i++) {
    const PartRef& p = req->parts[i];
    auto it = gs->heads.find(p.stream);
    if (it != gs->heads.end()) {
      heads[i] = it->second;
    } else {
      if (!CachedHead(p.stream, &heads[i])) {
        Status s = LoadHead(p.stream, &heads[i], /*bounded=*/false);
        if (!s.ok()) return s;
      }
    }
    if (!ExpectationHolds(p.expected, heads[i])) {
      stat_conflicts_.fetch_add(1, std::memory_order_relaxed);
      int64_t actual = heads[i].exists ? static_cast<int64_t>(heads[i].last_version)
                                            : Status::kNoStream;
      return Status::WrongExpectedVersion(
          "append to '" + std::string(p.stream) + "': expected " + DescribeExpected(p.expected) +
              ", but the stream " +
              (heads[i].exists ? "is at version " + std::to_string(actual)
                                    : std::string("does not exist")),
          actual, static_cast<int64_t>(i));
    }
  }
  {
    Status s = RunPrecheck(req);
    if (!s.ok()) return s;
  }

  // From here on nothing fails: encode every write.
  for (size_t i = 0; i < req->parts.size(); i++) {
    const PartRef& p = req->parts[i];
    StreamHead& t = heads[i];
    if (t.stream_id == 0) {
      t.stream_id = gs->next_stream_id++;
      gs->enc.EncodeStream(t.stream_id, p.stream, gs->next_position, gs->now_ms, &gs->value);
      batch->Put(cfs_[kCfStreams], rocksdb::Slice(p.stream.data(), p.stream.size()), gs->value);
    }
    std::string_view category = CategoryOf(p.stream);
    AppendResult& r = req->results[i];
    uint64_t version = t.exists ? t.last_version + 1 : 0;
    r.first_version = version;
    r.first_position = gs->next_position;
    for (const EventData& e : p.events) {
      uint64_t pos = gs->next_position++;
      Uuid id = e.id;
      if (id.is_nil()) format::MakeGeneratedId(id_tag_, pos, id.bytes);
      gs->enc.EncodeEvent(format::EventFields{id, pos, p.stream, t.stream_id, version, e.type,
                                              e.content_type, e.data, e.metadata, gs->now_ms},
                          &gs->value);
      format::Be64 pk(pos);
      rocksdb::Slice pks(pk.buf, 8);
      batch->Put(cfs_[kCfEvents], pks, gs->value);
      format::StreamIndexKey sk(t.stream_id, version);
      batch->Put(cfs_[kCfStreamIndex], rocksdb::Slice(sk.buf, 16), pks);
      if (!e.id.is_nil())
        batch->Put(cfs_[kCfEventIds], rocksdb::Slice(reinterpret_cast<const char*>(id.bytes), 16), pks);
      if (!category.empty()) {
        gs->key.clear();
        format::AppendNameIndexKey(&gs->key, category, pos);
        batch->Put(cfs_[kCfCategoryIndex], gs->key, rocksdb::Slice());
      }
      gs->key.clear();
      format::AppendNameIndexKey(&gs->key, e.type, pos);
      batch->Put(cfs_[kCfTypeIndex], gs->key, rocksdb::Slice());
      if (!e.id.is_nil()) gs->ids[e.id] = GroupState::GroupId{pos, p.stream, version, &e};
      t.exists = true;
      t.last_version = version;
      t.last_position = pos;
      version++;
    }
    r.last_version = t.last_version;
    r.last_position = t.last_position;
    gs->heads[p.stream] = t;
  }
  AddExtraWrites(req, batch);
  return Status::OK();
}

Status StoreImpl::RunPrecheck(CommitRequest* req) {
  if (!req->precheck) return Status::OK();
  // A throwing check fails its own request, not the group.
  try {
    return req->precheck();
  } catch (const std::exception& e) {
    return Status::Aborted(std::string("commit precheck threw: ") + e.what());
  } catch (...) {
    return Status::Aborted("commit precheck threw an exception");
  }
}

void StoreImpl::AddExtraWrites(const CommitRequest* req, rocksdb::WriteBatch* batch) {
  for (const ExtraWrite& w : req->extra) {
    if (w.erase)
      batch->Delete(cfs_[w.cf], w.key);
    else
      batch->Put(cfs_[w.cf], w.key, w.value);
  }
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
      ws = db_->Write(wo, &batch);
    } catch (const std::exception& e) {
      ws = rocksdb::Status::Aborted(std::string("exception in the storage engine: ") + e.what());
    } catch (...) {
      ws = rocksdb::Status::Aborted("exception in the storage engine");
    }
    stat_groups_.fetch_add(1, std::memory_order_relaxed);
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
    if (!r->status.ok()) continue;
    stat_appends_.fetch_add(1, std::memory_order_relaxed);
    if (!r->results.empty() && !r->results[0].idempotent_replay)
      for (const PartRef& p : r->parts)
        stat_events_.fetch_add(p.events.size(), std::memory_order_relaxed);
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
  visible_.store(next_position_, std::memory_order_release);
  if (!heads_) return;
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

void StoreImpl::FailStop(const Status& why) {
  std::lock_guard<std::mutex> l(mu_);
  if (write_error_.ok()) write_error_ = why;
}

Status StoreImpl::WriteError() {
  std::lock_guard<std::mutex> l(mu_);
  return write_error_;
}

}  // namespace evstore::internal
