// One commit request's part of a group: its expected versions against the
// tentative heads, its precheck, and the encoding of its writes into the
// group's batch.
#include <string>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "log/group_state.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

namespace {

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

}  // namespace

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
  const bool cache_fresh = events_cache_ && live_subscriptions_.load(std::memory_order_relaxed) > 0;
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
                                              e.content_type, e.data, e.metadata, gs->now_ms,
                                              e.correlation_id, e.causation_id, e.schema_version},
                          &gs->value);
      format::Be64 pk(pos);
      rocksdb::Slice pks(pk.buf, 8);
      batch->Put(cfs_[kCfEvents], pks, gs->value);
      if (cache_fresh) {
        auto rec = std::make_shared<CachedRecord>();
        if (format::DecodeEvent(pos, gs->value, &rec->body, &rec->view).ok())
          gs->fresh.emplace_back(pos, std::move(rec));
      }
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

}  // namespace evstore::internal
