// Idempotency: whether a request's events, by their ids, are already stored
// where the request would put them (a retry of an append that landed).
#include <string>
#include <vector>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "log/group_state.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

namespace {

// Provenance (correlation and causation) is not content: a retry may carry
// other ids of the same event.
bool SameContent(const EventData& e, const EventView& v) {
  return e.type == v.type && e.data == v.data && e.metadata == v.metadata &&
         e.content_type == v.content_type && e.schema_version == v.schema_version;
}

}  // namespace

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
             o.content_type == e.content_type && o.schema_version == e.schema_version;
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

}  // namespace evstore::internal
